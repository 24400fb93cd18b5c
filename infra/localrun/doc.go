// Package localrun runs the project's deployable Lambda binaries locally the
// way AWS runs them, so `make dev` and end-to-end tests exercise the real
// `bootstrap` executables (built with aws-lambda-go's lambda.Start) rather
// than in-process shortcuts.
//
// For each Function, Start opens an emulated Lambda Runtime API on loopback
// (the small HTTP API the aws-lambda-go runtime client polls: invocation/next,
// invocation/{id}/response and /error, init/error) and starts Instances
// processes with AWS_LAMBDA_RUNTIME_API and the other Lambda environment
// variables set. Each process takes one invocation at a time; invocations
// queue while all are busy, bounded by the function's Timeout. A process
// that exits fails its in-flight invocation and is restarted; one that
// overruns its deadline is killed and restarted, as Lambda does.
//
// The Runner is also the front door: ServeHTTP plays API Gateway HTTP API
// (payload format 2.0: routing, event conversion, response mapping and its
// error responses) and Invoke plays the Lambda Invoke API for scheduled
// events, SQS batches and other raw payloads.
//
//	r, err := localrun.Start(ctx, []localrun.Function{{
//		Name:   "message",
//		Binary: "bin/message/bootstrap",
//		Env:    []string{"TABLE_NAME=wxtpp-local"},
//		Routes: []localrun.Route{{Method: "POST", Path: "/wechat/{appid}/callback"}},
//	}}, os.Stderr)
//	if err != nil { ... }
//	defer r.Close()
//	http.ListenAndServe("127.0.0.1:8080", r)
//
// NewHTTPEvent, WriteHTTPResponse and ParseHTTPResponse expose the
// conversions; HTTPHandler and RoutedHTTPHandler serve a handler function
// in-process through the same conversions, for tests and tools that have no
// binary.
//
// Each instance gets its own loopback port on the function's Runtime API
// server, so the runner knows which process took which invocation. Processes
// run in their own process group; Close signals the whole group (SIGTERM,
// then SIGKILL) so nothing outlives the runner, and on Linux the kernel
// kills them if the runner process itself dies.
package localrun

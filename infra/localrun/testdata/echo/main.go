// Command echo is a test Lambda for the localrun tests, built with the real
// aws-lambda-go runtime client (lambda.Start).
//
// ECHO_MODE selects the handler:
//
//	(unset)    an API Gateway v2 HTTP handler that echoes the event it received
//	raw        a JSON handler for non-HTTP invocations
//	exit       exits with status 2 before starting (init crash)
//	initerror  reports an init error to the Runtime API, then exits
//
// The HTTP handler obeys the "action" query parameter: error, exit, panic,
// sleep (ms=N, ignores the deadline), barrier (GETs url= before answering),
// spawn (starts a child process and returns its pid), print (msg= to stdout
// and stderr), big (a 7 MB response). status=N sets the status code,
// cookie=V adds a response cookie, resp=raw answers with the raw request
// body as a base64 application/octet-stream response.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Echo is what the HTTP handler returns in its body.
type Echo struct {
	PID         int                            `json:"pid"`
	Event       events.APIGatewayV2HTTPRequest `json:"event"`
	RequestID   string                         `json:"requestId"`
	FunctionARN string                         `json:"functionArn"`
	DeadlineMs  int64                          `json:"deadlineMs"`
	Env         map[string]string              `json:"env"`
	Child       int                            `json:"child,omitempty"`
}

var envKeys = []string{
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
	"AWS_REGION", "_HANDLER", "ECHO_GREETING", "AWS_LAMBDA_RUNTIME_API", "TZ",
}

func main() {
	switch os.Getenv("ECHO_MODE") {
	case "child":
		time.Sleep(time.Hour)
	case "exit":
		fmt.Fprintln(os.Stderr, "echo: init failed on purpose")
		os.Exit(2)
	case "initerror":
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		resp, err := http.Post(url, "application/json",
			strings.NewReader(`{"errorMessage":"bad config on purpose","errorType":"InitError"}`))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	case "raw":
		lambda.Start(handleRaw)
	default:
		lambda.Start(handleHTTP)
	}
}

type rawError struct{ msg string }

func (e *rawError) Error() string { return e.msg }

func handleRaw(ctx context.Context, in json.RawMessage) (map[string]any, error) {
	var probe struct {
		Fail string `json:"fail"`
	}
	_ = json.Unmarshal(in, &probe)
	if probe.Fail != "" {
		return nil, &rawError{msg: probe.Fail}
	}
	lc, _ := lambdacontext.FromContext(ctx)
	return map[string]any{"received": in, "pid": os.Getpid(), "requestId": lc.AwsRequestID}, nil
}

func handleHTTP(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	q := req.QueryStringParameters
	out := Echo{PID: os.Getpid(), Event: req, Env: map[string]string{}}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		out.RequestID = lc.AwsRequestID
		out.FunctionARN = lc.InvokedFunctionArn
	}
	if d, ok := ctx.Deadline(); ok {
		out.DeadlineMs = d.UnixMilli()
	}
	for _, k := range envKeys {
		out.Env[k] = os.Getenv(k)
	}

	switch q["action"] {
	case "error":
		return events.APIGatewayV2HTTPResponse{}, errors.New("echo: failure requested")
	case "exit":
		os.Exit(3)
	case "panic":
		panic("echo: panic requested")
	case "sleep":
		ms, _ := strconv.Atoi(q["ms"])
		time.Sleep(time.Duration(ms) * time.Millisecond)
	case "barrier":
		resp, err := http.Get(q["url"])
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("echo: barrier: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("echo: barrier status %d", resp.StatusCode)
		}
	case "spawn":
		self, err := os.Executable()
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "ECHO_MODE=child")
		cmd.Stdout = os.Stdout // holds the runner's pipe, like a leaked helper would
		if err := cmd.Start(); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		out.Child = cmd.Process.Pid
	case "print":
		fmt.Println(q["msg"])
		fmt.Fprintln(os.Stderr, "stderr:"+q["msg"])
	case "big":
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: strings.Repeat("x", 7<<20)}, nil
	}

	if q["resp"] == "raw" {
		raw := []byte(req.Body)
		if req.IsBase64Encoded {
			var err error
			if raw, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
		}
		return events.APIGatewayV2HTTPResponse{
			StatusCode:      200,
			Headers:         map[string]string{"Content-Type": "application/octet-stream"},
			Body:            base64.StdEncoding.EncodeToString(raw),
			IsBase64Encoded: true,
		}, nil
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	status := 200
	if s, err := strconv.Atoi(q["status"]); err == nil {
		status = s
	}
	var cookies []string
	if c := q["cookie"]; c != "" {
		cookies = strings.Split(c, ",")
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode:        status,
		Headers:           map[string]string{"Content-Type": "application/json", "X-Echo-Pid": strconv.Itoa(os.Getpid())},
		MultiValueHeaders: map[string][]string{"X-Multi": {"one", "two"}},
		Cookies:           cookies,
		Body:              buf.String(),
	}, nil
}

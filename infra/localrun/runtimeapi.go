package localrun

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Runtime API headers (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
const (
	hdrRequestID    = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline     = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN  = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID      = "Lambda-Runtime-Trace-Id"
	hdrErrorType    = "Lambda-Runtime-Function-Error-Type"
	hdrErrorBody    = "Lambda-Runtime-Function-Error-Body" // trailer, base64 JSON
	hdrExtensionID  = "Lambda-Extension-Identifier"
	maxErrorPayload = 1 << 20
)

func (f *function) runtimeMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", f.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", f.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", f.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", f.handleInitError)
	// aws-lambda-go registers an internal extension when SIGTERM handling
	// is enabled; accept it and never send it an event.
	mux.HandleFunc("POST /2020-01-01/extension/register", f.handleExtensionRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", f.handleExtensionNext)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeRuntimeError(w, http.StatusNotFound, "InvalidRequest", "unknown Runtime API path "+r.URL.Path)
	})
	return mux
}

// writeRuntimeError writes the Runtime API's error shape.
func writeRuntimeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`+"\n")
}

// instanceFor identifies the instance by the listener the request came in on.
func (f *function) instanceFor(r *http.Request) *instance {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil
	}
	return f.byPort[tcp.Port]
}

// handleNext blocks until an invocation is available for the calling
// process, then hands it over. The first poll of a process marks it ready.
func (f *function) handleNext(w http.ResponseWriter, r *http.Request) {
	inst := f.instanceFor(r)
	if inst == nil {
		writeRuntimeError(w, http.StatusForbidden, "InvalidRequest", "unknown listener")
		return
	}
	f.mu.Lock()
	p := inst.proc
	if p == nil {
		f.mu.Unlock()
		writeRuntimeError(w, http.StatusGone, "NoProcess", "no process is running on this listener")
		return
	}
	if f.closed || p.killed {
		// The process is being stopped: never answer, as in a frozen
		// sandbox, so its runtime does not log a spurious failure.
		f.mu.Unlock()
		<-r.Context().Done()
		return
	}
	if !p.isReady {
		p.isReady = true
		f.coldStarts = append(f.coldStarts, time.Since(p.started))
		close(p.ready)
	}
	if prev := inst.inflight; prev != nil {
		// Polling again without answering abandons the previous invocation.
		f.finishLocked(prev, invResult{err: &FunctionError{
			Function: f.cfg.Name, RequestID: prev.id, Type: ErrorTypeNoResponse,
			Message: "the runtime asked for the next invocation without answering this one",
		}})
	}
	var inv *invocation
	var pl *poller
	if len(f.queue) > 0 {
		inv = f.queue[0]
		f.queue = f.queue[1:]
		f.assignLocked(inv, inst, p.gen)
	} else {
		pl = &poller{inst: inst, gen: p.gen, ch: make(chan *invocation, 1)}
		f.pollers = append(f.pollers, pl)
	}
	f.mu.Unlock()

	if inv == nil {
		select {
		case inv = <-pl.ch:
		case <-r.Context().Done():
			f.cancelPoll(pl)
			return
		case <-f.r.closing:
			// Invocations are all failed by now; hold the poll until the
			// process is gone (Close stops it, then the server).
			f.cancelPoll(pl)
			<-r.Context().Done()
			return
		}
	}

	h := w.Header()
	h.Set(hdrRequestID, inv.id)
	h.Set(hdrDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(hdrFunctionARN, f.arn)
	h.Set(hdrTraceID, "Root="+newTraceRoot(time.Now())+";Parent="+newInvocationID()[:8]+newInvocationID()[:8]+";Sampled=0")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(inv.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
	// A failed write means the process died; its exit fails the invocation.
}

// cancelPoll withdraws a poller whose request ended. If an invocation was
// handed to it meanwhile, the invocation goes back to the front of the queue.
func (f *function) cancelPoll(pl *poller) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, q := range f.pollers {
		if q == pl {
			f.pollers = append(f.pollers[:i], f.pollers[i+1:]...)
			return
		}
	}
	select {
	case inv := <-pl.ch:
		f.requeueLocked(inv)
	default:
	}
}

// readRuntimeBody reads at most limit bytes; over reports a larger body.
func readRuntimeBody(r *http.Request, limit int64) (body []byte, over bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return nil, true, nil
	}
	return body, false, nil
}

// handleResponse completes an invocation with the function's result.
func (f *function) handleResponse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, over, err := readRuntimeBody(r, MaxInvokePayload)
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequest", "reading response: "+err.Error())
		return
	}
	var res invResult
	switch {
	case over:
		res.err = &FunctionError{Function: f.cfg.Name, RequestID: id, Type: ErrorTypeResponseTooLarge,
			Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxInvokePayload)}
	case r.Trailer.Get(hdrErrorType) != "":
		// aws-lambda-go reports a failure while streaming the response in
		// trailers.
		res.err = f.trailerError(id, r.Trailer)
	default:
		res.payload = body
	}
	f.mu.Lock()
	inv := f.invs[id]
	ok := inv != nil && inv.state == invRunning && f.finishLocked(inv, res)
	f.mu.Unlock()
	if !ok {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+id)
		return
	}
	if res.err != nil {
		f.r.log.Error("invocation failed", "function", f.cfg.Name, "requestId", id, "error", res.err)
	}
	if over {
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", res.err.(*FunctionError).Message)
		return
	}
	writeAccepted(w)
}

func (f *function) trailerError(id string, trailer http.Header) *FunctionError {
	fe := &FunctionError{Function: f.cfg.Name, RequestID: id, Type: trailer.Get(hdrErrorType)}
	if raw, err := base64.StdEncoding.DecodeString(trailer.Get(hdrErrorBody)); err == nil {
		var body struct {
			Message string `json:"errorMessage"`
		}
		if json.Unmarshal(raw, &body) == nil {
			fe.Message = body.Message
		}
	}
	return fe
}

// parseRuntimeError decodes an error report ({"errorMessage","errorType"}).
func (f *function) parseRuntimeError(id string, r *http.Request, body []byte) *FunctionError {
	var e struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}
	fe := &FunctionError{Function: f.cfg.Name, RequestID: id}
	if json.Unmarshal(body, &e) == nil {
		fe.Type, fe.Message = e.Type, e.Message
	} else {
		fe.Message = string(body)
	}
	if fe.Type == "" {
		fe.Type = r.Header.Get(hdrErrorType)
	}
	if fe.Type == "" {
		fe.Type = "Runtime.Unknown"
	}
	return fe
}

// handleError completes an invocation with the error the function reported.
func (f *function) handleError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, over, err := readRuntimeBody(r, maxErrorPayload)
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequest", "reading error: "+err.Error())
		return
	}
	if over {
		body = []byte(`{"errorType":"Runtime.ErrorTooLarge","errorMessage":"error report exceeded 1 MB"}`)
	}
	fe := f.parseRuntimeError(id, r, body)
	f.mu.Lock()
	inv := f.invs[id]
	ok := inv != nil && inv.state == invRunning && f.finishLocked(inv, invResult{err: fe})
	f.mu.Unlock()
	if !ok {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+id)
		return
	}
	f.r.log.Error("invocation failed", "function", f.cfg.Name, "requestId", id, "errorType", fe.Type, "errorMessage", fe.Message)
	writeAccepted(w)
}

// handleInitError records a failed initialisation; like Lambda, the process
// is then stopped (and restarted with backoff).
func (f *function) handleInitError(w http.ResponseWriter, r *http.Request) {
	inst := f.instanceFor(r)
	if inst == nil {
		writeRuntimeError(w, http.StatusForbidden, "InvalidRequest", "unknown listener")
		return
	}
	body, over, err := readRuntimeBody(r, maxErrorPayload)
	if err != nil || over {
		body = nil
	}
	fe := f.parseRuntimeError("", r, body)
	f.mu.Lock()
	if p := inst.proc; p != nil {
		p.initErr = fe
		p.killLocked()
	}
	f.mu.Unlock()
	f.r.log.Error("init failed", "function", f.cfg.Name, "instance", inst.idx, "errorType", fe.Type, "errorMessage", fe.Message)
	writeAccepted(w)
}

func (f *function) handleExtensionRegister(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxErrorPayload))
	w.Header().Set(hdrExtensionID, newInvocationID())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"functionName": f.cfg.Name, "functionVersion": "$LATEST", "handler": "bootstrap",
	})
}

// handleExtensionNext never delivers an event: the registered extension
// asked for none. The request ends when the process or the server goes.
func (f *function) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	<-r.Context().Done()
}

package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxtpp/platform/shared/logging"
)

// Runner-level limits.
const (
	// InitTimeout bounds how long Start waits for every instance to poll for
	// its first invocation (Lambda's init phase limit is 10 s).
	InitTimeout = 10 * time.Second
	// MaxTimeout is Lambda's maximum function timeout.
	MaxTimeout = 15 * time.Minute
	// DefaultMemoryMB is reported in AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
	DefaultMemoryMB = 128
	// stopGrace is how long Close waits after SIGTERM before SIGKILL.
	stopGrace = 2 * time.Second
)

// Function error types produced by the runner itself (as Lambda names them).
const (
	ErrorTypeExit             = "Runtime.ExitError"
	ErrorTypeTimeout          = "Sandbox.Timedout"
	ErrorTypeResponseTooLarge = "Function.ResponseSizeTooLarge"
	ErrorTypeNoResponse       = "Runtime.NoResponse"
)

var (
	// ErrUnknownFunction: Invoke named a function the runner does not serve.
	ErrUnknownFunction = errors.New("localrun: unknown function")
	// ErrClosed: the runner is closed.
	ErrClosed = errors.New("localrun: runner closed")
	// ErrPayloadTooLarge: the invocation payload exceeds MaxInvokePayload.
	ErrPayloadTooLarge = errors.New("localrun: invocation payload exceeds the Lambda limit")
	// ErrInvalidPayload: the invocation payload is not JSON (Lambda rejects it).
	ErrInvalidPayload = errors.New("localrun: invocation payload is not valid JSON")
)

// FunctionError is an invocation that failed inside the function: the
// handler returned an error or panicked (Type and Message as the runtime
// reported them), the process exited (ErrorTypeExit), the deadline passed
// (ErrorTypeTimeout) or the response was too large.
type FunctionError struct {
	Function  string
	RequestID string
	Type      string
	Message   string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("localrun: function %s failed (request %s): %s: %s", e.Function, e.RequestID, e.Type, e.Message)
}

// Function describes one Lambda function served from a built binary.
//
// Its processes run with the binary's directory as working directory
// (Lambda's /var/task) and this environment: the runner's own, then what
// Lambda sets (AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION=$LATEST,
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_REGION (inherited, else
// DefaultRegion), _HANDLER=bootstrap, TZ=:UTC, ...), then Env, and last
// AWS_LAMBDA_RUNTIME_API, which cannot be overridden.
type Function struct {
	Name      string        // function name, e.g. "ticket"
	Binary    string        // path to the built bootstrap
	Env       []string      // extra environment ("K=V"), applied over the runner's and Lambda's variables
	Routes    []Route       // HTTP API routes served by this function (payload format 2.0)
	Instances int           // concurrent processes (default 1); each takes one invocation at a time
	Timeout   time.Duration // per-invocation deadline, queueing included (default DefaultTimeout)
	MemoryMB  int           // reported in AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default DefaultMemoryMB)
}

// Stats is a snapshot of one function's state.
type Stats struct {
	Instances   int             // configured instances
	Running     int             // processes currently alive
	Busy        int             // instances handling an invocation
	Queued      int             // invocations waiting for an instance
	Invocations int             // invocations accepted since Start
	Restarts    int             // processes started after the first one per instance
	ColdStarts  []time.Duration // process start to first poll, one per process started
}

// Runner serves built Lambda binaries through an emulated Lambda Runtime API
// and acts as their API Gateway (ServeHTTP) and Lambda Invoke API (Invoke).
// It is safe for concurrent use.
type Runner struct {
	fns     map[string]*function
	order   []*function
	router  *router
	logs    *syncWriter
	log     *slog.Logger
	closing chan struct{}

	supervisors sync.WaitGroup
	servers     sync.WaitGroup
	closeOnce   sync.Once
}

// Start validates fns, starts a Runtime API server per function and
// Instances processes per function, and waits until every process polls for
// its first invocation. ctx bounds only this start-up wait (as does
// InitTimeout); stop the runner with Close. Process output and the runner's
// own log lines (slog JSON, prefixed "[localrun] ") go to logs, which may be
// nil.
func Start(ctx context.Context, fns []Function, logs io.Writer) (*Runner, error) {
	if logs == nil {
		logs = io.Discard
	}
	sw := &syncWriter{w: logs}
	r := &Runner{
		fns:     map[string]*function{},
		router:  &router{},
		logs:    sw,
		log:     slog.New(slog.NewJSONHandler(&prefixWriter{prefix: "[localrun] ", w: sw}, &slog.HandlerOptions{ReplaceAttr: logging.DurationText})),
		closing: make(chan struct{}),
	}
	for _, cfg := range fns {
		f, err := r.newFunction(cfg)
		if err != nil {
			return nil, err
		}
		r.fns[f.cfg.Name] = f
		r.order = append(r.order, f)
	}

	for _, f := range r.order {
		if err := f.listen(); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	var first []*process
	for _, f := range r.order {
		for _, inst := range f.insts {
			p, err := inst.spawn()
			if err != nil {
				_ = r.Close()
				return nil, err
			}
			first = append(first, p)
			r.supervisors.Add(1)
			go inst.supervise(p)
		}
	}

	timer := time.NewTimer(InitTimeout)
	defer timer.Stop()
	for _, p := range first {
		select {
		case <-p.ready:
			continue
		case <-p.exited:
		case <-ctx.Done():
			_ = r.Close()
			return nil, fmt.Errorf("localrun: waiting for %s to start: %w", p.inst.fn.cfg.Name, ctx.Err())
		case <-timer.C:
			_ = r.Close()
			return nil, fmt.Errorf("localrun: %s instance %d did not poll for an invocation within %s", p.inst.fn.cfg.Name, p.inst.idx, InitTimeout)
		}
		// Exited before becoming ready. The runner may already have
		// restarted it, but a crashing init is a bug Start must report.
		err := p.describeExit()
		_ = r.Close()
		return nil, err
	}
	for _, f := range r.order {
		f.mu.Lock()
		colds := slices.Clone(f.coldStarts)
		f.mu.Unlock()
		r.log.Info("function ready", "function", f.cfg.Name, "instances", len(f.insts),
			"routes", len(f.cfg.Routes), "coldStarts", fmtDurations(colds))
	}
	return r, nil
}

func fmtDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(10 * time.Microsecond).String()
	}
	return strings.Join(parts, ",")
}

// newFunction validates cfg and registers its routes.
func (r *Runner) newFunction(cfg Function) (*function, error) {
	if !validFunctionName(cfg.Name) {
		return nil, fmt.Errorf("localrun: invalid function name %q (letters, digits, - and _, at most 64)", cfg.Name)
	}
	if _, dup := r.fns[cfg.Name]; dup {
		return nil, fmt.Errorf("localrun: function %q defined twice", cfg.Name)
	}
	if cfg.Binary == "" {
		return nil, fmt.Errorf("localrun: function %s: no binary", cfg.Name)
	}
	abs, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("localrun: function %s: binary path: %w", cfg.Name, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("localrun: function %s: binary: %w", cfg.Name, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("localrun: function %s: binary %s is not an executable file", cfg.Name, abs)
	}
	cfg.Binary = abs
	switch {
	case cfg.Instances < 0:
		return nil, fmt.Errorf("localrun: function %s: negative Instances", cfg.Name)
	case cfg.Instances == 0:
		cfg.Instances = 1
	}
	switch {
	case cfg.Timeout < 0 || cfg.Timeout > MaxTimeout:
		return nil, fmt.Errorf("localrun: function %s: Timeout %s outside (0, %s]", cfg.Name, cfg.Timeout, MaxTimeout)
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.MemoryMB < 0:
		return nil, fmt.Errorf("localrun: function %s: negative MemoryMB", cfg.Name)
	case cfg.MemoryMB == 0:
		cfg.MemoryMB = DefaultMemoryMB
	}
	for _, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("localrun: function %s: environment entry %q is not K=V", cfg.Name, kv)
		}
	}
	cfg.Env = slices.Clone(cfg.Env)
	cfg.Routes = slices.Clone(cfg.Routes)
	for _, rt := range cfg.Routes {
		if err := r.router.add(cfg.Name, rt); err != nil {
			return nil, fmt.Errorf("localrun: function %s: %w", cfg.Name, err)
		}
	}
	region := DefaultRegion
	if v := os.Getenv("AWS_REGION"); v != "" {
		region = v
	}
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "AWS_REGION="); ok && v != "" {
			region = v
		}
	}
	f := &function{
		r:      r,
		cfg:    cfg,
		region: region,
		arn:    fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, AccountID, cfg.Name),
		invs:   map[string]*invocation{},
		byPort: map[int]*instance{},
	}
	for i := range cfg.Instances {
		f.insts = append(f.insts, &instance{fn: f, idx: i})
	}
	return f, nil
}

func validFunctionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// listen opens one loopback listener per instance, all served by the
// function's single Runtime API server. Separate ports let the runner tell
// which process took an invocation, so a crash fails exactly its own
// in-flight invocation.
func (f *function) listen() error {
	f.srv = &http.Server{
		Handler:           f.runtimeMux(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(f.r.log.Handler(), slog.LevelWarn),
	}
	lns := make([]net.Listener, 0, len(f.insts))
	for _, inst := range f.insts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("localrun: function %s: runtime API listener: %w", f.cfg.Name, err)
		}
		lns = append(lns, ln)
		inst.addr = ln.Addr().String()
		f.byPort[ln.Addr().(*net.TCPAddr).Port] = inst
	}
	// byPort is complete before any request can be served.
	for _, ln := range lns {
		f.r.servers.Add(1)
		go func() {
			defer f.r.servers.Done()
			_ = f.srv.Serve(ln) // returns when Close shuts the server down
		}()
	}
	return nil
}

// Invoke runs one invocation of function with payload (any JSON: scheduled
// events, SQS batches, API Gateway events) and returns the function's
// response payload. Failures inside the function are *FunctionError. The
// invocation waits for a free instance and runs until its deadline
// (Function.Timeout from now); if ctx ends first Invoke returns ctx's error,
// leaving an already running invocation to finish.
func (r *Runner) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	f, ok := r.fns[function]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownFunction, function)
	}
	if len(payload) > MaxInvokePayload {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), MaxInvokePayload)
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("invoke %s: %w", function, ErrInvalidPayload)
	}
	inv, err := f.submit(payload)
	if err != nil {
		return nil, err
	}
	select {
	case res := <-inv.result:
		return res.payload, res.err
	case <-ctx.Done():
		f.abandon(inv, ctx.Err())
		return nil, fmt.Errorf("localrun: invoke %s: %w", function, ctx.Err())
	}
}

// ServeHTTP is the API Gateway: it routes the request, converts it into a
// payload format 2.0 event, invokes the function and writes its response.
// Unknown routes get 404, bodies over MaxBodySize 413, function errors 500,
// crashes 502 and timeouts 503, each with API Gateway's {"message":...} body.
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	cr, params, ok := r.router.match(req.Method, req.URL.EscapedPath())
	if !ok {
		r.log.Info("no route", "method", req.Method, "path", req.URL.EscapedPath())
		writeMessage(w, http.StatusNotFound, "Not Found", newRequestID())
		return
	}
	routeKey := cr.route.Key()
	ev, err := NewHTTPEvent(req, routeKey, params, MaxBodySize)
	if err != nil {
		status, msg := http.StatusBadRequest, "Bad Request"
		if errors.Is(err, ErrBodyTooLarge) {
			status, msg = http.StatusRequestEntityTooLarge, "Request Entity Too Large"
		}
		r.log.Warn("request rejected", "routeKey", routeKey, "status", status, "error", err)
		writeMessage(w, status, msg, newRequestID())
		return
	}
	reqID := ev.RequestContext.RequestID
	if cr.route.IAM && !authorizeIAM(req, &ev) {
		r.log.Warn("request refused: IAM authorization", "routeKey", routeKey, "requestId", reqID)
		writeMessage(w, http.StatusForbidden, "Forbidden", reqID)
		return
	}
	logFail := func(status int, msg string, err error) {
		r.log.Error("request failed", "function", cr.fn, "routeKey", routeKey, "requestId", reqID,
			"status", status, "error", err)
		writeMessage(w, status, msg, reqID)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		logFail(http.StatusInternalServerError, "Internal Server Error", fmt.Errorf("encode event: %w", err))
		return
	}
	out, err := r.Invoke(req.Context(), cr.fn, payload)
	if err != nil {
		var fe *FunctionError
		switch {
		case errors.As(err, &fe) && fe.Type == ErrorTypeExit:
			logFail(http.StatusBadGateway, "Internal Server Error", err)
		case errors.As(err, &fe) && fe.Type == ErrorTypeTimeout:
			logFail(http.StatusServiceUnavailable, "Service Unavailable", err)
		case errors.Is(err, ErrPayloadTooLarge):
			logFail(http.StatusRequestEntityTooLarge, "Request Entity Too Large", err)
		case errors.Is(err, ErrClosed):
			logFail(http.StatusServiceUnavailable, "Service Unavailable", err)
		case req.Context().Err() != nil:
			r.log.Info("client went away", "function", cr.fn, "routeKey", routeKey, "requestId", reqID)
		default:
			logFail(http.StatusInternalServerError, "Internal Server Error", err)
		}
		return
	}
	resp, err := ParseHTTPResponse(out)
	if err != nil {
		logFail(http.StatusInternalServerError, "Internal Server Error", err)
		return
	}
	p, err := prepareResponse(resp)
	if err != nil {
		logFail(http.StatusInternalServerError, "Internal Server Error", err)
		return
	}
	w.Header().Set("Apigw-Requestid", reqID)
	if err := p.write(w); err != nil {
		r.log.Info("client went away", "function", cr.fn, "requestId", reqID, "error", err)
		return
	}
	r.log.Info("request", "function", cr.fn, "routeKey", routeKey, "requestId", reqID,
		"status", p.status, "ms", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 1, 64))
}

// ColdStarts returns, for every process started for function so far
// (restarts included), the time from process start until its first poll
// for an invocation. It returns nil for an unknown function.
func (r *Runner) ColdStarts(function string) []time.Duration {
	f, ok := r.fns[function]
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.coldStarts)
}

// Stats returns a snapshot of function's state; ok is false for an unknown
// function.
func (r *Runner) Stats(function string) (s Stats, ok bool) {
	f, ok := r.fns[function]
	if !ok {
		return Stats{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s = Stats{
		Instances:   len(f.insts),
		Queued:      len(f.queue),
		Invocations: f.invocations,
		Restarts:    f.restarts,
		ColdStarts:  slices.Clone(f.coldStarts),
	}
	for _, inst := range f.insts {
		if inst.proc != nil && inst.proc.pid != 0 {
			s.Running++
		}
		if inst.inflight != nil {
			s.Busy++
		}
	}
	return s, true
}

// PIDs returns the process ids of function's live processes.
func (r *Runner) PIDs(function string) []int {
	f, ok := r.fns[function]
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var pids []int
	for _, inst := range f.insts {
		if inst.proc != nil && inst.proc.pid != 0 {
			pids = append(pids, inst.proc.pid)
		}
	}
	return pids
}

// Functions returns the names of the functions served, in Start order.
func (r *Runner) Functions() []string {
	names := make([]string, len(r.order))
	for i, f := range r.order {
		names[i] = f.cfg.Name
	}
	return names
}

// Close fails pending invocations with ErrClosed, stops every process it
// started (SIGTERM to the process group, SIGKILL after a grace period, and
// SIGKILL to the group again once the process exited so no descendant is
// left), waits for them and shuts the Runtime API servers down. It is safe
// to call more than once.
func (r *Runner) Close() error {
	r.closeOnce.Do(func() {
		close(r.closing)
		for _, f := range r.order {
			f.shutdown()
		}
		done := make(chan struct{})
		go func() {
			r.supervisors.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(stopGrace):
			for _, f := range r.order {
				f.killAll()
			}
			<-done
		}
		for _, f := range r.order {
			if f.srv != nil {
				_ = f.srv.Close()
			}
		}
		r.servers.Wait()
	})
	return nil
}

// syncWriter serialises writes from many goroutines; each Write is one line.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// prefixWriter prefixes each Write (one slog record) with a fixed string.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	line := make([]byte, 0, len(p.prefix)+len(b))
	line = append(append(line, p.prefix...), b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}

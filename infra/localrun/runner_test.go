package localrun

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestServeHTTPRoundTrip(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	base := serve(t, r)

	query := "a=1&a=2&b=x%20y&status=201&cookie=" + url.QueryEscape("s1=a; Path=/,s2=b")
	req, err := http.NewRequest(http.MethodPost, base+"/wechat/wx%20app/callback?"+query, strings.NewReader("<xml><A>1</A></xml>"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Add("X-Multi-In", "v1")
	req.Header.Add("X-Multi-In", "v2")
	req.Header.Set("Cookie", "c1=v1; c2=v2")
	req.Header.Set("User-Agent", "localrun-test/1")
	before := time.Now()
	resp, body := do(t, req)
	after := time.Now()

	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d, want 201; body %s", resp.StatusCode, body)
	}
	out := decodeEcho(t, body)
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := resp.Header.Get("X-Echo-Pid"); got != fmt.Sprint(out.PID) {
		t.Errorf("X-Echo-Pid = %q, want %d", got, out.PID)
	}
	if got := resp.Header.Values("X-Multi"); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("X-Multi = %q (multiValueHeaders)", got)
	}
	if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"s1=a; Path=/", "s2=b"}) {
		t.Errorf("Set-Cookie = %q", got)
	}

	ev := out.Event
	if ev.Version != "2.0" || ev.RouteKey != "POST /wechat/{appid}/callback" {
		t.Errorf("version/routeKey = %q/%q", ev.Version, ev.RouteKey)
	}
	if ev.RawPath != "/wechat/wx%20app/callback" || ev.RawQueryString != query {
		t.Errorf("rawPath/rawQueryString = %q/%q", ev.RawPath, ev.RawQueryString)
	}
	if !reflect.DeepEqual(ev.PathParameters, map[string]string{"appid": "wx app"}) {
		t.Errorf("pathParameters = %v", ev.PathParameters)
	}
	if !slices.Equal(ev.Cookies, []string{"c1=v1", "c2=v2"}) {
		t.Errorf("cookies = %q", ev.Cookies)
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Errorf("cookie header must move to cookies, headers = %v", ev.Headers)
	}
	for k, want := range map[string]string{"x-multi-in": "v1,v2", "content-type": "text/xml", "user-agent": "localrun-test/1"} {
		if ev.Headers[k] != want {
			t.Errorf("headers[%q] = %q, want %q", k, ev.Headers[k], want)
		}
	}
	if ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "x y" {
		t.Errorf("queryStringParameters = %v", ev.QueryStringParameters)
	}
	if ev.Body != "<xml><A>1</A></xml>" || ev.IsBase64Encoded {
		t.Errorf("body = %q base64=%v", ev.Body, ev.IsBase64Encoded)
	}
	rc := ev.RequestContext
	if rc.HTTP.Method != "POST" || rc.HTTP.Path != "/wechat/wx%20app/callback" || rc.HTTP.Protocol != "HTTP/1.1" ||
		rc.HTTP.SourceIP != "127.0.0.1" || rc.HTTP.UserAgent != "localrun-test/1" {
		t.Errorf("requestContext.http = %+v", rc.HTTP)
	}
	if rc.Stage != "$default" || rc.RouteKey != ev.RouteKey || rc.AccountID != AccountID || rc.APIID != APIID || rc.DomainName != "127.0.0.1" {
		t.Errorf("requestContext = %+v", rc)
	}
	if rc.RequestID == "" || resp.Header.Get("Apigw-Requestid") != rc.RequestID {
		t.Errorf("requestId = %q, apigw-requestid header = %q", rc.RequestID, resp.Header.Get("Apigw-Requestid"))
	}
	if ts, err := time.Parse(apiGatewayTimeFormat, rc.Time); err != nil || ts.Unix() != rc.TimeEpoch/1000 {
		t.Errorf("time = %q, timeEpoch = %d (%v)", rc.Time, rc.TimeEpoch, err)
	}

	// What the Lambda runtime gave the handler.
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = DefaultRegion
	}
	if !uuidRE.MatchString(out.RequestID) {
		t.Errorf("lambda request id = %q, want a UUID", out.RequestID)
	}
	if want := "arn:aws:lambda:" + region + ":" + AccountID + ":function:echo"; out.FunctionARN != want {
		t.Errorf("function ARN = %q, want %q", out.FunctionARN, want)
	}
	if out.DeadlineMs < before.UnixMilli() || out.DeadlineMs > after.Add(DefaultTimeout).UnixMilli() {
		t.Errorf("deadline %d outside [%d, %d]", out.DeadlineMs, before.UnixMilli(), after.Add(DefaultTimeout).UnixMilli())
	}
	for k, want := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME": "echo", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "_HANDLER": "bootstrap", "ECHO_GREETING": "hi",
		"AWS_REGION": region, "TZ": ":UTC",
	} {
		if out.Env[k] != want {
			t.Errorf("env %s = %q, want %q", k, out.Env[k], want)
		}
	}
	if !strings.HasPrefix(out.Env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", out.Env["AWS_LAMBDA_RUNTIME_API"])
	}

	// A second request gets fresh ids and is served by the same warm process.
	again := getEcho(t, base+"/items/42")
	if again.Event.RequestContext.RequestID == rc.RequestID || again.RequestID == out.RequestID {
		t.Error("request ids repeat across requests")
	}
	if again.PID != out.PID {
		t.Errorf("second request served by pid %d, want warm pid %d", again.PID, out.PID)
	}
	if again.Event.QueryStringParameters != nil || again.Event.Cookies != nil || again.Event.Body != "" {
		t.Errorf("empty query/cookies/body not omitted: %+v", again.Event)
	}
}

func TestServeHTTPBinaryBodyRoundTrip(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	base := serve(t, r)
	payload := make([]byte, 0, 300)
	for i := range 300 {
		payload = append(payload, byte(i*7))
	}

	// The function sees base64, and answers with a base64 response that
	// the gateway decodes back to the same bytes.
	req, _ := http.NewRequest(http.MethodPost, base+"/upload?resp=raw", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, payload) {
		t.Fatalf("status %d, body %x, want %x", resp.StatusCode, body, payload)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q", ct)
	}

	req, _ = http.NewRequest(http.MethodPost, base+"/upload", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "image/png")
	resp, body = do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	ev := decodeEcho(t, body).Event
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(payload) {
		t.Errorf("event body = %q (base64=%v), want base64 of the payload", ev.Body, ev.IsBase64Encoded)
	}
}

func TestServeHTTPUnknownRouteIs404(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	base := serve(t, r)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"DELETE", "/items/1"},        // path matches, method does not
		{"GET", "/items/1/extra"},     // one segment too many
		{"POST", "/wechat//callback"}, // empty parameter segment
		{"GET", "/items"},             // parameter missing
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, body := do(t, req)
		expectMessage(t, resp, body, http.StatusNotFound, "Not Found")
	}
	if s, _ := r.Stats("echo"); s.Invocations != 0 {
		t.Errorf("unknown routes invoked the function %d times", s.Invocations)
	}
}

func TestServeHTTPRejectsHugeBody(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	huge := bytes.Repeat([]byte("a"), MaxBodySize+1)
	for _, chunked := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodPost, "/upload", bytes.NewReader(huge))
		req.Header.Set("Content-Type", "text/plain")
		if chunked {
			req.ContentLength = -1 // no declared length: the limit applies while reading
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		expectMessage(t, rec.Result(), rec.Body.Bytes(), http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	}
	if s, _ := r.Stats("echo"); s.Invocations != 0 {
		t.Errorf("function invoked %d times for rejected bodies", s.Invocations)
	}
}

func TestServeHTTPFunctionErrorIs500(t *testing.T) {
	r, logs := startRunner(t, echoFunction())
	base := serve(t, r)
	first := getEcho(t, base+"/items/1")
	resp, body := get(t, base+"/items/1?action=error")
	expectMessage(t, resp, body, http.StatusInternalServerError, "Internal Server Error")
	if strings.Contains(string(body), "failure requested") {
		t.Error("function error message leaked to the client")
	}
	// A handled error does not cost the process.
	if again := getEcho(t, base+"/items/1"); again.PID != first.PID {
		t.Errorf("pid changed after a handled error: %d -> %d", first.PID, again.PID)
	}
	if s, _ := r.Stats("echo"); s.Restarts != 0 {
		t.Errorf("restarts = %d, want 0", s.Restarts)
	}
	r.Close()
	if !strings.Contains(logs.String(), "echo: failure requested") {
		t.Errorf("function error not logged:\n%s", logs)
	}
}

func TestServeHTTPCrashIs502ThenRestarts(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	base := serve(t, r)
	first := getEcho(t, base+"/items/1")

	resp, body := get(t, base+"/items/1?action=exit")
	expectMessage(t, resp, body, http.StatusBadGateway, "Internal Server Error")

	next := getEcho(t, base+"/items/2")
	if next.PID == first.PID {
		t.Errorf("request after crash served by the crashed pid %d", first.PID)
	}
	s, _ := r.Stats("echo")
	if s.Restarts != 1 || len(s.ColdStarts) != 2 {
		t.Errorf("restarts = %d, cold starts = %v; want 1 restart and 2 cold starts", s.Restarts, s.ColdStarts)
	}
	if alive(first.PID) {
		t.Errorf("crashed pid %d still alive", first.PID)
	}
}

func TestServeHTTPPanicIs500AndProcessIsReplaced(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	base := serve(t, r)
	first := getEcho(t, base+"/items/1")
	resp, body := get(t, base+"/items/1?action=panic")
	expectMessage(t, resp, body, http.StatusInternalServerError, "Internal Server Error")
	// aws-lambda-go reports the panic, then exits; the runner starts a new one.
	if next := getEcho(t, base+"/items/1"); next.PID == first.PID {
		t.Errorf("request after panic served by pid %d, which should have exited", first.PID)
	}
}

func TestServeHTTPTimeoutKillsAndRestarts(t *testing.T) {
	fn := echoFunction()
	fn.Timeout = time.Second
	r, _ := startRunner(t, fn)
	base := serve(t, r)
	first := getEcho(t, base+"/items/1")

	// The handler ignores its deadline; the runner must enforce it.
	resp, body := get(t, base+"/items/1?action=sleep&ms=600000")
	expectMessage(t, resp, body, http.StatusServiceUnavailable, "Service Unavailable")
	// The replacement must be up before the next request, whose own 1 s
	// deadline would otherwise include the restart.
	waitFor(t, "replacement process ready", func() bool { return len(r.ColdStarts("echo")) == 2 })

	next := getEcho(t, base+"/items/1")
	if next.PID == first.PID {
		t.Errorf("timed-out process %d still serving", first.PID)
	}
	if alive(first.PID) {
		t.Errorf("timed-out pid %d still alive", first.PID)
	}
}

func TestServeHTTPResponseTooLarge(t *testing.T) {
	r, logs := startRunner(t, echoFunction())
	base := serve(t, r)
	resp, body := get(t, base+"/items/1?action=big")
	expectMessage(t, resp, body, http.StatusInternalServerError, "Internal Server Error")
	getEcho(t, base+"/items/1") // still serving (the runtime exits on 413 and is restarted)
	r.Close()
	if !strings.Contains(logs.String(), ErrorTypeResponseTooLarge) {
		t.Errorf("oversized response not logged as %s", ErrorTypeResponseTooLarge)
	}
}

// barrier answers GETs only once n of them are waiting, or fails them.
type barrier struct {
	n       int
	mu      sync.Mutex
	arrived int
	release chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, release: make(chan struct{})} }

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-r.Context().Done():
	case <-time.After(20 * time.Second):
		http.Error(w, "barrier never filled", http.StatusGatewayTimeout)
	}
}

func TestInstancesServeConcurrently(t *testing.T) {
	fn := echoFunction()
	fn.Instances = 3
	r, _ := startRunner(t, fn)
	base := serve(t, r)
	bar := serve(t, newBarrier(3))

	// Each request blocks inside its function until all three are inside:
	// only three concurrent processes can complete them.
	target := base + "/items/1?action=barrier&url=" + url.QueryEscape(bar)
	var wg sync.WaitGroup
	pids := make([]int, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			resp, err := http.Get(target)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("status %d: %s", resp.StatusCode, body)
				return
			}
			var out echoOut
			errs[i] = json.Unmarshal(body, &out)
			pids[i] = out.PID
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(pids)
	if len(slices.Compact(slices.Clone(pids))) != 3 {
		t.Errorf("pids = %v, want three distinct processes", pids)
	}
	if got := r.ColdStarts("echo"); len(got) != 3 {
		t.Errorf("cold starts = %v, want one per instance", got)
	}
}

func TestInvocationsQueueForABusyInstance(t *testing.T) {
	r, _ := startRunner(t, echoFunction()) // one instance
	base := serve(t, r)
	gate := newBarrier(2) // opened by the test's own arrival below
	gateURL := serve(t, gate)

	type result struct {
		out echoOut
		err error
	}
	fetch := func(u string, ch chan<- result) {
		resp, err := http.Get(u)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			ch <- result{err: fmt.Errorf("status %d: %s", resp.StatusCode, body)}
			return
		}
		var out echoOut
		ch <- result{out: out, err: json.Unmarshal(body, &out)}
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go fetch(base+"/items/1?action=barrier&url="+url.QueryEscape(gateURL), first)
	waitFor(t, "first invocation running", func() bool { s, _ := r.Stats("echo"); return s.Busy == 1 })
	go fetch(base+"/items/2", second)
	waitFor(t, "second invocation queued", func() bool { s, _ := r.Stats("echo"); return s.Queued == 1 })

	// Release the first; then the queued one runs on the same process.
	resp, err := http.Get(gateURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatalf("first: %v, second: %v", a.err, b.err)
	}
	if s, _ := r.Stats("echo"); s.Queued != 0 || s.Busy != 0 || s.Invocations != 2 {
		t.Errorf("stats after both = %+v", s)
	}
}

// waitFor polls cond (state set by other goroutines) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestInvokeRawPayload(t *testing.T) {
	r, _ := startRunner(t, Function{Name: "raw", Binary: echoBin, Env: []string{"ECHO_MODE=raw"}})
	ctx := t.Context()

	sqs := `{"Records":[{"messageId":"m1","body":"{\"type\":\"release\"}","eventSource":"aws:sqs"}]}`
	out, err := r.Invoke(ctx, "raw", []byte(sqs))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var got struct {
		Received  json.RawMessage `json:"received"`
		PID       int             `json:"pid"`
		RequestID string          `json:"requestId"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if string(got.Received) != sqs || got.PID == 0 || !uuidRE.MatchString(got.RequestID) {
		t.Errorf("response = %s", out)
	}

	_, err = r.Invoke(ctx, "raw", []byte(`{"fail":"boom"}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "rawError" || fe.Message != "boom" || fe.Function != "raw" {
		t.Fatalf("Invoke error = %#v, want FunctionError rawError/boom", err)
	}

	if _, err := r.Invoke(ctx, "nope", []byte(`{}`)); !errors.Is(err, ErrUnknownFunction) {
		t.Errorf("unknown function: %v", err)
	}
	if _, err := r.Invoke(ctx, "raw", []byte(`{not json`)); !errors.Is(err, ErrInvalidPayload) {
		t.Errorf("invalid payload: %v", err)
	}
	big := []byte(`"` + strings.Repeat("x", MaxInvokePayload) + `"`)
	if _, err := r.Invoke(ctx, "raw", big); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("oversized payload: %v", err)
	}
	if s, _ := r.Stats("raw"); s.Invocations != 2 {
		t.Errorf("invocations = %d, want 2 (rejected payloads never reach the function)", s.Invocations)
	}
}

func TestInvokeHonoursCallerContextWhileQueued(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	base := serve(t, r)
	gate := newBarrier(2)
	gateURL := serve(t, gate)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get(base + "/items/1?action=barrier&url=" + url.QueryEscape(gateURL)); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "instance busy", func() bool { s, _ := r.Stats("echo"); return s.Busy == 1 })

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Invoke(ctx, "echo", []byte(`{}`))
		errc <- err
	}()
	waitFor(t, "invocation queued", func() bool { s, _ := r.Stats("echo"); return s.Queued == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Invoke after cancel = %v, want context.Canceled", err)
	}
	if s, _ := r.Stats("echo"); s.Queued != 0 {
		t.Errorf("cancelled invocation still queued: %+v", s)
	}
	resp, err := http.Get(gateURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-done
}

func TestCloseLeavesNoProcess(t *testing.T) {
	fn := echoFunction()
	fn.Instances = 2
	r, _ := startRunner(t, fn)
	base := serve(t, r)
	out := getEcho(t, base+"/items/1?action=spawn")
	if out.Child == 0 {
		t.Fatal("echo did not report its child pid")
	}
	pids := r.PIDs("echo")
	if len(pids) != 2 {
		t.Fatalf("PIDs = %v, want 2", pids)
	}
	for _, pid := range append(pids, out.Child) {
		if !alive(pid) {
			t.Fatalf("pid %d not alive before Close", pid)
		}
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range append(pids, out.Child) {
		if alive(pid) {
			t.Errorf("pid %d alive after Close", pid)
		}
	}
	if got := r.PIDs("echo"); len(got) != 0 {
		t.Errorf("PIDs after Close = %v", got)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Invoke(t.Context(), "echo", []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke after Close = %v, want ErrClosed", err)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/items/1", nil))
	expectMessage(t, rec.Result(), rec.Body.Bytes(), http.StatusServiceUnavailable, "Service Unavailable")
}

func TestProcessOutputIsLoggedLineByLine(t *testing.T) {
	r, logs := startRunner(t, echoFunction())
	base := serve(t, r)
	getEcho(t, base+"/items/1?action=print&msg=hello-marker-42")
	r.Close() // waits for the output readers
	text := logs.String()
	for _, want := range []string{"[echo] hello-marker-42\n", "[echo] stderr:hello-marker-42\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("logs lack %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, `[localrun] {"time"`) {
		t.Errorf("runner's own lines are not prefixed slog JSON:\n%s", text)
	}
}

func TestStartRejectsBadFunctions(t *testing.T) {
	ok := echoFunction()
	withName := func(f Function, name string) Function { f.Name = name; return f }
	cases := map[string]struct {
		fns  []Function
		want string
	}{
		"missing binary":  {[]Function{{Name: "x", Binary: "/nonexistent/bootstrap"}}, "binary"},
		"not executable":  {[]Function{{Name: "x", Binary: "main_test.go"}}, "not an executable"},
		"bad name":        {[]Function{withName(ok, "bad name")}, "invalid function name"},
		"duplicate name":  {[]Function{ok, ok}, "defined twice"},
		"route conflict":  {[]Function{ok, {Name: "other", Binary: echoBin, Routes: []Route{{Method: "GET", Path: "/items/{x}"}}}}, "conflicts"},
		"bad route":       {[]Function{{Name: "x", Binary: echoBin, Routes: []Route{{Method: "GET", Path: "items"}}}}, "must start with /"},
		"bad env":         {[]Function{{Name: "x", Binary: echoBin, Env: []string{"NOEQUALS"}}}, "not K=V"},
		"negative inst":   {[]Function{{Name: "x", Binary: echoBin, Instances: -1}}, "negative Instances"},
		"timeout too big": {[]Function{{Name: "x", Binary: echoBin, Timeout: time.Hour}}, "Timeout"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Start(t.Context(), tc.fns, nil)
			if err == nil {
				r.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestStartReportsInitFailures(t *testing.T) {
	for mode, want := range map[string]string{
		"exit":      "echo: init failed on purpose",     // from the captured stderr
		"initerror": "InitError: bad config on purpose", // reported to /runtime/init/error
	} {
		t.Run(mode, func(t *testing.T) {
			logs := &syncBuffer{}
			r, err := Start(t.Context(), []Function{{Name: "bad", Binary: echoBin, Env: []string{"ECHO_MODE=" + mode}}}, logs)
			if err == nil {
				r.Close()
				t.Fatal("Start succeeded for a function that cannot start")
			}
			if !strings.Contains(err.Error(), "exited before polling") || !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		})
	}
}

func TestRuntimeAPIRejectsUnknownRequests(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	addr := r.fns["echo"].insts[0].addr
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/2018-06-01/runtime/invocation/not-a-request/response", http.StatusBadRequest},
		{"POST", "/2018-06-01/runtime/invocation/not-a-request/error", http.StatusBadRequest},
		{"GET", "/2018-06-01/runtime/bogus", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(`{}`))
		resp, body := do(t, req)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
		}
	}
	// The runner still works afterwards.
	getEcho(t, serve(t, r)+"/items/1")
}

func TestColdStartsRecorded(t *testing.T) {
	fn := echoFunction()
	fn.Instances = 2
	r, _ := startRunner(t, fn)
	cs := r.ColdStarts("echo")
	if len(cs) != 2 {
		t.Fatalf("ColdStarts = %v, want one per instance", cs)
	}
	for _, d := range cs {
		if d <= 0 {
			t.Errorf("cold start %v not positive", d)
		}
	}
	if r.ColdStarts("nope") != nil {
		t.Error("ColdStarts of an unknown function is not nil")
	}
	t.Logf("cold starts: %v", cs)
}

// The in-process adapter must produce the event the runner gives a binary.
func TestHTTPHandlerMatchesRunnerEventShape(t *testing.T) {
	r, _ := startRunner(t, echoFunction())
	runnerBase := serve(t, r)
	adapter, err := RoutedHTTPHandler(echoRoutes, func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		b, err := json.Marshal(echoOut{Event: ev})
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: string(b)}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	adapterBase := serve(t, adapter)

	fetch := func(base string) events.APIGatewayV2HTTPRequest {
		body := []byte{0, 1, 2, 0xff}
		req, _ := http.NewRequest(http.MethodPost, base+"/wechat/wx1/callback?x=1&x=2", bytes.NewReader(body))
		req.Header.Add("X-Dup", "a")
		req.Header.Add("X-Dup", "b")
		req.Header.Set("Cookie", "k=v")
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, out := do(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", base, resp.StatusCode, out)
		}
		ev := decodeEcho(t, out).Event
		// Per-request and per-server values.
		ev.RequestContext.RequestID, ev.RequestContext.Time, ev.RequestContext.TimeEpoch = "", "", 0
		delete(ev.Headers, "x-amzn-trace-id")
		delete(ev.Headers, "host")
		delete(ev.Headers, "x-forwarded-port")
		return ev
	}
	viaRunner, viaAdapter := fetch(runnerBase), fetch(adapterBase)
	if !reflect.DeepEqual(viaRunner, viaAdapter) {
		a, _ := json.MarshalIndent(viaRunner, "", " ")
		b, _ := json.MarshalIndent(viaAdapter, "", " ")
		t.Errorf("events differ\nrunner:  %s\nadapter: %s", a, b)
	}
	if viaAdapter.RouteKey != "POST /wechat/{appid}/callback" || viaAdapter.PathParameters["appid"] != "wx1" || !viaAdapter.IsBase64Encoded {
		t.Errorf("adapter event = %+v", viaAdapter)
	}
}

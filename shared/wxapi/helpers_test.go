package wxapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxapi"
)

// received is what the fake WeChat saw of one request.
type received struct {
	Method      string
	Path        string
	RawQuery    string
	Query       url.Values
	ContentType string
	Body        map[string]any // nil when the request had no body
	RawBody     []byte
}

// fakeWX is a WeChat stand-in on 127.0.0.1 that records every request and lets the test answer request n
// (1-based) as it likes.
type fakeWX struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []received
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *fakeWX {
	t.Helper()
	f := &fakeWX{handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rec := received{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Query: r.URL.Query(),
			ContentType: r.Header.Get("Content-Type"), RawBody: raw}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &rec.Body); err != nil {
				t.Errorf("request body is not a JSON object: %v: %q", err, raw)
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		n := len(f.reqs)
		f.mu.Unlock()
		f.handle(n, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWX) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

func (f *fakeWX) count() int { return len(f.requests()) }

// always answers every request with status and body.
func always(status int, body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, status, body) }
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// hang holds the request until the client gives up on it (or the test ends), like a WeChat that never answers.
func hang(done <-chan struct{}) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

// testDone is closed when the test ends, before the servers it started are closed (cleanups run last-in
// first-out), so handlers still waiting return and Close does not block.
func testDone(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// syncBuffer is a bytes.Buffer safe to write from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines decodes the JSON log lines written so far.
func (b *syncBuffer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(b.String())))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log output is not JSON lines: %v", err)
		}
		lines = append(lines, m)
	}
	return lines
}

// newClient returns a client for baseURL with fast retries and its debug-level JSON log captured.
func newClient(baseURL string) (*wxapi.Client, *syncBuffer) {
	logs := &syncBuffer{}
	return &wxapi.Client{
		BaseURL:     baseURL,
		Timeout:     5 * time.Second,
		MaxAttempts: 3,
		Backoff:     time.Millisecond,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, logs
}

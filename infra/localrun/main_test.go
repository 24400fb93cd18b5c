package localrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// echoBin is the test Lambda (testdata/echo), built once for the package.
var echoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "localrun-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tempdir:", err)
		os.Exit(1)
	}
	echoBin = filepath.Join(dir, "echo", "bootstrap")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-o", echoBin, "./testdata/echo")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/echo:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoRoutes are the routes the echo function serves in these tests.
var echoRoutes = []Route{
	{Method: "GET", Path: "/items/{id}"},
	{Method: "POST", Path: "/wechat/{appid}/callback"},
	{Method: "POST", Path: "/upload"},
}

func echoFunction() Function {
	return Function{Name: "echo", Binary: echoBin, Routes: echoRoutes, Env: []string{"ECHO_GREETING=hi"}}
}

// startRunner starts fns and closes the runner when the test ends; the logs
// are printed if the test failed.
func startRunner(t *testing.T, fns ...Function) (*Runner, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	r, err := Start(t.Context(), fns, logs)
	if err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s", err, logs)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("runner logs:\n%s", logs)
		}
	})
	return r, logs
}

// serve exposes r on a loopback test server.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// echoOut mirrors testdata/echo's Echo.
type echoOut struct {
	PID         int                            `json:"pid"`
	Event       events.APIGatewayV2HTTPRequest `json:"event"`
	RequestID   string                         `json:"requestId"`
	FunctionARN string                         `json:"functionArn"`
	DeadlineMs  int64                          `json:"deadlineMs"`
	Env         map[string]string              `json:"env"`
	Child       int                            `json:"child"`
}

// do sends req and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// getEcho GETs url, expects 200 and decodes the echo.
func getEcho(t *testing.T, url string) echoOut {
	t.Helper()
	resp, body := get(t, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", url, resp.StatusCode, body)
	}
	return decodeEcho(t, body)
}

func decodeEcho(t *testing.T, body []byte) echoOut {
	t.Helper()
	var out echoOut
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode echo %q: %v", body, err)
	}
	return out
}

// expectMessage checks API Gateway's {"message":...} error response.
func expectMessage(t *testing.T, resp *http.Response, body []byte, status int, message string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 || m["message"] != message {
		t.Fatalf("body = %s, want {\"message\":%q}", body, message)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err == nil {
		// The state follows the parenthesised command name.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
	}
	return syscall.Kill(pid, 0) == nil
}

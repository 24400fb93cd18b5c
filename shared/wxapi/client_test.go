package wxapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxapi"
)

func TestCallGETWithoutBody(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"errcode":0,"errmsg":"ok","value":42}`))
	c, _ := newClient(f.srv.URL)
	var out struct {
		Value int `json:"value"`
	}
	err := c.Call(context.Background(), "thing", http.MethodGet, "/cgi-bin/thing", url.Values{"a": {"1"}}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.Value != 42 {
		t.Errorf("decoded value %d, want 42", out.Value)
	}
	r := f.requests()[0]
	if r.Method != http.MethodGet || r.Path != "/cgi-bin/thing" || r.RawQuery != "a=1" || len(r.RawBody) != 0 || r.ContentType != "" {
		t.Errorf("request %+v, want GET /cgi-bin/thing?a=1 without body or Content-Type", r)
	}
}

func TestCallUnencodableBody(t *testing.T) {
	f := newFake(t, always(http.StatusOK, answerOK))
	c, _ := newClient(f.srv.URL)
	err := c.Call(context.Background(), "thing", http.MethodPost, "/x", nil, map[string]any{"c": make(chan int)}, nil)
	if err == nil || !strings.Contains(err.Error(), "encode request") {
		t.Fatalf("err = %v, want an encode error", err)
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests sent, want 0", n)
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name   string
		handle func(n int, w http.ResponseWriter, r *http.Request)
		want   int // requests until success
	}{
		{"errcode -1 then success", func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				reply(w, http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`)
				return
			}
			reply(w, http.StatusOK, answerComponentToken)
		}, 2},
		{"HTTP 502 twice then success", func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				reply(w, http.StatusBadGateway, "<html>bad gateway</html>")
				return
			}
			reply(w, http.StatusOK, answerComponentToken)
		}, 3},
		{"connection dropped then success", func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			reply(w, http.StatusOK, answerComponentToken)
		}, 2},
		{"answer cut short then success", func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Content-Length", "500")
				_, _ = io.WriteString(w, `{"component_access_`)
				return
			}
			reply(w, http.StatusOK, answerComponentToken)
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.handle)
			c, _ := newClient(f.srv.URL)
			tok, err := c.ComponentToken(context.Background(), "wxcomp", "secret", "ticket")
			if err != nil {
				t.Fatalf("err = %v, want success after retries", err)
			}
			if tok.ExpiresIn != 7200 || tok.AccessToken == "" {
				t.Errorf("token %+v not decoded", tok)
			}
			if n := f.count(); n != tc.want {
				t.Errorf("%d requests, want %d", n, tc.want)
			}
		})
	}
}

func TestRetryAfterPerAttemptTimeout(t *testing.T) {
	done := testDone(t)
	wait := hang(done)
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			wait(n, w, r) // longer than Client.Timeout: until the client gives up
			return
		}
		reply(w, http.StatusOK, answerComponentToken)
	})
	c, logs := newClient(f.srv.URL)
	c.Timeout = 300 * time.Millisecond
	tok, err := c.ComponentToken(context.Background(), "wxcomp", "secret", "ticket")
	if err != nil {
		t.Fatalf("err = %v, want success on the second attempt", err)
	}
	if tok.AccessToken == "" {
		t.Error("token not decoded")
	}
	if n := f.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	// The retry happened because of the timeout, not for some other reason.
	var sawTimeout bool
	for _, l := range logs.logLines(t) {
		if l["msg"] == "wechat call failed, retrying" && strings.Contains(fmt.Sprint(l["error"]), "deadline exceeded") {
			sawTimeout = true
		}
	}
	if !sawTimeout {
		t.Errorf("no retry logged for a timeout; log:\n%s", logs.String())
	}
}

func TestBusinessErrorsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		pred func(error) bool
	}{
		{40001, "invalid credential, access_token is invalid or not latest", wxapi.IsInvalidToken},
		{61023, "refresh_token is invalid", wxapi.NeedsReauth},
		{45009, "reach max api daily quota limit", wxapi.IsQuota},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, fmt.Sprintf(`{"errcode":%d,"errmsg":%q}`, tc.code, tc.msg)))
			c, _ := newClient(f.srv.URL)
			_, err := c.AuthorizerToken(context.Background(), compToken, "wxcomp", "wxauth", "refresh")
			var we *wxapi.Error
			if !errors.As(err, &we) {
				t.Fatalf("err = %v (%T), want *wxapi.Error", err, err)
			}
			if we.Code != tc.code || we.Msg != tc.msg || we.API != "api_authorizer_token" {
				t.Errorf("error %+v, want code %d msg %q api api_authorizer_token", we, tc.code, tc.msg)
			}
			if !tc.pred(err) || wxapi.IsTransient(err) {
				t.Errorf("classification of %d wrong: predicate %v, transient %v", tc.code, tc.pred(err), wxapi.IsTransient(err))
			}
			if n := f.count(); n != 1 {
				t.Errorf("%d requests, want exactly 1", n)
			}
		})
	}
}

// 45011 (rate limited) is transient for the caller but not retried inside one call.
func TestRateLimitIsReturnedNotRetried(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"errcode":45011,"errmsg":"api minute-quota reach limit"}`))
	c, _ := newClient(f.srv.URL)
	err := c.StartPushTicket(context.Background(), "wxcomp", "secret")
	if wxapi.Code(err) != 45011 || !wxapi.IsTransient(err) {
		t.Errorf("err = %v, want transient errcode 45011", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestMaxAttempts(t *testing.T) {
	for _, tc := range []struct{ set, want int }{{0, 3}, {1, 1}, {2, 2}, {5, 5}, {-4, 1}} {
		t.Run(fmt.Sprint(tc.set), func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`))
			c, _ := newClient(f.srv.URL)
			c.MaxAttempts = tc.set
			err := c.StartPushTicket(context.Background(), "wxcomp", "secret")
			if wxapi.Code(err) != -1 {
				t.Errorf("err = %v, want the last errcode -1", err)
			}
			if n := f.count(); n != tc.want {
				t.Errorf("MaxAttempts %d: %d requests, want %d", tc.set, n, tc.want)
			}
		})
	}
}

func TestHTTPErrorAfterRetries(t *testing.T) {
	f := newFake(t, always(http.StatusInternalServerError, "oops"))
	c, _ := newClient(f.srv.URL)
	c.MaxAttempts = 2
	err := c.StartPushTicket(context.Background(), "wxcomp", "secret")
	var he *wxapi.HTTPError
	if !errors.As(err, &he) || he.Status != 500 || he.API != "api_start_push_ticket" {
		t.Fatalf("err = %v, want *HTTPError 500 for api_start_push_ticket", err)
	}
	if !wxapi.IsTransient(err) {
		t.Error("HTTP 500 should be transient")
	}
	if n := f.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestHTTP4xxNotRetried(t *testing.T) {
	f := newFake(t, always(http.StatusNotFound, "not found"))
	c, _ := newClient(f.srv.URL)
	err := c.StartPushTicket(context.Background(), "wxcomp", "secret")
	var he *wxapi.HTTPError
	if !errors.As(err, &he) || he.Status != 404 || wxapi.IsTransient(err) {
		t.Fatalf("err = %v, want a non-transient *HTTPError 404", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// Cancelling the parent context while waiting to retry ends the call at once. The backoff is an hour, so
// a call that kept waiting would hang the test instead of passing.
func TestParentCancelDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake(t, always(http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`))
	c, _ := newClient(f.srv.URL)
	// The client logs "retrying" just before it waits: cancel then, so the cancellation lands in the wait.
	c.Logger = slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) {
		if strings.Contains(string(p), "retrying") {
			cancel()
		}
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.Backoff = time.Hour
	c.MaxAttempts = 10
	err := c.StartPushTicket(ctx, "wxcomp", "secret")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// Cancelling the parent context during an attempt that would otherwise wait an hour ends the call.
func TestParentCancelDuringAttempt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := testDone(t)
	f := newFake(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		cancel()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	c, _ := newClient(f.srv.URL)
	c.Timeout = time.Hour
	c.Backoff = time.Hour
	c.MaxAttempts = 10
	err := c.StartPushTicket(ctx, "wxcomp", "secret")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClassification(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("refresh authorizer wx1: %w", fmt.Errorf("store: %w", err)) }
	werr := func(code int) error { return wrap(&wxapi.Error{API: "x", Code: code, Msg: "m"}) }
	type preds struct{ invalid, reauth, quota, transient bool }
	cases := []struct {
		name string
		err  error
		code int
		want preds
	}{
		{"40001", werr(40001), 40001, preds{invalid: true}},
		{"40014", werr(40014), 40014, preds{invalid: true}},
		{"42001", werr(42001), 42001, preds{invalid: true}},
		{"61023", werr(61023), 61023, preds{reauth: true}},
		{"61003", werr(61003), 61003, preds{reauth: true}},
		{"42002", werr(42002), 42002, preds{reauth: true}},
		{"45009", werr(45009), 45009, preds{quota: true}},
		{"-1", werr(-1), -1, preds{transient: true}},
		{"45011", werr(45011), 45011, preds{transient: true}},
		{"48001 business", werr(48001), 48001, preds{}},
		{"HTTP 502", wrap(&wxapi.HTTPError{API: "x", Status: 502}), 0, preds{transient: true}},
		{"HTTP 429", wrap(&wxapi.HTTPError{API: "x", Status: 429}), 0, preds{transient: true}},
		{"HTTP 403", wrap(&wxapi.HTTPError{API: "x", Status: 403}), 0, preds{}},
		{"deadline", wrap(context.DeadlineExceeded), 0, preds{transient: true}},
		{"net error", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}), 0, preds{transient: true}},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), 0, preds{transient: true}},
		{"EOF", wrap(io.EOF), 0, preds{transient: true}},
		{"canceled", wrap(context.Canceled), 0, preds{}},
		{"plain", errors.New("boom"), 0, preds{}},
		{"nil", nil, 0, preds{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := preds{wxapi.IsInvalidToken(tc.err), wxapi.NeedsReauth(tc.err), wxapi.IsQuota(tc.err), wxapi.IsTransient(tc.err)}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if c := wxapi.Code(tc.err); c != tc.code {
				t.Errorf("Code = %d, want %d", c, tc.code)
			}
			if tc.code != 0 {
				if !wxapi.IsCode(tc.err, 1, tc.code) || wxapi.IsCode(tc.err, tc.code+1) || wxapi.IsCode(tc.err) {
					t.Errorf("IsCode wrong for %d", tc.code)
				}
			} else if wxapi.IsCode(tc.err, 0) {
				t.Error("IsCode(err, 0) must be false for an error without errcode")
			}
		})
	}
}

func TestNonJSONAnswers(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"html", "<html><body>hello</body></html>"},
		{"empty", ""},
		{"null", "null"},
		{"array", "[]"},
		{"truncated", `{"component_access_token":"abc`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, tc.body))
			c, _ := newClient(f.srv.URL)
			// Call itself, not an endpoint method: those also reject answers missing their field.
			var out struct {
				Token string `json:"component_access_token"`
			}
			err := c.Call(context.Background(), "api_component_token", http.MethodPost, "/cgi-bin/component/api_component_token", nil, map[string]string{}, &out)
			if err == nil {
				t.Fatalf("got %+v, want an error for answer %q", out, tc.body)
			}
			if !strings.Contains(err.Error(), "api_component_token") {
				t.Errorf("error %q does not name the API", err)
			}
			if n := f.count(); n != 1 {
				t.Errorf("%d requests, want 1 (a malformed answer is not retried)", n)
			}
		})
	}
}

func TestAnswerSizeLimit(t *testing.T) {
	const limit = 4 << 20
	// padded builds a valid JSON success answer of exactly n bytes.
	padded := func(n int) string {
		head, tail := `{"errcode":0,"pad":"`, `"}`
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	t.Run("at the limit", func(t *testing.T) {
		f := newFake(t, always(http.StatusOK, padded(limit)))
		c, _ := newClient(f.srv.URL)
		c.Timeout = time.Minute // reading 4 MiB under -race on a busy machine is slow; not what is tested
		if err := c.Call(context.Background(), "big", http.MethodGet, "/big", nil, nil, nil); err != nil {
			t.Fatalf("answer of exactly %d bytes: %v", limit, err)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		f := newFake(t, always(http.StatusOK, padded(limit+1)))
		c, _ := newClient(f.srv.URL)
		err := c.Call(context.Background(), "big", http.MethodGet, "/big", nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v, want a size error", err)
		}
		if n := f.count(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// Every failure kind: the error string and the debug log must not carry any token or secret of the call.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	const (
		appSecret    = "APPSECRET-3f9c2a7e"
		ticket       = "TICKET-ticket@@@b81d"
		accessToken  = "ACCESSTOKEN-61W3mEpU6"
		refreshToken = "REFRESHTOKEN-dTo-YCX"
	)
	secrets := []string{appSecret, ticket, accessToken, refreshToken, url.QueryEscape(accessToken)}

	closedPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	kinds := []struct {
		name   string
		base   func(t *testing.T) string
		transt bool // the failure is retried (so the warn line with the error text is logged too)
	}{
		{"timeout", func(t *testing.T) string { return newFake(t, hang(testDone(t))).srv.URL }, true},
		{"connection refused", closedPort, true},
		{"non-JSON answer", func(t *testing.T) string {
			return newFake(t, always(http.StatusOK, "<html>"+accessToken+"</html>")).srv.URL
		}, false},
		{"HTTP 500", func(t *testing.T) string {
			return newFake(t, always(http.StatusInternalServerError, `{"debug":"`+appSecret+`"}`)).srv.URL
		}, true},
		{"errcode answer", func(t *testing.T) string {
			return newFake(t, always(http.StatusOK, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest rid: 6751a2b3"}`)).srv.URL
		}, false},
		{"connection dropped", func(t *testing.T) string {
			return newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
			}).srv.URL
		}, true},
	}
	calls := []struct {
		name string
		do   func(c *wxapi.Client) error
	}{
		{"ComponentToken", func(c *wxapi.Client) error {
			_, err := c.ComponentToken(context.Background(), "wxcomp", appSecret, ticket)
			return err
		}},
		{"AuthorizerToken", func(c *wxapi.Client) error {
			_, err := c.AuthorizerToken(context.Background(), accessToken, "wxcomp", "wxauth", refreshToken)
			return err
		}},
		{"StartPushTicket", func(c *wxapi.Client) error { return c.StartPushTicket(context.Background(), "wxcomp", appSecret) }},
	}
	for _, k := range kinds {
		for _, call := range calls {
			t.Run(k.name+"/"+call.name, func(t *testing.T) {
				c, logs := newClient(k.base(t))
				c.MaxAttempts = 2
				c.Timeout = 200 * time.Millisecond
				err := call.do(c)
				if err == nil {
					t.Fatal("want an error")
				}
				if wxapi.IsTransient(err) != k.transt {
					t.Errorf("IsTransient(%v) = %v, want %v", err, !k.transt, k.transt)
				}
				out := logs.String()
				if !strings.Contains(out, `"wechat call"`) || (k.transt && !strings.Contains(out, "retrying")) {
					t.Fatalf("expected log lines were not written; log:\n%s", out)
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains secret %q", err, s)
					}
					if strings.Contains(out, s) {
						t.Errorf("log contains secret %q:\n%s", s, out)
					}
				}
			})
		}
	}
}

// One client is shared by concurrent handlers.
func TestConcurrentCalls(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 8 { // some calls need retries; none can see more than 8 failures
			reply(w, http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`)
			return
		}
		reply(w, http.StatusOK, answerPreAuthCode)
	})
	c, _ := newClient(f.srv.URL)
	c.MaxAttempts = 9
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := c.CreatePreAuthCode(context.Background(), compToken, "wxcomp"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	testComponent = "wx0123456789abcdef"
	testSecret    = "component-secret-3f9a1c"
	testToken     = "pamtest-token"
	testAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

	mp1 = "wx5a1c0e8d2b7f3a01" // default mini program
	mp2 = "wx8b3d2f6e4c1a9e02" // default mini program
	oa1 = "wx3f6a8c1e2b9d4a04" // default official account
)

// waitLimit only guards against a broken sandbox hanging a test; nothing is
// asserted about how long anything takes.
const waitLimit = 10 * time.Second

// waitFor polls cond until it holds (or fails the test after waitLimit).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// event is one decrypted push: the plaintext XML fields plus the URL query.
type event struct {
	Fields map[string]string
	Query  url.Values
}

// receiver is the component's authorization-event URL: it verifies and
// decrypts each push with wxcrypt and answers "success" (or what it is told).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	events chan event
	crypt  *wxcrypt.Crypter

	mu     sync.Mutex
	answer string        // body to answer; default "success"
	status int           // HTTP status; default 200
	gate   chan struct{} // if non-nil, requests wait for it to close
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	c, err := wxcrypt.New(testToken, testAESKey, testComponent)
	if err != nil {
		t.Fatalf("wxcrypt.New: %v", err)
	}
	rc := &receiver{t: t, events: make(chan event, 100), crypt: c, answer: "success", status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	gate, answer, status := rc.gate, rc.answer, rc.status
	rc.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/xml" || q.Get("encrypt_type") != "aes" {
		rc.t.Errorf("push: method %s, content type %q, encrypt_type %q", r.Method, r.Header.Get("Content-Type"), q.Get("encrypt_type"))
	}
	if want := wxcrypt.Signature(testToken, q.Get("timestamp"), q.Get("nonce")); q.Get("signature") != want {
		rc.t.Errorf("push signature %q, want %q", q.Get("signature"), want)
	}
	env, err := wxcrypt.ParseEnvelope(body)
	if err != nil || env.AppID != testComponent {
		rc.t.Errorf("push envelope: %+v, %v", env, err)
	}
	plain, _, err := rc.crypt.Open(body, q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"))
	if err != nil {
		rc.t.Errorf("push does not decrypt: %v", err)
		http.Error(w, "bad push", http.StatusBadRequest)
		return
	}
	rc.events <- event{Fields: xmlFields(rc.t, plain), Query: q}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (rc *receiver) url() string { return rc.srv.URL + "/wechat/component/events" }

func (rc *receiver) setAnswer(status int, body string) {
	rc.mu.Lock()
	rc.status, rc.answer = status, body
	rc.mu.Unlock()
}

// next waits for the next push.
func (rc *receiver) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-rc.events:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no push arrived")
		return event{}
	}
}

// pending returns a push already received, if any, without waiting.
func (rc *receiver) pending() (event, bool) {
	select {
	case e := <-rc.events:
		return e, true
	default:
		return event{}, false
	}
}

// xmlFields flattens <xml><A>..</A><B>..</B></xml> into a map.
func xmlFields(t *testing.T, plain []byte) map[string]string {
	var doc struct {
		Fields []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(plain, &doc); err != nil {
		t.Errorf("push plaintext is not XML: %v", err)
	}
	out := make(map[string]string)
	for _, f := range doc.Fields {
		out[f.XMLName.Local] = f.Value
	}
	return out
}

// env is a started sandbox with its receiver and clock.
type env struct {
	sb    *Sandbox
	base  string
	rc    *receiver
	clock *fakeClock
	logs  *syncBuffer
}

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

func testConfig(rc *receiver, clock *fakeClock, logs io.Writer) Config {
	cfg := Config{
		ComponentAppID:  testComponent,
		ComponentSecret: testSecret,
		Token:           testToken,
		EncodingAESKey:  testAESKey,
		Now:             clock.Now,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if rc != nil {
		cfg.PushURL = rc.url()
	}
	return cfg
}

func newEnv(t *testing.T, tweak ...func(*Config)) *env {
	t.Helper()
	e := &env{rc: newReceiver(t), clock: newClock(), logs: &syncBuffer{}}
	cfg := testConfig(e.rc, e.clock, e.logs)
	for _, f := range tweak {
		f(&cfg)
	}
	sb, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	base, err := sb.Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e.sb, e.base = sb, base
	return e
}

// answer is a decoded JSON answer.
type answer map[string]any

func (a answer) code() int {
	if v, ok := a["errcode"].(float64); ok {
		return int(v)
	}
	return 0
}

func (a answer) str(key string) string { s, _ := a[key].(string); return s }

func (a answer) obj(key string) answer { m, _ := a[key].(map[string]any); return m }

// call makes an API request; body nil means GET.
func (e *env) call(t *testing.T, path string, query url.Values, body any) answer {
	t.Helper()
	a, _ := e.callCtx(t, context.Background(), path, query, body)
	return a
}

func (e *env) callCtx(t *testing.T, ctx context.Context, path string, query url.Values, body any) (answer, error) {
	t.Helper()
	u := e.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s: answer is not JSON (HTTP %d): %q", path, resp.StatusCode, raw)
	}
	a["_status"] = float64(resp.StatusCode)
	return a, nil
}

func wantCode(t *testing.T, what string, a answer, code int) {
	t.Helper()
	if a.code() != code {
		t.Fatalf("%s: errcode %d (%s), want %d", what, a.code(), a.str("errmsg"), code)
	}
}

func (e *env) ticket(t *testing.T) string {
	t.Helper()
	tk, err := e.sb.PushTicket(context.Background())
	if err != nil {
		t.Fatalf("PushTicket: %v", err)
	}
	e.rc.next(t)
	return tk
}

func (e *env) componentToken(t *testing.T) string {
	t.Helper()
	a := e.call(t, "/cgi-bin/component/api_component_token", nil, map[string]string{
		"component_appid": testComponent, "component_appsecret": testSecret, "component_verify_ticket": e.ticket(t),
	})
	wantCode(t, "api_component_token", a, 0)
	return a.str("component_access_token")
}

func tokenQuery(tok string) url.Values { return url.Values{"component_access_token": {tok}} }

func (e *env) preAuthCode(t *testing.T, ctok string) string {
	t.Helper()
	a := e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), map[string]string{"component_appid": testComponent})
	wantCode(t, "api_create_preauthcode", a, 0)
	return a.str("pre_auth_code")
}

// page GETs an HTML page and returns status and body.
func (e *env) page(t *testing.T, path string, q url.Values, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+path+"?"+q.Encode(), nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// confirm posts the Authorize form for appid and returns the response.
func (e *env) confirm(t *testing.T, appid, pre, redirect string, extra ...string) *http.Response {
	t.Helper()
	form := url.Values{
		"component_appid": {testComponent}, "pre_auth_code": {pre}, "redirect_uri": {redirect},
		"authorizer_appid": {appid},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	resp, err := noRedirect.PostForm(e.base+confirmPath, form)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// authorize runs the whole merchant flow for appid through the HTTP pages
// and returns the auth_code from the redirect (its push is consumed).
func (e *env) authorize(t *testing.T, ctok, appid string) (authCode string, push event) {
	t.Helper()
	pre := e.preAuthCode(t, ctok)
	resp := e.confirm(t, appid, pre, "https://platform.example/auth/callback?state=s1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("confirm: HTTP %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query().Get("auth_code"), e.rc.next(t)
}

// queryAuth exchanges an auth code and returns authorization_info.
func (e *env) queryAuth(t *testing.T, ctok, code string) answer {
	t.Helper()
	a := e.call(t, "/cgi-bin/component/api_query_auth", tokenQuery(ctok),
		map[string]string{"component_appid": testComponent, "authorization_code": code})
	wantCode(t, "api_query_auth", a, 0)
	return a.obj("authorization_info")
}

func (e *env) authorizerToken(t *testing.T, ctok, appid, refresh string) answer {
	t.Helper()
	return e.call(t, "/cgi-bin/component/api_authorizer_token", tokenQuery(ctok), map[string]string{
		"component_appid": testComponent, "authorizer_appid": appid, "authorizer_refresh_token": refresh,
	})
}

func (e *env) basicInfo(t *testing.T, atok string) answer {
	t.Helper()
	return e.call(t, "/cgi-bin/account/getaccountbasicinfo", url.Values{"access_token": {atok}}, nil)
}

func isPushError(err error) bool {
	var pe *PushError
	return errors.As(err, &pe)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

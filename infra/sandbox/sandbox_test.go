package sandbox

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewValidatesConfig(t *testing.T) {
	ok := testConfig(nil, newClock(), io.Discard)
	cases := map[string]func(*Config){
		"missing appid":        func(c *Config) { c.ComponentAppID = "" },
		"missing secret":       func(c *Config) { c.ComponentSecret = "" },
		"missing token":        func(c *Config) { c.Token = "" },
		"short AES key":        func(c *Config) { c.EncodingAESKey = "short" },
		"relative push URL":    func(c *Config) { c.PushURL = "/events" },
		"relative message URL": func(c *Config) { c.MessageURL = "/wechat/$APPID$/callback" },
		"ftp message URL":      func(c *Config) { c.MessageURL = "ftp://host/$APPID$" },
		"negative TTL":         func(c *Config) { c.TokenGrace = -1 },
		"negative scan":        func(c *Config) { c.PrivacyScanDuration = -time.Second },
		"reject rate over 1":   func(c *Config) { c.AuditRejectRate = 1.5 },
		"negative loss rate":   func(c *Config) { c.AuditEventLossRate = -0.1 },
		"NaN loss rate":        func(c *Config) { c.AuditEventLossRate = math.NaN() },
		"negative quota":       func(c *Config) { c.AuditQuota = -1 },
		"bad account appid":    func(c *Config) { c.Accounts = []Account{{AppID: "nope", Kind: KindMiniProgram, NickName: "x"}} },
		"bad account kind":     func(c *Config) { c.Accounts = []Account{{AppID: "wx0123456789abcdee", Kind: "shop", NickName: "x"}} },
		"duplicate account": func(c *Config) {
			a := Account{AppID: "wx0123456789abcdee", Kind: KindMiniProgram, NickName: "x"}
			c.Accounts = []Account{a, a}
		},
	}
	for name, tweak := range cases {
		cfg := ok
		tweak(&cfg)
		sb, err := New(cfg)
		if err == nil {
			sb.Close()
			t.Errorf("%s: New accepted it", name)
		} else if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testAESKey) {
			t.Errorf("%s: error leaks a secret: %v", name, err)
		}
	}
	sb, err := New(ok)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	defer sb.Close()
	if got := len(sb.Accounts()); got != 6 {
		t.Errorf("default accounts: %d", got)
	}
}

func TestStartTwiceAndAfterClose(t *testing.T) {
	sb, err := New(testConfig(nil, newClock(), io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start(); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Start: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestServeHTTPInProcessWithoutPushURL(t *testing.T) {
	sb, err := New(testConfig(nil, newClock(), io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	ticket, err := sb.PushTicket(context.Background())
	if err != nil || ticket == "" {
		t.Fatalf("PushTicket without PushURL: %q, %v", ticket, err)
	}
	resp, err := http.Post(srv.URL+"/cgi-bin/component/api_component_token", "application/json", strings.NewReader(
		`{"component_appid":"`+testComponent+`","component_appsecret":"`+testSecret+`","component_verify_ticket":"`+ticket+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "component_access_token") || resp.Header.Get("Content-Type") != "application/json; encoding=utf-8" {
		t.Fatalf("answer %s (%s)", body, resp.Header.Get("Content-Type"))
	}
	if len(sb.Pushes()) != 0 {
		t.Error("pushes recorded without a PushURL")
	}
}

// TestNoSecretsInPagesOrLogs runs a full flow and then checks that no
// secret, token, code or ticket appears in the status page or the logs.
func TestNoSecretsInPagesOrLogs(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, mp1)
	info := e.queryAuth(t, ctok, code)
	refreshed := e.authorizerToken(t, ctok, mp1, info.str("authorizer_refresh_token"))
	ticket, _ := e.sb.PushTicket(context.Background())
	e.rc.next(t)

	status, page := e.page(t, "/sandbox/", nil)
	if status != http.StatusOK || !containsAll(page, "鲜果时光小店", mp1, "已授权", "api_query_auth", "authorized", `id="revoke-`+mp1+`"`) {
		t.Fatalf("status page (HTTP %d) lacks expected content", status)
	}
	secrets := map[string]string{
		"secret": testSecret, "token": testToken, "aes key": testAESKey,
		"component token": ctok, "auth code": code,
		"authorizer token":  info.str("authorizer_access_token"),
		"refresh token":     info.str("authorizer_refresh_token"),
		"refreshed token":   refreshed.str("authorizer_access_token"),
		"pre_auth_code tag": "preauthcode@@@", "ticket": ticket,
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "authorizer access token issued") {
		t.Fatal("expected log lines missing")
	}
	for name, v := range secrets {
		if strings.Contains(page, v) {
			t.Errorf("status page shows the %s", name)
		}
		if strings.Contains(logs, v) {
			t.Errorf("logs contain the %s", name)
		}
	}
}

func TestAvatarAndQRCode(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/sandbox/avatar/" + mp1 + ".svg", "/sandbox/qrcode/" + mp1 + ".svg"} {
		resp, err := http.Get(e.base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "<svg") || strings.Contains(string(body), "href") {
			t.Errorf("%s: HTTP %d %.80s", p, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(e.base + "/sandbox/avatar/" + mp1 + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), ">鲜</text>") {
		t.Errorf("avatar lacks the first character: %s", body)
	}
	for _, p := range []string{"/sandbox/avatar/wx0000000000000000.svg", "/sandbox/avatar/" + mp1 + ".png"} {
		resp, err := http.Get(e.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: HTTP %d", p, resp.StatusCode)
		}
	}
}

// A connection that never sends a request (browsers and pooled clients open
// them ahead of time) must not make Close fail or wait for it.
func TestCloseWithUnusedConnection(t *testing.T) {
	sb, err := New(testConfig(nil, newClock(), io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Make sure the server has accepted it before closing.
	resp, err := http.Get(base + "/sandbox/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := sb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the unused connection is still open")
	}
}

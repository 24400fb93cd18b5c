package authpages_test

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/authlink"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/authpages"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	stateKey = "state-signing-key-for-tests-0123456789"
	linkKey  = "link-signing-key-for-tests-9876543210"
	miniApp  = "wx5a1c0e8d2b7f3a01" // sandbox mini program 鲜果时光小店
	offAcct  = "wx3f6a8c1e2b9d4a04" // sandbox official account (服务号) 鲜果时光
)

// env is the pages served through the API Gateway adapter over real HTTP, backed by DynamoDB Local and the
// sandbox over real HTTP.
type env struct {
	ticket  *authorization.Service // behind the ticket URL
	db      *dynamodb.Client
	store   *tokenstore.Store
	tenants *tenants.Store
	wx      *sandbox.Sandbox
	handler *authpages.Handler
	url     string // the pages' base URL
	logs    *testenv.LogBuffer
	offset  atomic.Int64 // the pages' clock skew, to age a state without sleeping
}

// options tune the environment. The sandbox always pushes to the ticket URL, as WeChat does: the push is
// what confirms which link an authorization came from.
type options struct {
	pushDelay  time.Duration // > 0: the redirect comes back before the push
	allowlist  []string
	preAuthTTL time.Duration // the sandbox's pre_auth_code lifetime; 0 = its default (10 min, as WeChat)
}

// callbackWait is the tests' bound on the callback's wait for WeChat's confirming push (8 s in production).
const callbackWait = 2 * time.Second

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	db := testenv.DynamoDB(t)
	e := &env{db: db, store: tokenstore.New(db, testenv.Table(t, db)), logs: &testenv.LogBuffer{}}
	e.tenants = tenants.New(e.store.Table())
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	pages := httptest.NewUnstartedServer(nil)
	pagesURL := "http://" + pages.Listener.Addr().String()
	var events *httptest.Server
	wx, base := testenv.Sandbox(t, func(c *sandbox.Config) {
		c.Logger = log.With("component", "sandbox")
		if o.preAuthTTL > 0 {
			c.PreAuthCodeTTL = o.preAuthTTL
		}
		events = httptest.NewUnstartedServer(nil)
		c.PushURL = "http://" + events.Listener.Addr().String() + "/wechat/component/events"
		c.PushDelay = o.pushDelay
	})
	e.wx = wx
	api := &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Backoff: 5 * time.Millisecond, Logger: log}
	component := credentials.NewComponent(e.store, api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	svc := authorization.New(e.store, component, api)

	crypter, err := wxcrypt.New(testenv.Token, testenv.EncodingAESKey, testenv.ComponentAppID)
	if err != nil {
		t.Fatal(err)
	}
	// The ticket URL: another Lambda function, with its own Service.
	e.ticket = authorization.New(e.store, component, api)
	ticket := &authevents.Handler{Crypter: crypter, Store: e.store, Logger: log, Authorizations: e.ticket}
	events.Config.Handler = localrun.HTTPHandler(ticket.Handle)
	events.Start()
	t.Cleanup(events.Close)
	if _, err := wx.PushTicket(context.Background()); err != nil {
		t.Fatal(err)
	}

	h, err := authpages.New(authpages.Handler{
		Service: svc, Table: e.store.Table(), Tenants: e.tenants, ComponentAppID: testenv.ComponentAppID,
		PublicBaseURL: pagesURL, MPBase: base, LinkKey: []byte(linkKey), StateKey: []byte(stateKey),
		ReturnAllowlist: o.allowlist, Logger: log, CallbackWait: callbackWait,
		Now: func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	pages.Config.Handler = localrun.HTTPHandler(h.Handle)
	pages.Start()
	t.Cleanup(pages.Close)
	e.url = pagesURL
	return e
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, u string) response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// link is the href of the element with id, unescaped and parsed.
func link(t *testing.T, page, id string) *url.URL {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `" href="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no link #%s on the page:\n%s", id, page)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// text is the text content of the element with id (tags stripped, entities unescaped).
func text(page, id string) (string, bool) {
	m := regexp.MustCompile(`(?s)id="` + id + `"[^>]*>(.*?)</(div|ul|dd|a)>`).FindStringSubmatch(page)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " ")), true
}

// signed is the start link the operator CLI would print for l (the tenant created first, as the CLI requires).
func (e *env) signed(t *testing.T, l authlink.Link) string {
	t.Helper()
	if _, err := e.tenants.Set(context.Background(), l.Tenant, tenants.Changes{}); err != nil {
		t.Fatal(err)
	}
	if l.Expires.IsZero() {
		l.Expires = time.Now().Add(7 * 24 * time.Hour)
	}
	u, err := l.URL([]byte(linkKey), e.url)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// begin renders the start page of a signed link and returns the PC link's pre_auth_code and redirect_uri.
func (e *env) begin(t *testing.T, l authlink.Link) (pre string, redirect *url.URL, page response) {
	t.Helper()
	page = get(t, e.signed(t, l))
	if page.status != 200 {
		t.Fatalf("start page: HTTP %d\n%s", page.status, page.body)
	}
	pc := link(t, page.body, "authorize-pc").Query()
	redirect, err := url.Parse(pc.Get("redirect_uri"))
	if err != nil {
		t.Fatal(err)
	}
	return pc.Get("pre_auth_code"), redirect, page
}

// items counts the table's items (a refused request must write none).
func (e *env) items(t *testing.T) int {
	t.Helper()
	out, err := e.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.store.Table().Name), Select: "COUNT"})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

// latePush: WeChat's push comes after the test is over, unless the test delivers it (deliverPush).
const latePush = time.Hour

// deliverPush is WeChat's `authorized` push for code reaching the ticket URL.
func (e *env) deliverPush(t *testing.T, appid, code, pre string) {
	t.Helper()
	err := e.ticket.Authorized(context.Background(), authevents.Event{InfoType: "authorized", AuthorizerAppID: appid,
		AuthorizationCode: code, PreAuthCode: pre, CreateTime: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
}

// authorize does what the merchant's click on the sandbox's Authorize button does and returns the auth_code.
func (e *env) authorize(t *testing.T, appid, pre string) string {
	t.Helper()
	code, err := e.wx.Authorize(context.Background(), appid, pre)
	if err != nil {
		t.Fatalf("sandbox authorize: %v", err)
	}
	return code
}

func callbackURL(redirect *url.URL, code string) string {
	u := *redirect
	q := u.Query()
	if code != "" {
		q.Set("auth_code", code)
		q.Set("expires_in", "600")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (e *env) mustNotBeStored(t *testing.T, appid string) {
	t.Helper()
	if a, err := e.store.Authorizer(context.Background(), appid); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("authorizer %s stored (%+v, %v), want nothing", appid, a, err)
	}
}

// secretsAbsent checks that neither the page nor the logs show the key, a token or the code.
func (e *env) secretsAbsent(t *testing.T, page string, secrets ...string) {
	t.Helper()
	logs := e.logs.String()
	for _, s := range append(secrets, stateKey, linkKey) {
		if s == "" {
			continue
		}
		if strings.Contains(page, s) {
			t.Errorf("the page shows a secret (%d chars)", len(s))
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs show a secret (%d chars)", len(s))
		}
	}
}

func TestMiniProgramAuthorizationIsStoredAndShown(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	pre, redirect, start := e.begin(t, authlink.Link{Tenant: "t1", AuthType: "2"})

	// The start page: headers, both links, the redirect back to us with a state.
	for k, v := range map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "strict-origin-when-cross-origin", "X-Frame-Options": "DENY",
		"Strict-Transport-Security": "max-age=31536000",
	} {
		if got := start.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := start.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "img-src http: https: data:", "style-src 'unsafe-inline'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	pc := link(t, start.body, "authorize-pc")
	if pc.Path != "/cgi-bin/componentloginpage" || pc.Query().Get("component_appid") != testenv.ComponentAppID ||
		pc.Query().Get("auth_type") != "2" || pre == "" {
		t.Fatalf("PC link %s", pc)
	}
	if redirect.String() != e.url+"/auth/callback?state="+url.QueryEscape(redirect.Query().Get("state")) {
		t.Fatalf("redirect_uri %s", redirect)
	}
	mobile := link(t, start.body, "authorize-mobile")
	mq := mobile.Query()
	if mobile.Path != "/safe/bindcomponent" || mobile.Fragment != "wechat_redirect" || mq.Get("action") != "bindcomponent" ||
		mq.Get("no_scan") != "1" || mq.Get("pre_auth_code") != pre || mq.Get("redirect_uri") != redirect.String() ||
		mq.Get("auth_type") != "2" || mq.Get("component_appid") != testenv.ComponentAppID {
		t.Fatalf("mobile link %s", mobile)
	}
	for _, want := range []string{"授权您的小程序", "Authorize a mini program", "t1"} {
		if !strings.Contains(start.body, want) {
			t.Errorf("start page lacks %q", want)
		}
	}

	code := e.authorize(t, miniApp, pre)
	res := get(t, callbackURL(redirect, code))
	if res.status != 200 {
		t.Fatalf("callback: HTTP %d\n%s", res.status, res.body)
	}
	a, err := e.store.Authorizer(ctx, miniApp)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tenant != "t1" || a.Kind != tokenstore.KindMiniProgram || a.Status != tokenstore.StatusAuthorized ||
		a.AccessToken == "" || a.RefreshToken != e.wx.RefreshToken(miniApp) ||
		!slices.Equal(a.PermissionSets, []int{17, 18, 19, 20, 21, 25}) || a.Info.NickName != "鲜果时光小店" {
		t.Fatalf("stored authorizer %+v", a)
	}
	if name, _ := text(res.body, "account-name"); strings.TrimSpace(name) != "鲜果时光小店" {
		t.Errorf("account-name %q", name)
	}
	if kind, _ := text(res.body, "account-kind"); !strings.Contains(kind, "小程序") || !strings.Contains(kind, "Mini Program") {
		t.Errorf("account-kind %q", kind)
	}
	perms, _ := text(res.body, "permission-sets")
	for _, want := range []string{"帐号管理（小程序）", "开发管理与数据分析（小程序）", "Development management and data analysis",
		"客服消息管理（小程序）", "微信登录（小程序）", "数据分析（小程序）", "开放平台帐号管理（小程序）"} {
		if !strings.Contains(perms, want) {
			t.Errorf("permission-sets lacks %q: %q", want, perms)
		}
	}
	if !strings.Contains(res.body, "/sandbox/avatar/"+miniApp+".svg") {
		t.Error("result page lacks the avatar")
	}
	if _, ok := text(res.body, "continue"); ok {
		t.Error("continue link without a return_url")
	}
	if res.header.Get("Content-Security-Policy") != csp || res.header.Get("Cache-Control") != "no-store" {
		t.Error("result page headers differ from the start page's")
	}
	e.secretsAbsent(t, start.body+res.body, a.AccessToken, a.RefreshToken)
	e.secretsAbsent(t, res.body, code)
	if logs := e.logs.String(); strings.Contains(logs, code) || strings.Contains(logs, redirect.Query().Get("state")) {
		t.Error("the logs show the auth_code or the state")
	}
	if !strings.Contains(e.logs.String(), `"request_id"`) {
		t.Error("logs lack the request id")
	}
}

func TestPushFirstBindsTheTenantAndTheCallbackShowsIt(t *testing.T) {
	e := newEnv(t, options{})
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t2", AuthType: "1"})
	// Authorize pushes `authorized` synchronously: the ticket URL exchanges the code before the redirect, and
	// binds the tenant its pre_auth_code was issued to.
	code := e.authorize(t, offAcct, pre)
	before, err := e.store.Authorizer(context.Background(), offAcct)
	if err != nil || before.Tenant != "t2" {
		t.Fatalf("after the push: %+v, %v; want stored and bound to t2", before, err)
	}
	res := get(t, callbackURL(redirect, code))
	if res.status != 200 {
		t.Fatalf("callback: HTTP %d\n%s", res.status, res.body)
	}
	a, err := e.store.Authorizer(context.Background(), offAcct)
	if err != nil || a.Tenant != "t2" || a.Kind != tokenstore.KindOfficialAccount || a.RefreshToken != before.RefreshToken {
		t.Fatalf("after the callback: %+v, %v", a, err)
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1", n)
	}
	kind, _ := text(res.body, "account-kind")
	if !strings.Contains(kind, "公众号") || !strings.Contains(kind, "服务号") {
		t.Errorf("account-kind %q", kind)
	}
	perms, _ := text(res.body, "permission-sets")
	for _, want := range []string{"消息管理", "Message management", "自定义菜单", "Custom menu", "开放平台帐号管理"} {
		if !strings.Contains(perms, want) {
			t.Errorf("permission-sets lacks %q", want)
		}
	}
	e.secretsAbsent(t, res.body, a.AccessToken, a.RefreshToken, code)
}

func TestBadCallbacksAre400AndStoreNothing(t *testing.T) {
	e := newEnv(t, options{pushDelay: latePush})
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	code := e.authorize(t, miniApp, pre)
	state := redirect.Query().Get("state")
	st, err := authpages.VerifyState([]byte(stateKey), state, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	withState := func(s string) *url.URL {
		u := *redirect
		u.RawQuery = url.Values{"state": {s}}.Encode()
		return &u
	}
	forged := st
	forged.Tenant = "attacker"
	otherKeyState, _ := authpages.SignState([]byte("another-key-another-key-another"), forged)
	_, ourSig, _ := strings.Cut(state, ".")
	forgedBody, _, _ := strings.Cut(otherKeyState, ".")

	// restart: a genuine state (even an expired one) lets the error page offer a fresh start for its tenant;
	// a state we cannot trust does not.
	cases := []struct {
		name    string
		url     string
		age     time.Duration
		wantZH  string
		restart bool
	}{
		{"state re-signed with another key", callbackURL(withState(otherKeyState), code), 0, "授权链接无效", false},
		{"payload tampered, signature kept", callbackURL(withState(forgedBody+"."+ourSig), code), 0, "授权链接无效", false},
		{"garbage state", callbackURL(withState("nonsense"), code), 0, "授权链接无效", false},
		{"expired state", callbackURL(redirect, code), authpages.DefaultStateTTL + time.Minute, "已过期", true},
		{"missing auth_code", callbackURL(redirect, ""), 0, "缺少授权码", true},
		{"missing state", e.url + "/auth/callback?" + url.Values{"auth_code": {code}}.Encode(), 0, "缺少 state", false},
		{"state given twice", callbackURL(redirect, code) + "&state=" + url.QueryEscape(state), 0, "参数无效", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.offset.Store(int64(tc.age))
			defer e.offset.Store(0)
			res := get(t, tc.url)
			if res.status != 400 {
				t.Fatalf("HTTP %d, want 400\n%s", res.status, res.body)
			}
			if !strings.Contains(res.body, tc.wantZH) || !strings.Contains(res.body, `id="error"`) {
				t.Fatalf("error page lacks %q:\n%s", tc.wantZH, res.body)
			}
			if strings.Contains(res.body, "attacker") {
				t.Fatal("a forged tenant was rendered")
			}
			if tc.restart {
				if l := link(t, res.body, "restart"); l.Path != "/auth/start" || l.Query().Get("tenant") != "t1" || l.Query().Get("sig") == "" {
					t.Errorf("restart link %s, want the signed start link of tenant t1", l)
				}
			} else if strings.Contains(res.body, `id="restart"`) {
				t.Error("an untrusted state got a restart link")
			}
			e.mustNotBeStored(t, miniApp)
		})
	}
	if n := e.wx.Calls("api_query_auth"); n != 0 {
		t.Fatalf("bad callbacks made %d api_query_auth calls", n)
	}
	// None of them spent the state or the code: the real callback still works. It exchanges the code; with
	// WeChat's push late, it cannot show the account yet.
	if res := get(t, callbackURL(redirect, code)); res.status != 202 || strings.Contains(res.body, `id="account-name"`) {
		t.Fatalf("genuine callback after the bad ones: HTTP %d\n%s", res.status, res.body)
	}
	if a, err := e.store.Authorizer(context.Background(), miniApp); err != nil || a.Tenant != "" {
		t.Fatalf("stored %+v, %v; want stored and not bound before the push", a, err)
	}
	// The push arrives: it binds the tenant, and a reload of the page shows the account.
	e.deliverPush(t, miniApp, code, pre)
	res := get(t, callbackURL(redirect, code))
	if res.status != 200 || !strings.Contains(res.body, `id="account-name"`) {
		t.Fatalf("reload after the push: HTTP %d\n%s", res.status, res.body)
	}
	if a, err := e.store.Authorizer(context.Background(), miniApp); err != nil || a.Tenant != "t1" {
		t.Fatalf("stored %+v, %v", a, err)
	}
}

func TestReplayedStateIsRefusedAndChangesNothing(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	code := e.authorize(t, miniApp, pre)
	firstRes := get(t, callbackURL(redirect, code))
	if firstRes.status != 200 {
		t.Fatalf("first callback: HTTP %d", firstRes.status)
	}
	first, err := e.store.Authorizer(ctx, miniApp)
	if err != nil {
		t.Fatal(err)
	}
	calls := e.wx.Calls("api_query_auth")

	// The same state with a fresh, valid code of another account is refused.
	pre2, _, _ := e.begin(t, authlink.Link{Tenant: "t9"})
	code2 := e.authorize(t, offAcct, pre2)
	other, err := e.store.Authorizer(ctx, offAcct)
	if err != nil {
		t.Fatal(err)
	}
	calls = e.wx.Calls("api_query_auth")
	res := get(t, callbackURL(redirect, code2))
	if res.status != 400 || !strings.Contains(res.body, "已使用过") || strings.Contains(res.body, `id="account-name"`) {
		t.Fatalf("replay with another code: HTTP %d\n%s", res.status, res.body)
	}
	if a, err := e.store.Authorizer(ctx, offAcct); err != nil || a.Version != other.Version || a.Tenant != "t9" {
		t.Fatalf("the replay changed the other account: %+v -> %+v (%v)", other, a, err)
	}
	after, err := e.store.Authorizer(ctx, miniApp)
	if err != nil || after.Version != first.Version || after.Tenant != "t1" {
		t.Fatalf("replay changed the authorizer: %+v -> %+v (%v)", first, after, err)
	}
	if n := e.wx.Calls("api_query_auth"); n != calls {
		t.Fatalf("replays called api_query_auth %d more times", n-calls)
	}
	// The error page offers a fresh start from the same signed link.
	if l := link(t, res.body, "restart"); l.Path != "/auth/start" || l.Query().Get("tenant") != "t1" || l.Query().Get("sig") == "" {
		t.Fatalf("restart link %s", l)
	}
}

func TestReloadOfTheResultPageShowsItAgain(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	code := e.authorize(t, miniApp, pre)
	first := get(t, callbackURL(redirect, code))
	if first.status != 200 {
		t.Fatalf("first callback: HTTP %d\n%s", first.status, first.body)
	}
	stored, err := e.store.Authorizer(ctx, miniApp)
	if err != nil {
		t.Fatal(err)
	}
	calls := e.wx.Calls("api_query_auth")

	// The merchant reloads the result page: the same state and code again.
	again := get(t, callbackURL(redirect, code))
	if again.status != 200 {
		t.Fatalf("reload: HTTP %d\n%s", again.status, again.body)
	}
	for _, id := range []string{"account-name", "account-kind", "permission-sets"} {
		want, _ := text(first.body, id)
		if got, ok := text(again.body, id); !ok || got != want {
			t.Errorf("reload %s = %q, want %q", id, got, want)
		}
	}
	if n := e.wx.Calls("api_query_auth"); n != calls {
		t.Fatalf("the reload called api_query_auth %d more times", n-calls)
	}
	if a, err := e.store.Authorizer(ctx, miniApp); err != nil || a.Version != stored.Version {
		t.Fatalf("the reload changed the authorizer: %+v -> %+v (%v)", stored, a, err)
	}
	e.secretsAbsent(t, again.body, stored.AccessToken, stored.RefreshToken, code)

	// Once the account belongs to another tenant, the old link no longer shows it.
	pre2, redirect2, _ := e.begin(t, authlink.Link{Tenant: "t2"})
	code2 := e.authorize(t, miniApp, pre2)
	if res := get(t, callbackURL(redirect2, code2)); res.status != 200 {
		t.Fatalf("re-authorization by t2: HTTP %d\n%s", res.status, res.body)
	}
	if a, err := e.store.Authorizer(ctx, miniApp); err != nil || a.Tenant != "t2" {
		t.Fatalf("after re-authorization by t2: %+v, %v", a, err)
	}
	res := get(t, callbackURL(redirect, code))
	if res.status != 400 || !strings.Contains(res.body, "已使用过") || strings.Contains(res.body, `id="account-name"`) {
		t.Fatalf("old link after the account moved to t2: HTTP %d\n%s", res.status, res.body)
	}
	if h, _ := e.store.History(ctx, miniApp); h[len(h)-1].Kind != "tenant_moved" || h[len(h)-1].FromTenant != "t1" {
		t.Fatalf("the move is not in the history: %+v", h)
	}
}

func TestWeChatRefusingTheCodeToTheRedirectIsLeftToThePushAndStoresNothing(t *testing.T) {
	e := newEnv(t, options{pushDelay: latePush})
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	code := e.authorize(t, miniApp, pre)
	e.wx.SetFault("api_query_auth", sandbox.Fault{ErrCode: 61010, ErrRate: 1})
	// The redirect cannot tell a dead code from one an earlier exchange spent (its push can): it says the
	// authorization is being confirmed, shows no account, and stores nothing.
	res := get(t, callbackURL(redirect, code))
	if res.status != 202 || !strings.Contains(res.body, `id="pending"`) || strings.Contains(res.body, `id="account-name"`) {
		t.Fatalf("HTTP %d\n%s", res.status, res.body)
	}
	e.mustNotBeStored(t, miniApp)
	e.secretsAbsent(t, res.body, code)
}

func TestWeChatBusyIs502AndStoresNothing(t *testing.T) {
	e := newEnv(t, options{pushDelay: latePush})
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	code := e.authorize(t, miniApp, pre)
	e.wx.SetFault("api_query_auth", sandbox.Fault{BusyRate: 1})
	res := get(t, callbackURL(redirect, code))
	if res.status != 502 || !strings.Contains(res.body, "微信服务暂时不可用") {
		t.Fatalf("HTTP %d\n%s", res.status, res.body)
	}
	e.mustNotBeStored(t, miniApp)

	// The start page too: no pre_auth_code, no page with a dead link.
	e.wx.SetFault("*", sandbox.Fault{BusyRate: 1})
	e.wx.SetFault("api_query_auth", sandbox.Fault{})
	// (t1's cached pre_auth_code would still be served: only WeChat's push says it was spent.)
	start := get(t, e.signed(t, authlink.Link{Tenant: "t2"}))
	if start.status != 502 || strings.Contains(start.body, `id="authorize-pc"`) {
		t.Fatalf("start with WeChat busy: HTTP %d\n%s", start.status, start.body)
	}
}

func TestReturnURLAllowList(t *testing.T) {
	e := newEnv(t, options{allowlist: []string{"https://shop.example.com/after-auth/", "http://127.0.0.1:9000"}})

	for _, bad := range []string{
		"https://evil.example.net/after-auth/", "https://shop.example.com/other", "http://shop.example.com/after-auth/",
		"https://shop.example.com/after-auth/../admin",
	} {
		// Even a link the provider signed may not send the merchant off the allow-list.
		res := get(t, e.signed(t, authlink.Link{Tenant: "t1", ReturnURL: bad}))
		if res.status != 400 || !strings.Contains(res.body, "不在平台允许的列表中") {
			t.Fatalf("return_url %q: HTTP %d\n%s", bad, res.status, res.body)
		}
		if strings.Contains(res.body, "evil") || strings.Contains(res.body, `id="authorize-pc"`) {
			t.Fatalf("refused return_url %q rendered", bad)
		}
	}

	ret := "https://shop.example.com/after-auth/done?tenant=t1"
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1", ReturnURL: ret})
	code := e.authorize(t, miniApp, pre)
	res := get(t, callbackURL(redirect, code))
	if res.status != 200 {
		t.Fatalf("callback: HTTP %d\n%s", res.status, res.body)
	}
	c := link(t, res.body, "continue")
	q := c.Query()
	if c.Scheme != "https" || c.Host != "shop.example.com" || c.Path != "/after-auth/done" ||
		q.Get("authorizer_appid") != miniApp || q.Get("status") != "authorized" || q.Get("tenant") != "t1" {
		t.Fatalf("continue link %s", c)
	}
	if strings.Contains(res.body, `http-equiv="refresh"`) || strings.Contains(res.body, "<script") {
		t.Fatal("the result page redirects by itself")
	}
}

// Issue 7, item 6: the return URL was allowed (and signed into the link and the state) when the page was
// rendered; the provider has since taken it off the allow-list. The result page must not offer it.
func TestResultPageRechecksTheReturnURLAgainstTheCurrentAllowList(t *testing.T) {
	e := newEnv(t, options{allowlist: []string{"https://shop.example.com/after-auth/"}})
	ret := "https://shop.example.com/after-auth/done"
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "t1", ReturnURL: ret})
	code := e.authorize(t, miniApp, pre)
	e.handler.ReturnAllowlist = []string{"https://other.example.com/"}
	res := get(t, callbackURL(redirect, code))
	if res.status != 200 || !strings.Contains(res.body, `id="account-name"`) {
		t.Fatalf("callback: HTTP %d\n%s", res.status, res.body)
	}
	if strings.Contains(res.body, `id="continue"`) || strings.Contains(res.body, "shop.example.com") {
		t.Fatal("the result page offers a return URL no longer on the allow-list")
	}
}

// Issue 7, item 3: /auth/start serves only links the provider signed. Unsigned, tampered, re-signed,
// expired links and links for unknown tenants get their error page, call WeChat for nothing and write
// nothing.
func TestUnsignedTamperedOrExpiredStartLinksCostNothing(t *testing.T) {
	e := newEnv(t, options{})
	good := e.signed(t, authlink.Link{Tenant: "t1", AuthType: "2"})
	gu, _ := url.Parse(good)
	tamper := func(name, value string) string {
		q := gu.Query()
		q.Set(name, value)
		u := *gu
		u.RawQuery = q.Encode()
		return u.String()
	}
	otherKey, _ := authlink.Link{Tenant: "t1", Expires: time.Now().Add(time.Hour)}.URL([]byte("another-key-another-key-another"), e.url)
	expired, _ := authlink.Link{Tenant: "t1", Expires: time.Now().Add(-time.Minute)}.URL([]byte(linkKey), e.url)
	unknown, _ := authlink.Link{Tenant: "nobody", Expires: time.Now().Add(time.Hour)}.URL([]byte(linkKey), e.url)
	items := e.items(t)
	for _, tc := range []struct {
		name, url string
		status    int
		zh        string
	}{
		{"unsigned", e.url + "/auth/start?tenant=t1", 403, "未经服务商签发"},
		{"no query", e.url + "/auth/start", 403, "未经服务商签发"},
		{"tenant changed", tamper("tenant", "t2"), 403, "无效或已被修改"},
		{"auth_type changed", tamper("auth_type", "1"), 403, "无效或已被修改"},
		{"return_url added", tamper("return_url", "https://evil.example.net/"), 403, "无效或已被修改"},
		{"expiry extended", tamper("exp", strconv.FormatInt(time.Now().Add(1000*time.Hour).Unix(), 10)), 403, "无效或已被修改"},
		{"signature truncated", tamper("sig", gu.Query().Get("sig")[:10]), 403, "无效或已被修改"},
		{"signed with another key", otherKey, 403, "无效或已被修改"},
		{"expired", expired, 410, "已过期"},
		{"unknown tenant", unknown, 404, "商户不存在"},
		{"parameter twice", good + "&tenant=t1", 400, "参数无效"},
	} {
		res := get(t, tc.url)
		if res.status != tc.status || !strings.Contains(res.body, tc.zh) || strings.Contains(res.body, `id="authorize-pc"`) {
			t.Errorf("%s: HTTP %d, want %d with %q\n%s", tc.name, res.status, tc.status, tc.zh, res.body)
		}
	}
	if n := e.wx.Calls("api_create_preauthcode") + e.wx.Calls("api_component_token"); n != 0 {
		t.Fatalf("refused links made %d WeChat calls", n)
	}
	if n := e.items(t); n != items {
		t.Fatalf("refused links wrote %d items", n-items)
	}
	// WeChat appends its own parameters to links shared in a chat: outside the signature, they are ignored.
	if res := get(t, good+"&from=singlemessage&isappinstalled=0"); res.status != 200 {
		t.Fatalf("shared link: HTTP %d\n%s", res.status, res.body)
	}
}

// Issue 7, item 3: a victim's auth_code (from the callback URL in browser history, or a link sent to
// support) replayed through the attacker's own signed link shows nothing and moves nothing.
func TestStolenAuthCodeReplayedThroughAnotherTenantsLinkShowsNothing(t *testing.T) {
	e := newEnv(t, options{})
	pre, redirect, _ := e.begin(t, authlink.Link{Tenant: "victim"})
	code := e.authorize(t, miniApp, pre)
	if res := get(t, callbackURL(redirect, code)); res.status != 200 {
		t.Fatalf("victim's callback: HTTP %d\n%s", res.status, res.body)
	}
	_, attackerRedirect, _ := e.begin(t, authlink.Link{Tenant: "attacker"})
	res := get(t, callbackURL(attackerRedirect, code))
	if res.status != 202 || !strings.Contains(res.body, `id="pending"`) {
		t.Fatalf("replayed code: HTTP %d\n%s", res.status, res.body)
	}
	for _, leak := range []string{"鲜果时光", miniApp, "victim"} {
		if strings.Contains(res.body, leak) {
			t.Errorf("the attacker's page shows %q", leak)
		}
	}
	a, err := e.store.Authorizer(context.Background(), miniApp)
	if err != nil || a.Tenant != "victim" {
		t.Fatalf("after the replay: tenant %q, %v", a.Tenant, err)
	}
}

func TestStartPageOfferedAccountsAndMethods(t *testing.T) {
	e := newEnv(t, options{})
	// A biz_appid the provider signed goes into both links.
	_, _, page := e.begin(t, authlink.Link{Tenant: "t1.shop-2_x", BizAppID: offAcct})
	for _, id := range []string{"authorize-pc", "authorize-mobile"} {
		if got := link(t, page.body, id).Query().Get("biz_appid"); got != offAcct {
			t.Errorf("%s biz_appid %q", id, got)
		}
	}
	if res := get(t, e.url+"/auth/elsewhere"); res.status != 404 || !strings.Contains(res.body, `id="error"`) {
		t.Errorf("unknown path: HTTP %d", res.status)
	}
	resp, err := http.Post(e.signed(t, authlink.Link{Tenant: "t1"}), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST: HTTP %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestPreAuthCodeIsReusedPerTenantUntilUsed(t *testing.T) {
	e := newEnv(t, options{})
	pre1, r1, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	pre1b, r1b, _ := e.begin(t, authlink.Link{Tenant: "t1"})
	if pre1 != pre1b || e.wx.Calls("api_create_preauthcode") != 1 {
		t.Fatalf("two renders for t1: codes %q %q, %d api_create_preauthcode calls", pre1, pre1b, e.wx.Calls("api_create_preauthcode"))
	}
	if r1.Query().Get("state") == r1b.Query().Get("state") {
		t.Fatal("two renders share a state")
	}
	// WeChat takes a pre_auth_code for one authorization: another tenant never gets t1's.
	if pre2, _, _ := e.begin(t, authlink.Link{Tenant: "t2"}); pre2 == pre1 {
		t.Fatal("two tenants were given the same pre_auth_code")
	}
	code := e.authorize(t, miniApp, pre1)
	if res := get(t, callbackURL(r1, code)); res.status != 200 {
		t.Fatalf("callback: HTTP %d", res.status)
	}
	// The used code is not offered again.
	if pre3, _, _ := e.begin(t, authlink.Link{Tenant: "t1"}); pre3 == pre1 {
		t.Fatal("a used pre_auth_code was offered again")
	}
}

func TestLinkLivesNoLongerThanItsPreAuthCode(t *testing.T) {
	for _, tc := range []struct {
		preAuthTTL time.Duration
		want       time.Duration
	}{
		{10 * time.Minute, 10 * time.Minute},   // WeChat's pre_auth_code dies first
		{time.Hour, authpages.DefaultStateTTL}, // the state's own lifetime
	} {
		t.Run(tc.preAuthTTL.String(), func(t *testing.T) {
			e := newEnv(t, options{preAuthTTL: tc.preAuthTTL})
			before := time.Now()
			_, redirect, page := e.begin(t, authlink.Link{Tenant: "t1"})
			st, err := authpages.VerifyState([]byte(stateKey), redirect.Query().Get("state"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			// Exp is in whole seconds, taken between before and now.
			if exp := time.Unix(st.Exp, 0); exp.Before(before.Add(tc.want-time.Second)) || exp.After(time.Now().Add(tc.want)) {
				t.Errorf("state expires %s after the render, want %s", exp.Sub(before).Round(time.Second), tc.want)
			}
			minutes := strconv.Itoa(int(tc.want / time.Minute))
			if !strings.Contains(page.body, "此页面 "+minutes+" 分钟内有效") || !strings.Contains(page.body, "works for "+minutes+" minutes") {
				t.Errorf("the page does not say the link works for %s minutes:\n%s", minutes, page.body)
			}
		})
	}
}

func TestNewRefusesShortOrMissingKeys(t *testing.T) {
	store := tokenstore.New(nil, "unused")
	base := authpages.Handler{
		Service: authorization.New(store, nil, nil), Table: store.Table(), Tenants: tenants.New(store.Table()),
		ComponentAppID: "wxcomponent", PublicBaseURL: "https://api.example.com", MPBase: "https://mp.weixin.qq.com",
		LinkKey: []byte("sixteen-bytes!!!"), StateKey: []byte("sixteen-bytes!!!"),
	}
	for _, key := range []string{"", "fifteen-bytes!!"} {
		h := base
		h.StateKey = []byte(key)
		if _, err := authpages.New(h); err == nil || !strings.Contains(err.Error(), "STATE_SIGNING_KEY") {
			t.Errorf("%d-byte state key: %v", len(key), err)
		}
		h = base
		h.LinkKey = []byte(key)
		if _, err := authpages.New(h); err == nil || !strings.Contains(err.Error(), "LINK_SIGNING_KEY") {
			t.Errorf("%d-byte link key: %v", len(key), err)
		}
	}
	if _, err := authpages.New(base); err != nil {
		t.Fatalf("16-byte keys refused: %v", err)
	}
	h := base
	h.ReturnAllowlist = []string{"http://shop.example.com"}
	if _, err := authpages.New(h); err == nil {
		t.Error("an http allow-list entry was accepted")
	}
	// A handler built without New still refuses to serve with a short key, and says so without the key.
	bad := base
	bad.StateKey = []byte("short")
	bad.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(localrun.HTTPHandler(bad.Handle))
	defer srv.Close()
	res := get(t, srv.URL+"/auth/start?tenant=t1")
	if res.status != 500 || strings.Contains(res.body, "short") {
		t.Fatalf("misconfigured handler: HTTP %d\n%s", res.status, res.body)
	}
}

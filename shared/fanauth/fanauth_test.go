package fanauth_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/fanauth"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Accounts of the sandbox used here: its default official accounts and mini programs, plus an official
// account without 用户管理 (set 2) and one without 网页服务 (set 4).
const (
	oaFollowed  = "wx3f6a8c1e2b9d4a04" // 鲜果时光: every default fan but 小红 follows it
	oaOther     = "wx6d2b4e9f7a3c1e05"
	miniProgram = "wx5a1c0e8d2b7f3a01"
	oaNoUsers   = "wx00000000000000c1"
	oaNoWeb     = "wx00000000000000c2"
	oaOtherShop = "wx9c4e1a7b3f6d2b06" // authorized by another tenant
)

// env is the sign-in as deployed: the handler behind a local API Gateway over real HTTP, DynamoDB Local,
// the sandbox over real HTTP, and a merchant page that records what it receives.
type env struct {
	wx        *sandbox.Sandbox
	store     *tokenstore.Store
	tenants   *tenants.Store
	platform  string // the handler's base URL
	merchant  string // the merchant page's URL
	sbURL     string
	secret    string // tenant shop-1's signing secret
	compTok   string
	logs      *testenv.LogBuffer
	now       func() time.Time
	mu        sync.Mutex
	shift     time.Duration
	responses []string // every Location and body the fan saw from the platform
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	testenv.DynamoDB(t) // skip or fail clearly without the emulators
	db := platform.NewDynamoDB(testenv.AWSConfig(t))
	e := &env{logs: &testenv.LogBuffer{}}
	e.store = tokenstore.New(db, testenv.Table(t, db))
	e.tenants = tenants.New(e.store.Table())
	e.now = func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return time.Now().Add(e.shift)
	}
	accounts := append(sandbox.DefaultAccounts(),
		sandbox.Account{AppID: oaNoUsers, Kind: sandbox.KindOfficialAccount, NickName: "无用户管理", ServiceType: 2, FuncInfo: []int{1, 4}},
		sandbox.Account{AppID: oaNoWeb, Kind: sandbox.KindOfficialAccount, NickName: "无网页服务", ServiceType: 2, FuncInfo: []int{1, 2}})
	var base string
	e.wx, base = testenv.Sandbox(t, func(c *sandbox.Config) {
		c.Accounts, c.OAuthDomain = accounts, "127.0.0.1"
		c.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
	})
	e.sbURL = base
	api := &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(e.logs, nil))}
	comp, compTok := testenv.Component(t, e.wx, api, e.store)
	e.compTok = compTok
	pick := func(ids ...string) []sandbox.Account {
		var out []sandbox.Account
		for _, a := range accounts {
			for _, id := range ids {
				if a.AppID == id {
					out = append(out, a)
				}
			}
		}
		return out
	}
	testenv.AuthorizeAll(t, e.wx, api, e.store, e.compTok, "shop-1", pick(oaFollowed, oaOther, miniProgram, oaNoUsers, oaNoWeb))
	testenv.AuthorizeAll(t, e.wx, api, e.store, e.compTok, "shop-2", pick(oaOtherShop))

	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "merchant page") }))
	t.Cleanup(merchant.Close)
	e.merchant = merchant.URL + "/shop/welcome?from=menu"
	r, err := e.tenants.Set(ctx, "shop-1", tenants.Changes{AddOrigins: []string{merchant.URL}})
	if err != nil {
		t.Fatal(err)
	}
	e.secret = r.NewSecret
	if _, err := e.tenants.Set(ctx, "shop-2", tenants.Changes{AddOrigins: []string{"https://shop2.example.com"}}); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewUnstartedServer(nil)
	e.platform = "http://" + srv.Listener.Addr().String()
	h, err := fanauth.New(fanauth.Handler{
		Accounts: e.store, Tenants: e.tenants, Table: e.store.Table(), Component: comp,
		Authorizers: credentials.NewAuthorizers(e.store, comp, api, credentials.Options{}), WeChat: api,
		ComponentAppID: testenv.ComponentAppID, PublicBaseURL: e.platform, OpenBase: base,
		StateKey: []byte("a-state-signing-key-for-tests"), Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Now: e.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	routed, err := localrun.RoutedHTTPHandler([]localrun.Route{{Method: "GET", Path: "/oauth/{appid}/start"}, {Method: "GET", Path: "/oauth/callback"}}, h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = routed
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// browser is a fan's WeChat browser: cookies (the sandbox's current fan) and redirects followed, every answer
// from the platform recorded.
func (e *env) browser(t *testing.T, fan string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if prev := via[len(via)-1]; strings.HasPrefix(prev.URL.String(), e.platform) && req.Response != nil {
			e.record(req.Response.Header.Get("Location"))
		}
		return nil
	}
	resp, err := c.Get(e.sbURL + "/sandbox/fans?use=" + fan)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

func (e *env) record(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.responses = append(e.responses, s)
}

func startURL(base, appid, scope, returnURL string) string {
	return base + "/oauth/" + appid + "/start?" + url.Values{"scope": {scope}, "return_url": {returnURL}}.Encode()
}

// get fetches u and returns the final response's URL, status and body.
func (e *env) get(t *testing.T, c *http.Client, u string) (*url.URL, int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Request.URL.String(), e.platform) {
		e.record(string(b))
	}
	return resp.Request.URL, resp.StatusCode, string(b)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// decide answers the sandbox's consent page with allow or refuse.
func (e *env) decide(t *testing.T, c *http.Client, page, decision string) (*url.URL, int, string) {
	t.Helper()
	form := url.Values{"decision": {decision}}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("state") == "" {
		t.Fatalf("no consent form on the page:\n%s", page)
	}
	resp, err := c.PostForm(e.sbURL+"/sandbox/oauth/decide", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL, resp.StatusCode, string(b)
}

// identity checks that u is the merchant's page with a valid wx_identity and returns its claims.
func (e *env) identity(t *testing.T, u *url.URL) fanauth.Identity {
	t.Helper()
	if !strings.HasPrefix(u.String(), strings.SplitN(e.merchant, "/shop", 2)[0]+"/shop/welcome") {
		t.Fatalf("landed on %s, want the merchant's page", u.Redacted())
	}
	if u.Query().Get("from") != "menu" {
		t.Errorf("the merchant's own query was lost: %s", u.RawQuery)
	}
	id, err := fanauth.Verify(e.secret, u.Query().Get("wx_identity"), e.platform, "shop-1", time.Now())
	if err != nil {
		t.Fatalf("wx_identity: %v (error=%q)", err, u.Query().Get("error"))
	}
	return id
}

func TestBaseSignInCarriesOpenIDAndFollowState(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		fan     string
		follows bool
	}{{"fan-1", true}, {"fan-2", false}} {
		u, _, _ := e.get(t, e.browser(t, c.fan), startURL(e.platform, oaFollowed, "snsapi_base", e.merchant))
		id := e.identity(t, u)
		if id.Subject != e.wx.OpenID(oaFollowed, c.fan) || id.AppID != oaFollowed || id.Scope != "snsapi_base" {
			t.Errorf("%s: sub %q appid %q scope %q, want openid %q", c.fan, id.Subject, id.AppID, id.Scope, e.wx.OpenID(oaFollowed, c.fan))
		}
		if id.Subscribe == nil || *id.Subscribe != c.follows {
			t.Errorf("%s: subscribe %v, want %v", c.fan, id.Subscribe, c.follows)
		}
		if id.NickName != "" || id.HeadImgURL != "" {
			t.Errorf("%s: snsapi_base must not carry a profile: %+v", c.fan, id)
		}
		if id.ExpiresAt == nil || id.ExpiresAt.Sub(id.IssuedAt.Time) != fanauth.DefaultIdentityTTL || id.ID == "" {
			t.Errorf("%s: iat/exp/jti %v %v %q", c.fan, id.IssuedAt, id.ExpiresAt, id.ID)
		}
	}
	// A follow that changes shows in the next sign-in: the answer is WeChat's, not remembered.
	e.wx.SetFollow(oaFollowed, "fan-2", true)
	u, _, _ := e.get(t, e.browser(t, "fan-2"), startURL(e.platform, oaFollowed, "snsapi_base", e.merchant))
	if id := e.identity(t, u); id.Subscribe == nil || !*id.Subscribe {
		t.Errorf("after following: subscribe %v", id.Subscribe)
	}
	if n := e.wx.Calls("sns_userinfo"); n != 0 {
		t.Errorf("snsapi_base read the profile %d times", n)
	}
	if _, err := fanauth.Verify("whsec_another", u.Query().Get("wx_identity"), e.platform, "shop-1", time.Now()); err == nil {
		t.Error("the identity verified with another secret")
	}
	if _, err := fanauth.Verify(e.secret, u.Query().Get("wx_identity"), e.platform, "shop-2", time.Now()); err == nil {
		t.Error("the identity verified for another tenant")
	}
	if _, err := fanauth.Verify(e.secret, u.Query().Get("wx_identity"), e.platform, "shop-1", time.Now().Add(10*time.Minute)); err == nil {
		t.Error("the identity verified after it expired")
	}
}

func TestUserInfoSignInConsentAndRefusal(t *testing.T) {
	e := newEnv(t)
	c := e.browser(t, "fan-1")
	u, status, page := e.get(t, c, startURL(e.platform, oaFollowed, "snsapi_userinfo", e.merchant))
	if status != http.StatusOK || !strings.Contains(page, `id="oauth-allow"`) || !strings.HasPrefix(u.String(), e.sbURL) {
		t.Fatalf("want the sandbox's consent page, got %d at %s", status, u.Redacted())
	}
	u, _, _ = e.decide(t, c, page, "allow")
	id := e.identity(t, u)
	fan := e.wx.Fans()[0]
	if id.Subject != e.wx.OpenID(oaFollowed, "fan-1") || id.Scope != "snsapi_userinfo" || id.NickName != fan.NickName ||
		id.HeadImgURL == "" || id.UnionID != e.wx.UnionID("fan-1") || id.Subscribe == nil || !*id.Subscribe {
		t.Errorf("claims %+v", id)
	}

	_, _, page = e.get(t, c, startURL(e.platform, oaFollowed, "snsapi_userinfo", e.merchant))
	exchanges := e.wx.Calls("sns_component_access_token")
	u, _, _ = e.decide(t, c, page, "refuse")
	if u.Query().Get("error") != fanauth.ErrorAccessDenied || u.Query().Has("wx_identity") || u.Query().Get("from") != "menu" {
		t.Errorf("refusal landed on %s", u.Redacted())
	}
	if n := e.wx.Calls("sns_component_access_token"); n != exchanges {
		t.Errorf("a refusal exchanged %d codes", n-exchanges)
	}
}

func TestFollowStateUnknownWithoutUserManagement(t *testing.T) {
	e := newEnv(t)
	u, _, _ := e.get(t, e.browser(t, "fan-1"), startURL(e.platform, oaNoUsers, "snsapi_base", e.merchant))
	id := e.identity(t, u)
	if id.Subscribe != nil {
		t.Errorf("subscribe %v without 用户管理; want it left out", *id.Subscribe)
	}
	if n := e.wx.Calls("user_info"); n != 0 {
		t.Errorf("user/info asked %d times without 用户管理", n)
	}
	// A follow check WeChat fails leaves the answer unknown too, and the sign-in still works.
	e.wx.SetFault("user_info", sandbox.Fault{ErrCode: 48001, ErrRate: 1})
	u, _, _ = e.get(t, e.browser(t, "fan-1"), startURL(e.platform, oaFollowed, "snsapi_base", e.merchant))
	if id := e.identity(t, u); id.Subscribe != nil {
		t.Errorf("subscribe %v after a failed follow check; want it left out", *id.Subscribe)
	}
}

func TestStartRefusesWithoutCallingWeChat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.wx.Revoke(ctx, oaOther); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Revoke(ctx, oaOther, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := e.browser(t, "fan-1")
	before := e.wx.AllCalls()
	cases := []struct {
		name, url string
		status    int
	}{
		{"return_url outside the tenant's origins", startURL(e.platform, oaFollowed, "snsapi_base", "https://evil.example.com/x"), http.StatusBadRequest},
		{"return_url of another tenant", startURL(e.platform, oaFollowed, "snsapi_base", "https://shop2.example.com/x"), http.StatusBadRequest},
		{"return_url with its own wx_identity", startURL(e.platform, oaFollowed, "snsapi_base", e.merchant+"&wx_identity=forged"), http.StatusBadRequest},
		{"relative return_url", startURL(e.platform, oaFollowed, "snsapi_base", "/shop/welcome"), http.StatusBadRequest},
		{"a mini program", startURL(e.platform, miniProgram, "snsapi_base", e.merchant), http.StatusForbidden},
		{"an account never authorized", startURL(e.platform, "wx00000000000000ff", "snsapi_base", e.merchant), http.StatusForbidden},
		{"a revoked account", startURL(e.platform, oaOther, "snsapi_base", e.merchant), http.StatusForbidden},
		{"no 网页服务", startURL(e.platform, oaNoWeb, "snsapi_base", e.merchant), http.StatusForbidden},
		{"bad scope", startURL(e.platform, oaFollowed, "snsapi_login", e.merchant), http.StatusBadRequest},
		{"not an appid", startURL(e.platform, "wxNOTANAPPID", "snsapi_base", e.merchant), http.StatusNotFound},
	}
	for _, tc := range cases {
		u, status, body := e.get(t, c, tc.url)
		if status != tc.status || !strings.HasPrefix(u.String(), e.platform) || !strings.Contains(body, `id="error"`) {
			t.Errorf("%s: %d at %s, want %d and the error page", tc.name, status, u.Redacted(), tc.status)
		}
	}
	if after := e.wx.AllCalls(); len(after) != len(before) || after["oauth2_authorize"] != before["oauth2_authorize"] {
		t.Errorf("refused starts called WeChat: before %v after %v", before, after)
	}
}

// callbackURL runs a sign-in in browser b up to WeChat's redirect to the callback and returns that URL,
// unvisited.
func (e *env) callbackURL(t *testing.T, b *http.Client, appid string) string {
	t.Helper()
	c := *b // the same cookies, its own redirect rule
	var cb string
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), e.platform+"/oauth/callback") {
			cb = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(startURL(e.platform, appid, "snsapi_base", e.merchant))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cb == "" {
		t.Fatalf("no redirect to the callback (status %d)", resp.StatusCode)
	}
	return cb
}

func TestCallbackRefusesForgedReplayedAndExpiredStates(t *testing.T) {
	e := newEnv(t)
	c := e.browser(t, "fan-1")
	exchanges := func() int { return e.wx.Calls("sns_component_access_token") }

	cb := e.callbackURL(t, c, oaFollowed)
	q, _ := url.Parse(cb)
	state := q.Query().Get("state")
	if len(state) > 128 {
		t.Fatalf("state of %d bytes; WeChat takes at most 128", len(state))
	}
	forged := strings.Replace(cb, url.QueryEscape(state), url.QueryEscape(state[:len(state)-2]+"AA"), 1)
	u, status, body := e.get(t, c, forged)
	if status != http.StatusBadRequest || !strings.HasPrefix(u.String(), e.platform) || !strings.Contains(body, `id="error"`) || exchanges() != 0 {
		t.Fatalf("forged state: %d at %s, %d exchanges", status, u.Redacted(), exchanges())
	}
	u, _, _ = e.get(t, c, cb) // the genuine one still works: the forgery took nothing
	e.identity(t, u)
	u, status, _ = e.get(t, c, cb)
	if status != http.StatusBadRequest || !strings.HasPrefix(u.String(), e.platform) || exchanges() != 1 {
		t.Fatalf("replayed state: %d at %s, %d exchanges", status, u.Redacted(), exchanges())
	}

	cb = e.callbackURL(t, c, oaFollowed)
	e.mu.Lock()
	e.shift = fanauth.DefaultStateTTL + time.Second
	e.mu.Unlock()
	u, _, _ = e.get(t, c, cb)
	if u.Query().Get("error") != fanauth.ErrorStateExpired || u.Query().Has("wx_identity") || exchanges() != 1 {
		t.Fatalf("expired state: landed on %s, %d exchanges", u.Redacted(), exchanges())
	}
	e.mu.Lock()
	e.shift = 0
	e.mu.Unlock()

	// A callback link opened in another browser than the one that started the sign-in (an attacker sending a
	// victim their own link) is refused before anything is read or exchanged.
	cb = e.callbackURL(t, c, oaFollowed)
	u, status, body = e.get(t, e.browser(t, "fan-2"), cb)
	if status != http.StatusBadRequest || !strings.Contains(body, "not started in this browser") || exchanges() != 1 {
		t.Fatalf("callback in another browser: %d at %s, %d exchanges", status, u.Redacted(), exchanges())
	}
	u, _, _ = e.get(t, c, cb) // the browser that started it still can
	e.identity(t, u)
	if exchanges() != 2 {
		t.Fatalf("%d exchanges", exchanges())
	}

	// WeChat names the account it authorized; a callback naming another one is refused.
	cb = e.callbackURL(t, c, oaFollowed)
	u, status, _ = e.get(t, c, strings.Replace(cb, "appid="+oaFollowed, "appid="+oaOther, 1))
	if status != http.StatusBadRequest || exchanges() != 2 {
		t.Fatalf("other appid: %d at %s, %d exchanges", status, u.Redacted(), exchanges())
	}
}

func TestReusedCodeAndRevokedAccountAreRefused(t *testing.T) {
	e := newEnv(t)
	c := e.browser(t, "fan-1")
	first := e.callbackURL(t, c, oaFollowed)
	u, _, _ := e.get(t, c, first)
	e.identity(t, u)
	used, _ := url.Parse(first)

	// A fresh state with the spent code: WeChat answers 40163 and the merchant gets invalid_code.
	fresh, _ := url.Parse(e.callbackURL(t, c, oaFollowed))
	q := fresh.Query()
	q.Set("code", used.Query().Get("code"))
	fresh.RawQuery = q.Encode()
	u, _, _ = e.get(t, c, fresh.String())
	if u.Query().Get("error") != fanauth.ErrorInvalidCode || u.Query().Has("wx_identity") {
		t.Fatalf("reused code: landed on %s", u.Redacted())
	}

	// Revoked between the start and the callback: no exchange, account_unavailable.
	cb := e.callbackURL(t, c, oaFollowed)
	if _, err := e.store.Revoke(context.Background(), oaFollowed, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := e.wx.Calls("sns_component_access_token")
	u, _, _ = e.get(t, c, cb)
	if u.Query().Get("error") != fanauth.ErrorAccountUnavailable || e.wx.Calls("sns_component_access_token") != before {
		t.Fatalf("revoked: landed on %s", u.Redacted())
	}

	// No WeChat token, code exchange answer or secret in any page, redirect or log line.
	a, err := e.store.Authorizer(context.Background(), oaNoUsers)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	seen := strings.Join(e.responses, "\n") + e.logs.String()
	e.mu.Unlock()
	for name, v := range map[string]string{"component token": e.compTok, "authorizer token": a.AccessToken, "tenant secret": e.secret,
		"access_token=": "access_token=", `"access_token"`: `"access_token"`, "refresh_token": "refresh_token", "code": used.Query().Get("code")} {
		if v != "" && strings.Contains(seen, v) {
			i := strings.Index(seen, v)
			t.Errorf("%s appears in a page, a redirect or the logs: …%s…", name, seen[max(0, i-300):min(len(seen), i+100)])
		}
	}
}

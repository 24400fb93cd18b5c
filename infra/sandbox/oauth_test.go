package sandbox

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	oa2       = "wx6d2b4e9f7a3c1e05" // default official account
	oa3       = "wx9c4e1a7b3f6d2b06" // default official account
	oaNoWeb   = "wx00000000000000a7" // an official account without permission set 4
	oaNoUsers = "wx00000000000000a8" // an official account without permission set 2
	cbURL     = "https://platform.example/oauth/callback?tenant=t1"
)

// oauthEnv is a sandbox with OAuthDomain platform.example, two extra
// official accounts (oaNoWeb, oaNoUsers) and oa1 authorized.
type oauthEnv struct {
	*env
	ctok, atok string // component token; oa1's authorizer token
}

func newOAuthEnv(t *testing.T, tweak ...func(*Config)) *oauthEnv {
	t.Helper()
	e := newEnv(t, append([]func(*Config){func(c *Config) {
		c.OAuthDomain = "platform.example"
		c.Accounts = append(DefaultAccounts(),
			Account{AppID: oaNoWeb, Kind: KindOfficialAccount, NickName: "无网页服务", ServiceType: 2, FuncInfo: []int{1, 2, 3}},
			Account{AppID: oaNoUsers, Kind: KindOfficialAccount, NickName: "无用户管理", ServiceType: 2, FuncInfo: []int{1, 4}})
	}}, tweak...)...)
	o := &oauthEnv{env: e, ctok: e.componentToken(t)}
	o.atok = o.authorizeAccount(t, oa1)
	return o
}

// authorizeAccount authorizes appid and returns its authorizer token.
func (o *oauthEnv) authorizeAccount(t *testing.T, appid string) string {
	t.Helper()
	code, _ := o.authorize(t, o.ctok, appid)
	return o.queryAuth(t, o.ctok, code).str("authorizer_access_token")
}

// qp is a query whose parameter order matters.
type qp [][2]string

func stdQuery(scope string) qp {
	return qp{{"appid", oa1}, {"redirect_uri", cbURL}, {"response_type", "code"}, {"scope", scope},
		{"state", "st-1"}, {"component_appid", testComponent}}
}

func (q qp) with(name, value string) qp {
	out := append(qp(nil), q...)
	for i := range out {
		if out[i][0] == name {
			out[i][1] = value
		}
	}
	return out
}

func (q qp) without(name string) qp {
	var out qp
	for _, p := range q {
		if p[0] != name {
			out = append(out, p)
		}
	}
	return out
}

func (q qp) raw() string {
	parts := make([]string, len(q))
	for i, p := range q {
		parts[i] = p[0] + "=" + url.QueryEscape(p[1])
	}
	return strings.Join(parts, "&")
}

// pageResp is an HTML answer that was not followed.
type pageResp struct {
	status   int
	location string
	body     string
	cookies  []*http.Cookie
}

func (e *env) browse(t *testing.T, method, pathAndQuery, fan string, form url.Values) pageResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.base+pathAndQuery, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if fan != "" {
		req.AddCookie(&http.Cookie{Name: fanCookie, Value: fan})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageResp{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b), cookies: resp.Cookies()}
}

// authorizePage GETs /connect/oauth2/authorize?raw as fan ("" = no cookie).
func (e *env) authorizePage(t *testing.T, raw, fan string) pageResp {
	t.Helper()
	return e.browse(t, http.MethodGet, oauthAuthorizePath+"?"+raw, fan, nil)
}

// callback parses a redirect to the platform.
func callback(t *testing.T, r pageResp) *url.URL {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("HTTP %d, want 302:\n%s", r.status, r.body)
	}
	u, err := url.Parse(r.location)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// baseCode runs a snsapi_base authorization for fan and returns the code.
func (o *oauthEnv) baseCode(t *testing.T, q qp, fan string) string {
	t.Helper()
	c := callback(t, o.authorizePage(t, q.raw(), fan)).Query().Get("code")
	if c == "" {
		t.Fatal("no code in the callback")
	}
	return c
}

func (o *oauthEnv) exchange(t *testing.T, appid, code string) answer {
	t.Helper()
	return o.call(t, "/sns/oauth2/component/access_token", url.Values{"appid": {appid}, "code": {code},
		"grant_type": {"authorization_code"}, "component_appid": {testComponent}, "component_access_token": {o.ctok}}, nil)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// consentForm reads the consent page's hidden fields.
func consentForm(t *testing.T, page string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("appid") == "" {
		t.Fatalf("no consent form:\n%s", page)
	}
	return form
}

func (e *env) decide(t *testing.T, form url.Values, decision, fan string) pageResp {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if decision != "" {
		f.Set("decision", decision)
	}
	return e.browse(t, http.MethodPost, oauthDecidePath, fan, f)
}

func wantRefused(t *testing.T, what string, r pageResp, reason string) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.location != "" || !strings.Contains(r.body, `id="oauth-error"`) {
		t.Fatalf("%s: HTTP %d, Location %q, want a 400 error page:\n%s", what, r.status, r.location, r.body)
	}
	if !strings.Contains(r.body, reason) {
		t.Fatalf("%s: reason %q not on the page:\n%s", what, reason, r.body)
	}
}

func TestOAuthAuthorizeRefusals(t *testing.T) {
	o := newOAuthEnv(t)
	o.authorizeAccount(t, mp1)
	o.authorizeAccount(t, oaNoWeb)
	o.authorizeAccount(t, oa2)
	if err := o.sb.Revoke(context.Background(), oa2); err != nil {
		t.Fatal(err)
	}
	o.rc.next(t) // unauthorized

	base := stdQuery(scopeBase)
	swapped := append(qp(nil), base...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	cases := []struct {
		name, raw, reason string
	}{
		{"order", swapped.raw(), "参数错误"},
		{"state last", append(base.without("state"), [2]string{"state", "x"}).raw(), "参数错误"},
		{"upper case name", strings.Replace(base.raw(), "appid=", "APPID=", 1), "参数错误"},
		{"extra parameter", base.raw() + "&lang=zh_CN", "参数错误"},
		{"missing scope", base.without("scope").raw(), "参数错误"},
		{"empty query", "", "参数错误"},
		{"bad escape", strings.Replace(base.raw(), "state=st-1", "state=%zz", 1), "参数错误"},
		{"wrong component", base.with("component_appid", "wx00000000000000ff").raw(), "component_appid"},
		// component first: a wrong component with a bad scope is about the component
		{"component before scope", base.with("component_appid", "wx00000000000000ff").with("scope", "x").raw(), "component_appid"},
		{"mini program", base.with("appid", mp1).raw(), "小程序"},
		{"never authorized", base.with("appid", oa3).raw(), "未授权给此第三方平台"},
		{"revoked", base.with("appid", oa2).raw(), "未授权给此第三方平台"},
		{"unknown appid", base.with("appid", "wx00000000000000ee").raw(), "未授权给此第三方平台"},
		{"no set 4", base.with("appid", oaNoWeb).raw(), "网页授权权限"},
		{"response_type", base.with("response_type", "token").raw(), "response_type"},
		{"bad scope", base.with("scope", "snsapi_login").raw(), "Scope 参数错误或没有 Scope 权限"},
		{"scope list with bad element", base.with("scope", "snsapi_base,snsapi_login").raw(), "Scope 参数错误或没有 Scope 权限"},
		{"relative redirect", base.with("redirect_uri", "/oauth/callback").raw(), "redirect_uri 参数错误"},
		{"ftp redirect", base.with("redirect_uri", "ftp://platform.example/cb").raw(), "redirect_uri 参数错误"},
		{"outside domain", base.with("redirect_uri", "https://evil.example/cb").raw(), "redirect_uri 域名与后台配置不一致"},
		{"suffix trick", base.with("redirect_uri", "https://evilplatform.example/cb").raw(), "redirect_uri 域名与后台配置不一致"},
		{"long state", base.with("state", strings.Repeat("s", 129)).raw(), "state"},
	}
	for _, c := range cases {
		wantRefused(t, c.name, o.authorizePage(t, c.raw, ""), c.reason)
	}
	if got := o.sb.Calls("oauth2_authorize"); got != len(cases) {
		t.Errorf("Calls(oauth2_authorize) = %d, want %d", got, len(cases))
	}
	if r := o.browse(t, http.MethodPost, oauthAuthorizePath+"?"+base.raw(), "", url.Values{}); r.status != http.StatusMethodNotAllowed || r.location != "" {
		t.Errorf("POST authorize: HTTP %d, Location %q", r.status, r.location)
	}

	// The limits themselves pass: 128 bytes of state, a subdomain, a port.
	for _, q := range []qp{
		base.with("state", strings.Repeat("s", 128)),
		base.with("redirect_uri", "https://m.platform.example:8443/cb"),
		base.with("scope", "snsapi_base,snsapi_base"),
	} {
		callback(t, o.authorizePage(t, q.raw(), ""))
	}
}

func TestOAuthNoDomainAcceptsAnyHost(t *testing.T) {
	o := newOAuthEnv(t, func(c *Config) { c.OAuthDomain = "" })
	u := callback(t, o.authorizePage(t, stdQuery(scopeBase).with("redirect_uri", "http://localhost:8080/cb").raw(), ""))
	if u.Host != "localhost:8080" || u.Query().Get("code") == "" {
		t.Fatalf("callback %s", u)
	}
}

func TestOAuthBaseRedirect(t *testing.T) {
	o := newOAuthEnv(t)
	r := o.authorizePage(t, stdQuery(scopeBase).raw(), "")
	u := callback(t, r)
	q := u.Query()
	prefix := cbURL + "&code="
	if !strings.HasPrefix(r.location, prefix) || !strings.HasSuffix(r.location, "&state=st-1&appid="+oa1) {
		t.Fatalf("Location %q: want %s…&state=st-1&appid=%s", r.location, prefix, oa1)
	}
	if q.Get("tenant") != "t1" || q.Get("code") == "" || strings.Contains(r.body, q.Get("code")) {
		t.Fatalf("callback %s (the code must be in Location only; body %q)", u, r.body)
	}

	// A fragment stays last: the query goes before '#', as WeChat does.
	r = o.authorizePage(t, stdQuery(scopeBase).with("redirect_uri", "https://platform.example/h5#/pages/a?b=c").raw(), "")
	if !regexp.MustCompile(`^https://platform\.example/h5\?code=[A-Za-z0-9_-]+&state=st-1&appid=` + oa1 + `#/pages/a\?b=c$`).MatchString(r.location) {
		t.Fatalf("fragment: Location %q", r.location)
	}

	// Without state the order check leaves it out; the callback has state=.
	r = o.authorizePage(t, stdQuery(scopeBase).without("state").with("redirect_uri", "https://platform.example/cb").raw(), "")
	if !regexp.MustCompile(`^https://platform\.example/cb\?code=[A-Za-z0-9_-]+&state=&appid=` + oa1 + `$`).MatchString(r.location) {
		t.Fatalf("no state: Location %q", r.location)
	}

	// A query that ends in '?' gets no extra separator.
	r = o.authorizePage(t, stdQuery(scopeBase).with("redirect_uri", "https://platform.example/cb?").raw(), "")
	if !strings.HasPrefix(r.location, "https://platform.example/cb?code=") {
		t.Fatalf("trailing '?': Location %q", r.location)
	}

	// State with reserved characters round-trips.
	state := "a&b=c d/é"
	if got := callback(t, o.authorizePage(t, stdQuery(scopeBase).with("state", state).raw(), "")).Query().Get("state"); got != state {
		t.Fatalf("state %q, want %q", got, state)
	}
	if got := o.sb.Calls("oauth2_authorize"); got != 5 {
		t.Errorf("Calls(oauth2_authorize) = %d, want 5", got)
	}
}

func TestOAuthUserInfoConsent(t *testing.T) {
	o := newOAuthEnv(t)
	raw := stdQuery(scopeUserInfo).raw()
	r := o.authorizePage(t, raw, "")
	if r.status != http.StatusOK || r.location != "" {
		t.Fatalf("consent page: HTTP %d, Location %q", r.status, r.location)
	}
	switchLink := `href="/sandbox/fans?next=` + url.QueryEscape(oauthAuthorizePath+"?"+raw) + `"`
	if !containsAll(r.body, `name="viewport"`, `id="oauth-allow"`, `id="oauth-refuse"`, `action="/sandbox/oauth/decide"`,
		"鲜果时光", "小明", switchLink) {
		t.Fatalf("consent page lacks something:\n%s", r.body)
	}
	form := consentForm(t, r.body)
	if form.Get("redirect_uri") != cbURL || form.Get("state") != "st-1" || form.Get("scope") != scopeUserInfo || form.Get("fan") != "fan-1" {
		t.Fatalf("hidden fields %v", form)
	}

	// Refuse: only state.
	d := o.decide(t, form, "refuse", "")
	if d.status != http.StatusFound || d.location != cbURL+"&state=st-1" {
		t.Fatalf("refuse: HTTP %d, Location %q", d.status, d.location)
	}

	// Allow: code, state, appid; the code is a userinfo code of fan-1.
	d = o.decide(t, form, "allow", "")
	q := callback(t, d).Query()
	if q.Get("state") != "st-1" || q.Get("appid") != oa1 || q.Get("code") == "" {
		t.Fatalf("allow: Location %q", d.location)
	}
	a := o.exchange(t, oa1, q.Get("code"))
	wantCode(t, "exchange", a, 0)
	if a.str("scope") != scopeUserInfo || a.str("openid") != o.sb.OpenID(oa1, "fan-1") {
		t.Fatalf("exchange answered %v", a)
	}
	if got := o.sb.Calls("oauth_decide"); got != 2 {
		t.Errorf("Calls(oauth_decide) = %d", got)
	}

	// As fan-3, the page names 阿强 and the code is fan-3's.
	r = o.authorizePage(t, raw, "fan-3")
	if !strings.Contains(r.body, "阿强") {
		t.Fatalf("fan-3's consent page:\n%s", r.body)
	}
	q = callback(t, o.decide(t, consentForm(t, r.body), "allow", "fan-3")).Query()
	if got := o.exchange(t, oa1, q.Get("code")).str("openid"); got != o.sb.OpenID(oa1, "fan-3") {
		t.Fatalf("fan-3's openid %q", got)
	}
}

func TestOAuthDecideRechecks(t *testing.T) {
	o := newOAuthEnv(t)
	o.authorizeAccount(t, oa2)
	o.authorizeAccount(t, mp1)
	r := o.authorizePage(t, stdQuery(scopeUserInfo).raw(), "")
	form := consentForm(t, r.body)
	change := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range form {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	longState := change("state", strings.Repeat("s", 129))
	cases := []struct {
		name   string
		form   url.Values
		reason string
	}{
		{"wrong component", change("component_appid", "wx00000000000000ff"), "component_appid"},
		{"mini program", change("appid", mp1), "小程序"},
		{"no set 4", change("appid", oaNoWeb), "未授权给此第三方平台"},
		{"response_type", change("response_type", "token"), "response_type"},
		{"bad scope", change("scope", "snsapi_login"), "Scope 参数错误"},
		{"outside domain", change("redirect_uri", "https://evil.example/cb"), "redirect_uri 域名与后台配置不一致"},
		{"long state", longState, "state"},
		{"other fan", change("fan", "fan-2"), "已切换"},
	}
	for _, c := range cases {
		wantRefused(t, c.name, o.decide(t, c.form, "allow", ""), c.reason)
	}
	wantRefused(t, "no decision", o.decide(t, form, "", ""), "参数错误")

	// The account revokes while the page is shown.
	if err := o.sb.Revoke(context.Background(), oa1); err != nil {
		t.Fatal(err)
	}
	o.rc.next(t)
	wantRefused(t, "revoked", o.decide(t, form, "allow", ""), "未授权给此第三方平台")
	wantRefused(t, "revoked, refuse", o.decide(t, form, "refuse", ""), "未授权给此第三方平台")

	// The form works for another account that passes the checks.
	callback(t, o.decide(t, change("appid", oa2), "allow", ""))

	if g := o.browse(t, http.MethodGet, oauthDecidePath, "", nil); g.status != http.StatusMethodNotAllowed || g.location != "" {
		t.Errorf("GET decide: HTTP %d", g.status)
	}
}

func TestFanCookieSwitching(t *testing.T) {
	o := newOAuthEnv(t)
	r := o.browse(t, http.MethodGet, fansPath, "", nil)
	if r.status != http.StatusOK || !regexp.MustCompile(`(?s)id="fan-fan-1">.*?id="fan-current".*?</tr>`).MatchString(r.body) {
		t.Fatalf("fans page: HTTP %d, fan-1 not current:\n%s", r.status, r.body)
	}
	if !containsAll(r.body, `id="follow-fan-1-`+oa1+`"`, `id="use-fan-2"`, o.sb.OpenID(oa1, "fan-2")) {
		t.Fatalf("fans page lacks follow cells or links:\n%s", r.body)
	}

	// ?use= without next: cookie and the page.
	r = o.browse(t, http.MethodGet, fansPath+"?use=fan-2", "", nil)
	c := fanCookieOf(r)
	if r.status != http.StatusOK || c == nil || c.Value != "fan-2" || c.Path != "/" || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("use=fan-2: HTTP %d, cookie %+v", r.status, c)
	}
	if !regexp.MustCompile(`(?s)id="fan-fan-2">.*?id="fan-current".*?</tr>`).MatchString(r.body) {
		t.Fatalf("fan-2 not shown as current:\n%s", r.body)
	}

	// ?use= with next: back to the authorization page.
	next := oauthAuthorizePath + "?" + stdQuery(scopeBase).raw()
	r = o.browse(t, http.MethodGet, fansPath+"?"+url.Values{"use": {"fan-3"}, "next": {next}}.Encode(), "fan-2", nil)
	if r.status != http.StatusFound || r.location != next || fanCookieOf(r) == nil || fanCookieOf(r).Value != "fan-3" {
		t.Fatalf("use=fan-3&next: HTTP %d, Location %q", r.status, r.location)
	}
	// Other sites are not a next.
	for _, bad := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`, `/./\evil.example`, `/a/../\evil.example`, "evil"} {
		r = o.browse(t, http.MethodGet, fansPath+"?"+url.Values{"use": {"fan-3"}, "next": {bad}}.Encode(), "", nil)
		if r.status != http.StatusOK || r.location != "" || fanCookieOf(r) == nil {
			t.Fatalf("next %q: HTTP %d, Location %q", bad, r.status, r.location)
		}
	}
	r = o.browse(t, http.MethodGet, fansPath+"?use=nobody", "", nil)
	if r.status != http.StatusBadRequest || fanCookieOf(r) != nil || !strings.Contains(r.body, `id="fans-error"`) {
		t.Fatalf("use=nobody: HTTP %d", r.status)
	}

	// The cookie decides whose code it is; an unknown cookie is the first fan.
	for fan, want := range map[string]string{"fan-3": "fan-3", "fan-2": "fan-2", "nobody": "fan-1", "": "fan-1"} {
		code := o.baseCode(t, stdQuery(scopeBase), fan)
		if got := o.exchange(t, oa1, code).str("openid"); got != o.sb.OpenID(oa1, want) {
			t.Errorf("cookie %q: openid %q, want %s's", fan, got, want)
		}
	}

	// Follow and unfollow from the page.
	r = o.browse(t, http.MethodPost, fansPath, "", url.Values{"appid": {oa2}, "fan": {"fan-2"}, "follow": {"1"}})
	if r.status != http.StatusSeeOther || !slicesContains(o.sb.Fans()[1].Follows, oa2) {
		t.Fatalf("follow: HTTP %d, fans %v", r.status, o.sb.Fans())
	}
	o.browse(t, http.MethodPost, fansPath, "", url.Values{"appid": {oa2}, "fan": {"fan-2"}, "follow": {"0"}})
	if slicesContains(o.sb.Fans()[1].Follows, oa2) {
		t.Fatalf("unfollow: fans %v", o.sb.Fans())
	}
	if r = o.browse(t, http.MethodPost, fansPath, "", url.Values{"appid": {mp1}, "fan": {"fan-2"}, "follow": {"1"}}); r.status != http.StatusBadRequest {
		t.Fatalf("follow a mini program: HTTP %d", r.status)
	}
}

func fanCookieOf(r pageResp) *http.Cookie {
	for _, c := range r.cookies {
		if c.Name == fanCookie {
			return c
		}
	}
	return nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestOAuthCodeExchange(t *testing.T) {
	o := newOAuthEnv(t)
	o.authorizeAccount(t, oa2)
	o.authorizeAccount(t, mp1)
	o.authorizeAccount(t, oaNoWeb)
	code := o.baseCode(t, stdQuery(scopeBase), "")
	q := func(kv ...string) url.Values {
		v := url.Values{"appid": {oa1}, "code": {code}, "grant_type": {"authorization_code"},
			"component_appid": {testComponent}, "component_access_token": {o.ctok}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	const path = "/sns/oauth2/component/access_token"
	refusals := []struct {
		name string
		q    url.Values
		code int
	}{
		{"authorizer token as component token", q("component_access_token", o.atok), CodeAPIUnauthorized},
		{"token in access_token", q("component_access_token", "", "access_token", o.ctok), CodeAccessTokenMissing},
		{"unknown token", q("component_access_token", "nope"), CodeInvalidCredential},
		{"wrong component", q("component_appid", "wx00000000000000ff"), CodeInvalidAppID},
		{"mini program", q("appid", mp1), CodeAPIUnauthorized},
		{"no set 4", q("appid", oaNoWeb), CodeAPIUnauthorized},
		{"not authorized", q("appid", oa3), CodeAPIUnauthorized},
		{"grant_type", q("grant_type", "client_credential"), CodeInvalidGrantType},
		{"missing code", q("code", ""), CodeOAuthCodeMissing},
		{"unknown code", q("code", "0123456789abcdef0123456789abcdef"), CodeOAuthCodeInvalid},
		{"another appid's code", q("appid", oa2), CodeOAuthCodeInvalid},
	}
	for _, r := range refusals {
		wantCode(t, r.name, o.call(t, path, r.q, nil), r.code)
	}
	// None of that spent the code.
	a := o.call(t, path, q(), nil)
	wantCode(t, "exchange", a, 0)
	if a.str("openid") != o.sb.OpenID(oa1, "fan-1") || a.str("scope") != scopeBase || a["expires_in"] != float64(7200) ||
		a.str("access_token") == "" || a.str("refresh_token") == "" {
		t.Fatalf("exchange answered %v", a)
	}
	wantCode(t, "second exchange", o.call(t, path, q(), nil), CodeOAuthCodeUsed)

	// Expiry on the sandbox clock: just before OAuthCodeTTL works, at it 42003.
	c1 := o.baseCode(t, stdQuery(scopeBase), "")
	c2 := o.baseCode(t, stdQuery(scopeBase), "")
	o.clock.Add(DefaultOAuthCodeTTL - time.Second)
	wantCode(t, "before expiry", o.call(t, path, q("code", c1), nil), 0)
	o.clock.Add(time.Second)
	wantCode(t, "expired", o.call(t, path, q("code", c2), nil), CodeOAuthCodeExpired)

	// An expired component token is 42001.
	c3 := o.baseCode(t, stdQuery(scopeBase), "")
	o.clock.Add(2 * time.Hour)
	wantCode(t, "expired component token", o.call(t, path, q("code", c3), nil), CodeAccessTokenExpired)

	if got, want := o.sb.Calls("sns_component_access_token"), len(refusals)+5; got != want {
		t.Errorf("Calls(sns_component_access_token) = %d, want %d", got, want)
	}
	for _, secret := range []string{code, c1, a.str("access_token"), a.str("refresh_token")} {
		if strings.Contains(o.logs.String(), secret) {
			t.Fatal("a code or token was logged")
		}
	}
}

func TestOAuthCodeTTLConfig(t *testing.T) {
	o := newOAuthEnv(t, func(c *Config) { c.OAuthCodeTTL = time.Minute })
	code := o.baseCode(t, stdQuery(scopeBase), "")
	o.clock.Add(time.Minute)
	wantCode(t, "expired after OAuthCodeTTL", o.exchange(t, oa1, code), CodeOAuthCodeExpired)
}

func TestOAuthRefreshToken(t *testing.T) {
	o := newOAuthEnv(t)
	o.authorizeAccount(t, oa2)
	a := o.exchange(t, oa1, o.baseCode(t, stdQuery(scopeBase), "fan-3"))
	wantCode(t, "exchange", a, 0)
	rt := a.str("refresh_token")
	const path = "/sns/oauth2/component/refresh_token"
	q := func(ctok, appid, refresh, grant string) url.Values {
		return url.Values{"appid": {appid}, "grant_type": {grant}, "component_appid": {testComponent},
			"component_access_token": {ctok}, "refresh_token": {refresh}}
	}
	wantCode(t, "authorizer token", o.call(t, path, q(o.atok, oa1, rt, "refresh_token"), nil), CodeAPIUnauthorized)
	wantCode(t, "grant_type", o.call(t, path, q(o.ctok, oa1, rt, "authorization_code"), nil), CodeInvalidGrantType)
	wantCode(t, "unknown", o.call(t, path, q(o.ctok, oa1, "refreshnope", "refresh_token"), nil), CodeSNSRefreshTokenInvalid)
	wantCode(t, "another appid", o.call(t, path, q(o.ctok, oa2, rt, "refresh_token"), nil), CodeSNSRefreshTokenInvalid)
	r := o.call(t, path, q(o.ctok, oa1, rt, "refresh_token"), nil)
	wantCode(t, "refresh", r, 0)
	if r.str("refresh_token") != rt || r.str("access_token") == "" || r.str("access_token") == a.str("access_token") ||
		r.str("openid") != o.sb.OpenID(oa1, "fan-3") || r.str("scope") != scopeBase {
		t.Fatalf("refresh answered %v", r)
	}

	o.clock.Add(30 * 24 * time.Hour)
	ctok := o.componentToken(t) // the old one expired too
	wantCode(t, "expired", o.call(t, path, q(ctok, oa1, rt, "refresh_token"), nil), CodeSNSRefreshTokenExpired)
	if got := o.sb.Calls("sns_component_refresh_token"); got != 6 {
		t.Errorf("Calls(sns_component_refresh_token) = %d, want 6", got)
	}
}

// userInfoToken runs the userinfo flow for fan and returns the exchange.
func (o *oauthEnv) userInfoToken(t *testing.T, fan string) answer {
	t.Helper()
	page := o.authorizePage(t, stdQuery(scopeUserInfo).raw(), fan)
	code := callback(t, o.decide(t, consentForm(t, page.body), "allow", fan)).Query().Get("code")
	a := o.exchange(t, oa1, code)
	wantCode(t, "exchange", a, 0)
	return a
}

func TestSNSUserInfo(t *testing.T) {
	o := newOAuthEnv(t)
	tok := o.userInfoToken(t, "fan-1")
	const path = "/sns/userinfo"
	q := func(at, openid string) url.Values {
		return url.Values{"access_token": {at}, "openid": {openid}, "lang": {"zh_CN"}}
	}
	u := o.call(t, path, q(tok.str("access_token"), tok.str("openid")), nil)
	wantCode(t, "userinfo", u, 0)
	if u.str("openid") != o.sb.OpenID(oa1, "fan-1") || u.str("nickname") != "小明" || u.str("unionid") != o.sb.UnionID("fan-1") ||
		u["sex"] != float64(0) || u["privilege"] == nil || !strings.HasSuffix(u.str("headimgurl"), "/sandbox/avatar/fan/fan-1.svg") {
		t.Fatalf("userinfo answered %v", u)
	}
	resp, err := http.Get(u.str("headimgurl"))
	if err != nil {
		t.Fatal(err)
	}
	svg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(svg), "小") {
		t.Fatalf("headimgurl: HTTP %d %q", resp.StatusCode, svg)
	}

	base := o.exchange(t, oa1, o.baseCode(t, stdQuery(scopeBase), ""))
	wantCode(t, "base scope", o.call(t, path, q(base.str("access_token"), base.str("openid")), nil), CodeAPIUnauthorized)
	wantCode(t, "another account's openid", o.call(t, path, q(tok.str("access_token"), o.sb.OpenID(oa2, "fan-1")), nil), CodeInvalidOpenID)
	wantCode(t, "another fan's openid", o.call(t, path, q(tok.str("access_token"), o.sb.OpenID(oa1, "fan-2")), nil), CodeInvalidOpenID)
	wantCode(t, "missing token", o.call(t, path, q("", tok.str("openid")), nil), CodeAccessTokenMissing)
	wantCode(t, "unknown token", o.call(t, path, q("nope", tok.str("openid")), nil), CodeInvalidCredential)
	wantCode(t, "authorizer token", o.call(t, path, q(o.atok, tok.str("openid")), nil), CodeInvalidCredential)
	o.clock.Add(2 * time.Hour)
	wantCode(t, "expired", o.call(t, path, q(tok.str("access_token"), tok.str("openid")), nil), CodeAccessTokenExpired)
	if got := o.sb.Calls("sns_userinfo"); got != 8 {
		t.Errorf("Calls(sns_userinfo) = %d, want 8", got)
	}
}

func TestUserInfoFollow(t *testing.T) {
	o := newOAuthEnv(t)
	const path = "/cgi-bin/user/info"
	q := func(at, openid string) url.Values {
		return url.Values{"access_token": {at}, "openid": {openid}, "lang": {"zh_CN"}}
	}
	start := o.clock.Now()
	u := o.call(t, path, q(o.atok, o.sb.OpenID(oa1, "fan-1")), nil)
	wantCode(t, "user/info fan-1", u, 0)
	if u["subscribe"] != float64(1) || u.str("openid") != o.sb.OpenID(oa1, "fan-1") || u.str("unionid") != o.sb.UnionID("fan-1") ||
		u["subscribe_time"] != float64(start.Unix()) || u.str("subscribe_scene") != "ADD_SCENE_QR_CODE" || u.str("language") != "zh_CN" {
		t.Fatalf("fan-1 answered %v", u)
	}
	u = o.call(t, path, q(o.atok, o.sb.OpenID(oa1, "fan-2")), nil)
	delete(u, "_status")
	if len(u) != 3 || u["subscribe"] != float64(0) || u.str("openid") != o.sb.OpenID(oa1, "fan-2") || u["tagid_list"] == nil {
		t.Fatalf("fan-2 answered %v", u)
	}

	// SetFollow changes the answer; following again is a new subscribe_time.
	o.clock.Add(time.Hour)
	o.sb.SetFollow(oa1, "fan-2", true)
	o.sb.SetFollow(oa1, "fan-1", false)
	u = o.call(t, path, q(o.atok, o.sb.OpenID(oa1, "fan-2")), nil)
	if u["subscribe"] != float64(1) || u["subscribe_time"] != float64(start.Add(time.Hour).Unix()) {
		t.Fatalf("fan-2 after SetFollow answered %v", u)
	}
	if u = o.call(t, path, q(o.atok, o.sb.OpenID(oa1, "fan-1")), nil); u["subscribe"] != float64(0) {
		t.Fatalf("fan-1 after unfollowing answered %v", u)
	}

	wantCode(t, "unknown openid", o.call(t, path, q(o.atok, "o"+strings.Repeat("x", 27)), nil), CodeInvalidOpenID)
	wantCode(t, "another account's openid", o.call(t, path, q(o.atok, o.sb.OpenID(oa2, "fan-1")), nil), CodeInvalidOpenID)
	wantCode(t, "component token", o.call(t, path, q(o.ctok, o.sb.OpenID(oa1, "fan-1")), nil), CodeInvalidCredential)
	wantCode(t, "no set 2", o.call(t, path, q(o.authorizeAccount(t, oaNoUsers), o.sb.OpenID(oaNoUsers, "fan-1")), nil), CodeAPIUnauthorized)
	wantCode(t, "mini program", o.call(t, path, q(o.authorizeAccount(t, mp1), o.sb.OpenID(mp1, "fan-1")), nil), CodeAPIUnauthorized)
	if got := o.sb.Calls("user_info"); got != 9 {
		t.Errorf("Calls(user_info) = %d, want 9", got)
	}
}

func TestOAuthAPIFaults(t *testing.T) {
	o := newOAuthEnv(t)
	for _, ep := range []string{"sns_component_access_token", "sns_userinfo", "user_info", "sns_component_refresh_token"} {
		o.sb.SetFault(ep, Fault{BusyFirst: 1})
	}
	code := o.baseCode(t, stdQuery(scopeBase), "")
	wantCode(t, "busy exchange", o.exchange(t, oa1, code), CodeSystemBusy)
	wantCode(t, "exchange after busy", o.exchange(t, oa1, code), 0)
	u := url.Values{"access_token": {o.atok}, "openid": {o.sb.OpenID(oa1, "fan-1")}}
	wantCode(t, "busy user/info", o.call(t, "/cgi-bin/user/info", u, nil), CodeSystemBusy)
	wantCode(t, "user/info", o.call(t, "/cgi-bin/user/info", u, nil), 0)
	if o.sb.Served("sns_component_access_token") != 1 || o.sb.Served("user_info") != 1 || o.sb.Calls("user_info") != 2 {
		t.Errorf("calls %v", o.sb.AllCalls())
	}
}

func TestOAuthStatusPage(t *testing.T) {
	o := newOAuthEnv(t)
	tok := o.userInfoToken(t, "fan-1")
	status, page := o.page(t, "/sandbox/", nil)
	if status != http.StatusOK || !containsAll(page, `id="fans-link"`, `href="/sandbox/fans"`, `id="status-fan-fan-1"`, "小明", "小红", "阿强", "oauth2_authorize") {
		t.Fatalf("status page: HTTP %d\n%s", status, page)
	}
	if strings.Contains(page, tok.str("access_token")) || strings.Contains(page, tok.str("refresh_token")) {
		t.Fatal("status page shows a fan's token")
	}
}

// Package fanauth signs in a merchant's web-page visitors with WeChat on behalf of the merchant's official
// account (代公众号发起网页授权) and hands the merchant's page a signed identity.
//
// GET /oauth/{appid}/start?scope=snsapi_base|snsapi_userinfo&return_url=URL checks that the account is an
// authorized official account that granted 网页服务 (permission set 4) and that return_url is under one of
// its tenant's return origins, stores the request under a random nonce, and redirects to WeChat's authorize
// page with a short signed state. GET /oauth/callback takes the stored request (once), exchanges WeChat's code
// with the component's token, reads the fan's profile (snsapi_userinfo) and asks whether the fan follows the
// account (when 用户管理, set 2, was granted), and redirects to return_url with `wx_identity`, an HS256 JWT
// signed with the tenant's signing secret. The fan's WeChat tokens are used for the request and never stored;
// no WeChat token reaches a page, a URL or a log line.
package fanauth

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxtpp/platform/shared/authpages"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Paths served: StartPrefix + "{appid}/start" and CallbackPath.
const (
	StartPrefix  = "/oauth/"
	CallbackPath = "/oauth/callback"
)

// Permission sets (权限集) an official account grants the platform.
const (
	PermissionUsers = 2 // 用户管理: /cgi-bin/user/info, the follow check
	PermissionWeb   = 4 // 网页服务: web authorization on the account's behalf
)

// Defaults.
const (
	DefaultStateTTL    = 10 * time.Minute // from the start link to the callback
	DefaultIdentityTTL = 5 * time.Minute  // how long a wx_identity is valid
	// callbackBudget bounds the callback's WeChat calls (exchange, profile, follow check).
	callbackBudget = 12 * time.Second
	maxReturnURL   = 2048
	maxCode        = 512
)

// Error values the merchant's return_url receives as `error` instead of `wx_identity`.
const (
	ErrorAccessDenied       = "access_denied"       // the fan refused (snsapi_userinfo)
	ErrorStateExpired       = "state_expired"       // the fan took longer than the state allows: start again
	ErrorInvalidCode        = "invalid_code"        // WeChat refused the code (40029, 40163 used, 42003 expired)
	ErrorAccountUnavailable = "account_unavailable" // the account is no longer authorized, or lacks 网页服务
	ErrorSnapshotUser       = "snapshot_user"       // WeChat's snapshot mode: the fan has not really signed in
	ErrorWeChatUnavailable  = "wechat_unavailable"  // WeChat failed or timed out: try again
)

// Params the platform adds to return_url; a return_url that carries them already is refused.
const (
	IdentityParam = "wx_identity"
	ErrorParam    = "error"
)

var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

// Accounts reads authorizers (tokenstore.Store).
type Accounts interface {
	Authorizer(ctx context.Context, appID string) (tokenstore.Authorizer, error)
}

// Tenants reads tenants (tenants.Store).
type Tenants interface {
	Get(ctx context.Context, id string) (tenants.Tenant, error)
}

// ComponentTokens runs fn with the component token, refreshing it once if WeChat says it is invalid
// (credentials.Component).
type ComponentTokens interface {
	Do(ctx context.Context, fn func(token string) error) error
}

// AuthorizerTokens does the same with an authorizer's token (credentials.Authorizers).
type AuthorizerTokens interface {
	Do(ctx context.Context, appID string, fn func(token string) error) error
}

// WeChat is the part of the WeChat API the sign-in uses (wxapi.Client).
type WeChat interface {
	ExchangeFanCode(ctx context.Context, componentAppID, componentToken, appID, code string) (wxapi.FanToken, error)
	FanProfile(ctx context.Context, fanToken, openID string) (wxapi.FanProfile, error)
	Follower(ctx context.Context, authorizerToken, openID string) (wxapi.Follower, error)
}

// Handler serves the sign-in routes. Build it with New.
type Handler struct {
	Accounts       Accounts
	Tenants        Tenants
	Table          *table.Table // the stored requests, taken once by the callback
	Component      ComponentTokens
	Authorizers    AuthorizerTokens
	WeChat         WeChat
	ComponentAppID string
	PublicBaseURL  string // the platform's public URL: redirect_uri and the identity's `iss`
	OpenBase       string // https://open.weixin.qq.com, or the sandbox (WECHAT_OPEN_BASE)
	StateKey       []byte // STATE_SIGNING_KEY, at least 16 bytes
	StateTTL       time.Duration
	IdentityTTL    time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
}

// New validates h and returns it ready to serve.
func New(h Handler) (*Handler, error) {
	var problems []string
	if h.Accounts == nil || h.Tenants == nil || h.Table == nil || h.Component == nil || h.Authorizers == nil || h.WeChat == nil {
		problems = append(problems, "Accounts, Tenants, Table, Component, Authorizers and WeChat are required")
	}
	if h.ComponentAppID == "" {
		problems = append(problems, "ComponentAppID is required")
	}
	for _, f := range []struct{ name, v string }{{"PublicBaseURL", h.PublicBaseURL}, {"OpenBase", h.OpenBase}} {
		u, err := url.Parse(f.v)
		if f.v == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, f.name+" must be an absolute http(s) URL")
		}
	}
	if len(h.StateKey) < 16 {
		problems = append(problems, "the state signing key (STATE_SIGNING_KEY) must be at least 16 bytes")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("fanauth: %s", strings.Join(problems, "; "))
	}
	h.PublicBaseURL = strings.TrimRight(h.PublicBaseURL, "/")
	h.OpenBase = strings.TrimRight(h.OpenBase, "/")
	return &h, nil
}

// Serves reports whether path is one of the sign-in routes.
func Serves(path string) bool { return strings.HasPrefix(path, StartPrefix) }

// Handle is the Lambda handler (API Gateway HTTP API, payload 2.0).
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r := &request{h: h, reqID: req.RequestContext.RequestID}
	r.log = h.logger().With("request_id", r.reqID, "path", req.RawPath)
	r.ctx = logging.With(ctx, r.log)

	appID, isStart := startAppID(req.RawPath)
	if !isStart && req.RawPath != CallbackPath {
		return r.page(http.StatusNotFound, "not found", nil, "页面不存在。", "This page does not exist."), nil
	}
	if m := req.RequestContext.HTTP.Method; m != http.MethodGet {
		resp := r.page(http.StatusMethodNotAllowed, "method not allowed", fmt.Errorf("method %q", m), "不支持此请求方式。", "Only GET is supported here.")
		resp.Headers["Allow"] = http.MethodGet
		return resp, nil
	}
	q, err := authpages.Query(req)
	if err != nil {
		return r.page(http.StatusBadRequest, "bad query string", err, "链接参数无效。", "The link's parameters are not valid."), nil
	}
	if isStart {
		return r.start(appID, q), nil
	}
	return r.callback(q, req.Cookies), nil
}

// startAppID parses /oauth/{appid}/start.
func startAppID(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, StartPrefix)
	if !ok {
		return "", false
	}
	appID, tail, ok := strings.Cut(rest, "/")
	return appID, ok && tail == "start" && appID != ""
}

// request is one request being answered.
type request struct {
	h     *Handler
	ctx   context.Context
	log   *slog.Logger
	reqID string
}

func (r *request) start(appID string, q url.Values) events.APIGatewayV2HTTPResponse {
	h := r.h
	r.log = r.log.With("appid", appID)
	scope := q.Get("scope")
	if scope == "" {
		scope = wxapi.ScopeBase
	}
	if scope != wxapi.ScopeBase && scope != wxapi.ScopeUserInfo {
		return r.page(http.StatusBadRequest, "bad scope", fmt.Errorf("scope %q", scope),
			"scope 只能是 snsapi_base 或 snsapi_userinfo。", "scope must be snsapi_base or snsapi_userinfo.")
	}
	returnURL := q.Get("return_url")
	if err := checkReturnURL(returnURL); err != nil {
		return r.page(http.StatusBadRequest, "bad return_url", err,
			"返回地址 return_url 无效。", "The return_url is not valid: "+err.Error()+".")
	}
	if !appIDPattern.MatchString(appID) {
		return r.page(http.StatusNotFound, "bad appid", nil, "该公众号未授权给本平台。", "This official account has not authorized the platform.")
	}
	a, err := h.Accounts.Authorizer(r.ctx, appID)
	if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
		return r.page(http.StatusInternalServerError, "authorizer not read", err, "系统错误，请稍后重试。", "Something went wrong on our side. Please try again later.")
	}
	if problem := usable(a, err); problem != "" {
		return r.page(http.StatusForbidden, "account not usable for web sign-in", errors.New(problem),
			"该公众号无法使用网页授权："+problemZH[problem], "This official account cannot sign fans in: "+problem+".")
	}
	r.log = r.log.With("tenant", a.Tenant, "scope", scope)
	t, err := h.Tenants.Get(r.ctx, a.Tenant)
	if err != nil && !errors.Is(err, tenants.ErrNotFound) {
		return r.page(http.StatusInternalServerError, "tenant not read", err, "系统错误，请稍后重试。", "Something went wrong on our side. Please try again later.")
	}
	if err != nil || !slices.Contains(t.ReturnOrigins, tenants.OriginOf(returnURL)) {
		return r.page(http.StatusBadRequest, "return_url not allowed", fmt.Errorf("origin %q is not one of the tenant's", tenants.OriginOf(returnURL)),
			"返回地址 return_url 不在商户允许的来源中。", "The return_url is not under one of the merchant's allowed origins.")
	}
	if t.SigningSecret == "" {
		return r.page(http.StatusInternalServerError, "tenant has no signing secret", nil,
			"商户尚未配置签名密钥，请联系服务商。", "The merchant has no signing secret yet; please contact the service provider.")
	}

	now := h.now()
	exp := now.Add(h.stateTTL())
	nonce, state := newState(h.StateKey, exp)
	s := session{AppID: appID, Tenant: a.Tenant, Scope: scope, ReturnURL: returnURL, Exp: exp.Unix(), PurgeAt: exp.Add(time.Hour).Unix()}
	cond := expression.AttributeNotExists(expression.Name("PK"))
	if err := h.Table.PutAt(r.ctx, sessionKey(nonce), s, &cond); err != nil {
		return r.page(http.StatusInternalServerError, "sign-in not stored", err, "系统错误，请稍后重试。", "Something went wrong on our side. Please try again later.")
	}
	// WeChat checks the parameters' order, so the query is written by hand rather than by url.Values.Encode.
	authorize := h.OpenBase + "/connect/oauth2/authorize?appid=" + url.QueryEscape(appID) +
		"&redirect_uri=" + url.QueryEscape(h.PublicBaseURL+CallbackPath) +
		"&response_type=code&scope=" + url.QueryEscape(scope) + "&state=" + url.QueryEscape(state) +
		"&component_appid=" + url.QueryEscape(h.ComponentAppID) + "#wechat_redirect"
	r.log.Info("fan sign-in started")
	resp := redirect(authorize)
	resp.Cookies = []string{h.browserCookie(nonce, exp.Sub(now)).String()}
	return resp
}

// usable says why an authorizer cannot sign fans in ("" when it can).
func usable(a tokenstore.Authorizer, err error) string {
	switch {
	case err != nil:
		return "not authorized"
	case a.Status != tokenstore.StatusAuthorized:
		return "authorization " + a.Status
	case a.Kind != tokenstore.KindOfficialAccount:
		return "not an official account"
	case !slices.Contains(a.PermissionSets, PermissionWeb):
		return "网页服务 (permission set 4) not granted"
	case a.Tenant == "":
		return "no merchant"
	}
	return ""
}

var problemZH = map[string]string{
	"not authorized":                      "未授权给本平台。",
	"not an official account":             "不是公众号（小程序不支持网页授权）。",
	"网页服务 (permission set 4) not granted": "未授予网页服务权限集，请重新授权。",
	"no merchant":                         "不属于任何商户。",
}

func init() {
	for _, s := range []string{tokenstore.StatusRevoked, tokenstore.StatusNeedsReauth} {
		problemZH["authorization "+s] = "授权已取消或需要重新授权。"
	}
}

// checkReturnURL checks the form of return_url; its origin is checked against the tenant's.
func checkReturnURL(s string) error {
	if s == "" {
		return errors.New("it is missing")
	}
	if len(s) > maxReturnURL {
		return fmt.Errorf("it is longer than %d bytes", maxReturnURL)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return errors.New("it must be an absolute http(s) URL")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("its query does not parse")
	}
	if q.Has(IdentityParam) || q.Has(ErrorParam) {
		return fmt.Errorf("it must not carry %s or %s", IdentityParam, ErrorParam)
	}
	return nil
}

func (r *request) callback(q url.Values, cookies []string) events.APIGatewayV2HTTPResponse {
	h := r.h
	// The signature first: a forged state costs no read, no write and no WeChat call.
	nonce, err := verifyState(h.StateKey, q.Get("state"), h.now())
	if errors.Is(err, ErrStateInvalid) {
		return r.page(http.StatusBadRequest, "state rejected", err,
			"登录链接无效，请返回商户页面重试。", "This sign-in link is not valid. Go back to the merchant's page and try again.")
	}
	resp := r.callbackFor(q, cookies, nonce, errors.Is(err, ErrStateExpired))
	resp.Cookies = append(resp.Cookies, h.browserCookie(nonce, -1).String()) // spent: the browser forgets it
	return resp
}

// callbackFor answers the callback of the genuine (possibly expired) state with nonce.
func (r *request) callbackFor(q url.Values, cookies []string, nonce string, expired bool) events.APIGatewayV2HTTPResponse {
	h := r.h
	// Then the browser: the sign-in must come back to the browser that started it, or someone could send a
	// victim their own callback link and sign the victim in as themselves (login CSRF).
	if !h.sameBrowser(nonce, cookies) {
		return r.page(http.StatusBadRequest, "sign-in came back to another browser", nil,
			"此登录不是在本浏览器中发起的，请返回商户页面重新登录。", "This sign-in was not started in this browser. Go back to the merchant's page and sign in again.")
	}
	var s session
	if err := h.Table.Take(r.ctx, sessionKey(nonce), &s); err != nil {
		if errors.Is(err, table.ErrNotFound) {
			return r.page(http.StatusBadRequest, "state replayed or unknown", nil,
				"此登录链接已使用过或已过期，请返回商户页面重试。", "This sign-in link has already been used or has expired. Go back to the merchant's page and try again.")
		}
		return r.page(http.StatusInternalServerError, "sign-in not read", err, "系统错误，请稍后重试。", "Something went wrong on our side. Please try again later.")
	}
	r.log = r.log.With("appid", s.AppID, "tenant", s.Tenant, "scope", s.Scope)
	if expired || h.now().Unix() >= s.Exp {
		return r.back(s, ErrorStateExpired, "state expired", nil)
	}
	if got := q.Get("appid"); got != "" && got != s.AppID {
		// WeChat names the account it authorized: a code of another account is not exchanged for this one.
		return r.page(http.StatusBadRequest, "appid does not match the sign-in", fmt.Errorf("callback appid %q", got),
			"登录链接无效，请返回商户页面重试。", "This sign-in link is not valid. Go back to the merchant's page and try again.")
	}
	code := q.Get("code")
	if code == "" {
		return r.back(s, ErrorAccessDenied, "fan refused", nil)
	}
	if len(code) > maxCode {
		return r.back(s, ErrorInvalidCode, "code too long", nil)
	}
	a, err := h.Accounts.Authorizer(r.ctx, s.AppID)
	if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
		return r.back(s, ErrorWeChatUnavailable, "authorizer not read", err)
	}
	if problem := usable(a, err); problem != "" || a.Tenant != s.Tenant {
		return r.back(s, ErrorAccountUnavailable, "account no longer usable", errors.New(problem))
	}
	t, err := h.Tenants.Get(r.ctx, s.Tenant)
	if err != nil || t.SigningSecret == "" || !slices.Contains(t.ReturnOrigins, tenants.OriginOf(s.ReturnURL)) {
		// Without the origin still allowed, nothing goes there; not even an error.
		return r.page(http.StatusForbidden, "tenant or return origin no longer usable", err,
			"商户的登录设置已更改，请返回商户页面重试。", "The merchant's sign-in settings have changed. Go back to the merchant's page and try again.")
	}

	ctx, cancel := context.WithTimeout(r.ctx, callbackBudget)
	defer cancel()
	var fan wxapi.FanToken
	err = h.Component.Do(ctx, func(tok string) (err error) {
		fan, err = h.WeChat.ExchangeFanCode(ctx, h.ComponentAppID, tok, s.AppID, code)
		return err
	})
	switch {
	case wxapi.IsCode(err, wxapi.CodeOAuthCodeInvalid, wxapi.CodeOAuthCodeUsed, wxapi.CodeOAuthCodeExpired, 41008):
		return r.back(s, ErrorInvalidCode, "code refused", err)
	case wxapi.IsCode(err, 48001, 61003, 61023, 40013):
		return r.back(s, ErrorAccountUnavailable, "WeChat refused the account", err)
	case err != nil:
		return r.back(s, ErrorWeChatUnavailable, "code not exchanged", err)
	case fan.OpenID == "":
		return r.back(s, ErrorWeChatUnavailable, "code exchange without openid", nil)
	case fan.IsSnapshotUser == 1:
		return r.back(s, ErrorSnapshotUser, "snapshot user", nil)
	}

	now := h.now()
	id := Identity{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: h.PublicBaseURL, Audience: jwt.ClaimStrings{s.Tenant}, Subject: fan.OpenID,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(h.identityTTL())), ID: newID(),
		},
		AppID: s.AppID, Scope: s.Scope, UnionID: fan.UnionID,
	}
	if s.Scope == wxapi.ScopeUserInfo {
		p, err := h.WeChat.FanProfile(ctx, fan.AccessToken, fan.OpenID)
		if err != nil {
			return r.back(s, ErrorWeChatUnavailable, "profile not read", err)
		}
		id.NickName, id.HeadImgURL = p.NickName, p.HeadImgURL
		if p.UnionID != "" {
			id.UnionID = p.UnionID
		}
	}
	if slices.Contains(a.PermissionSets, PermissionUsers) {
		var f wxapi.Follower
		err := h.Authorizers.Do(ctx, s.AppID, func(tok string) (err error) {
			f, err = h.WeChat.Follower(ctx, tok, fan.OpenID)
			return err
		})
		if err != nil {
			// Unknown, not a guess: the identity simply carries no `subscribe`.
			r.log.Warn("follow check failed; subscribe left out", "error", err.Error(), "errcode", wxapi.Code(err))
		} else {
			follows := f.Subscribe == 1
			id.Subscribe = &follows
			if id.UnionID == "" {
				id.UnionID = f.UnionID
			}
		}
	}
	token, err := Sign(t.SigningSecret, id)
	if err != nil {
		return r.page(http.StatusInternalServerError, "identity not signed", err, "系统错误，请稍后重试。", "Something went wrong on our side. Please try again later.")
	}
	r.log.Info("fan signed in", "subscribe", subscribeWord(id.Subscribe), "jti", id.ID)
	return redirect(withParam(s.ReturnURL, IdentityParam, token))
}

func subscribeWord(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "no"
}

// back sends the fan back to the merchant's page with an error instead of an identity.
func (r *request) back(s session, code, msg string, err error) events.APIGatewayV2HTTPResponse {
	attrs := []any{"outcome", code}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
		if c := wxapi.Code(err); c != 0 {
			attrs = append(attrs, "errcode", c)
		}
	}
	r.log.Warn(msg, attrs...)
	return redirect(withParam(s.ReturnURL, ErrorParam, code))
}

// browserCookie binds a started sign-in to the browser that started it: named after the nonce (so parallel
// sign-ins in one browser do not overwrite each other), holding a MAC of it. maxAge < 0 deletes it.
func (h *Handler) browserCookie(nonce string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: h.cookieName(nonce), Value: browserMAC(h.StateKey, nonce), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second)}
	if maxAge < 0 {
		c.Value, c.MaxAge = "", -1
	}
	c.Secure = strings.HasPrefix(h.PublicBaseURL, "https://")
	return c
}

func (h *Handler) cookieName(nonce string) string {
	name := "wxtpp_fan_" + nonce[:min(len(nonce), 10)]
	if strings.HasPrefix(h.PublicBaseURL, "https://") {
		name = "__Host-" + name // Secure, this host only, Path=/
	}
	return name
}

// sameBrowser reports whether the request carries the cookie its sign-in's start set.
func (h *Handler) sameBrowser(nonce string, cookies []string) bool {
	want, name := browserMAC(h.StateKey, nonce), h.cookieName(nonce)
	for _, line := range cookies {
		for _, c := range parseCookies(line) {
			if c.Name == name && hmac.Equal([]byte(c.Value), []byte(want)) {
				return true
			}
		}
	}
	return false
}

func parseCookies(line string) []*http.Cookie {
	cs, err := http.ParseCookie(line)
	if err != nil {
		return nil
	}
	return cs
}

// withParam adds k=v to raw's query, keeping the merchant's own query as it is and a #fragment after it.
func withParam(raw, k, v string) string {
	base, frag, hasFrag := strings.Cut(raw, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	out := base + sep + url.QueryEscape(k) + "=" + url.QueryEscape(v)
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// redirectHeaders keep the identity out of caches and Referer headers.
var redirectHeaders = map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

func redirect(location string) events.APIGatewayV2HTTPResponse {
	h := make(map[string]string, len(redirectHeaders)+1)
	for k, v := range redirectHeaders {
		h[k] = v
	}
	h["Location"] = location
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound, Headers: h}
}

func (h *Handler) stateTTL() time.Duration {
	if h.StateTTL > 0 {
		return h.StateTTL
	}
	return DefaultStateTTL
}

func (h *Handler) identityTTL() time.Duration {
	if h.IdentityTTL > 0 {
		return h.IdentityTTL
	}
	return DefaultIdentityTTL
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

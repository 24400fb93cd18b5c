// Package authpages serves the merchant-facing authorization pages (GET /auth/start, GET /auth/callback).
//
// /auth/start renders a page whose buttons link to WeChat's login pages (componentloginpage on a computer,
// bindcomponent inside WeChat) with a pre_auth_code and a redirect_uri back to /auth/callback. WeChat refuses
// a server-side redirect to its login page (it checks the Referer against the 授权发起页域名), so the merchant
// has to click. The redirect_uri carries a signed, expiring, single-use `state` binding the tenant.
// /auth/callback verifies the state, exchanges the auth_code through authorization.Service (which also
// coordinates with the `authorized` push carrying the same code) and shows what was authorized.
package authpages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Paths served.
const (
	StartPath    = "/auth/start"
	CallbackPath = "/auth/callback"
)

// DefaultStateTTL is how long an authorization link may take to come back.
const DefaultStateTTL = 20 * time.Minute

// CallbackWait bounds how long the callback waits for the `authorized` push's exchange of the same code.
const CallbackWait = 8 * time.Second

// maxAuthCode bounds the auth_code accepted (WeChat's are about 100 characters).
const maxAuthCode = 512

var (
	tenantRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	appIDRE  = regexp.MustCompile(`^wx[0-9A-Za-z]{16}$`)
)

// Handler serves the authorization pages. Build it with New, which validates it.
type Handler struct {
	Service        *authorization.Service
	Store          *tokenstore.Store
	ComponentAppID string
	PublicBaseURL  string // the API's public URL; redirect_uri is PublicBaseURL + /auth/callback
	MPBase         string // https://mp.weixin.qq.com, or the sandbox
	StateKey       []byte // HMAC-SHA256 key for `state`, at least MinStateKey bytes
	StateTTL       time.Duration
	// ReturnAllowlist lists the origins or URL prefixes a return_url may point to (RETURN_URL_ALLOWLIST).
	ReturnAllowlist []string
	Logger          *slog.Logger
	Now             func() time.Time
}

// New validates h and returns it ready to serve.
func New(h Handler) (*Handler, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

// Validate reports a configuration the pages cannot run with. It never mentions the key's value.
func (h *Handler) Validate() error {
	var problems []string
	if h.Service == nil || h.Store == nil {
		problems = append(problems, "Service and Store are required")
	}
	if h.ComponentAppID == "" {
		problems = append(problems, "ComponentAppID is required")
	}
	for _, f := range []struct{ name, v string }{{"PublicBaseURL", h.PublicBaseURL}, {"MPBase", h.MPBase}} {
		u, err := url.Parse(f.v)
		if f.v == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, f.name+" must be an absolute http(s) URL")
		}
	}
	if len(h.StateKey) < MinStateKey {
		problems = append(problems, fmt.Sprintf("the state signing key (STATE_SIGNING_KEY) must be at least %d bytes", MinStateKey))
	}
	if h.StateTTL < 0 {
		problems = append(problems, "StateTTL must not be negative")
	}
	if _, err := parseAllowlist(h.ReturnAllowlist); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("authpages: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Handle is the Lambda handler (API Gateway HTTP API, payload 2.0).
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	reqID := req.RequestContext.RequestID
	log := h.logger().With("request_id", reqID, "path", req.RawPath)
	ctx = logging.With(ctx, log)
	p := &page{h: h, ctx: ctx, log: log, reqID: reqID}

	if req.RawPath != StartPath && req.RawPath != CallbackPath {
		return p.fail(http.StatusNotFound, "not found", nil, "页面不存在。", "This page does not exist."), nil
	}
	if m := req.RequestContext.HTTP.Method; m != http.MethodGet {
		r := p.fail(http.StatusMethodNotAllowed, "method not allowed", fmt.Errorf("method %q", m),
			"不支持此请求方式。", "Only GET is supported here.")
		r.Headers["Allow"] = http.MethodGet
		return r, nil
	}
	if err := h.Validate(); err != nil {
		return p.fail(http.StatusInternalServerError, "handler misconfigured", err,
			"授权服务配置有误，请联系平台。", "The authorization service is misconfigured; please contact the platform."), nil
	}
	q, err := query(req)
	if err != nil {
		return p.fail(http.StatusBadRequest, "bad query string", err,
			"链接参数无效。", "The link's parameters are not valid."), nil
	}
	if req.RawPath == StartPath {
		return p.start(q), nil
	}
	return p.callback(q), nil
}

// page is one request being answered.
type page struct {
	h     *Handler
	ctx   context.Context
	log   *slog.Logger
	reqID string
	// restart, once the tenant is known, lets an error page offer a fresh start.
	restart string
}

func (p *page) start(q url.Values) events.APIGatewayV2HTTPResponse {
	h := p.h
	tenant := q.Get("tenant")
	if !tenantRE.MatchString(tenant) {
		return p.fail(http.StatusBadRequest, "bad tenant", nil,
			"缺少商户标识 tenant，或格式无效（最多 64 个字母、数字、_ . -）。",
			"The tenant is missing or invalid (up to 64 letters, digits, _ . -).")
	}
	authType := q.Get("auth_type")
	if authType == "" {
		authType = "3"
	}
	if authType != "1" && authType != "2" && authType != "3" {
		return p.fail(http.StatusBadRequest, "bad auth_type", nil,
			"auth_type 无效，应为 1（公众号）、2（小程序）或 3（两者）。",
			"auth_type must be 1 (official account), 2 (mini program) or 3 (either).")
	}
	biz := q.Get("biz_appid")
	if biz != "" && !appIDRE.MatchString(biz) {
		return p.fail(http.StatusBadRequest, "bad biz_appid", nil,
			"biz_appid 无效，应为 wx 开头的 18 位 AppID。", "biz_appid must be an AppID: wx followed by 16 letters or digits.")
	}
	returnURL := q.Get("return_url")
	if returnURL != "" {
		list, _ := parseAllowlist(h.ReturnAllowlist) // validated in Handle
		if _, ok := allowed(list, returnURL); !ok {
			return p.fail(http.StatusBadRequest, "return_url not allowed", nil,
				"返回地址 return_url 不在平台允许的列表中。", "The return_url is not on the platform's allow-list.")
		}
	}
	p.log = p.log.With("tenant", tenant)

	pre, preExp, err := h.Service.PreAuthCode(p.ctx, tenant)
	if err != nil {
		return p.failErr("pre_auth_code not obtained", err)
	}
	// The link dies with its pre_auth_code (a reused one may have less than StateTTL left): the page must not
	// promise more time than WeChat will give.
	now := h.now()
	exp := now.Add(h.stateTTL())
	if !preExp.IsZero() && preExp.Before(exp) {
		exp = preExp
	}
	st := State{Tenant: tenant, Nonce: NewNonce(), Exp: exp.Unix(), PreAuthCode: pre, ReturnURL: returnURL}
	token, err := SignState(h.StateKey, st)
	if err != nil {
		return p.failErr("state not signed", err)
	}
	redirect := strings.TrimRight(h.PublicBaseURL, "/") + CallbackPath + "?" + url.Values{"state": {token}}.Encode()
	params := url.Values{
		"component_appid": {h.ComponentAppID},
		"pre_auth_code":   {pre},
		"redirect_uri":    {redirect},
		"auth_type":       {authType},
	}
	if biz != "" {
		params.Set("biz_appid", biz)
	}
	mp := strings.TrimRight(h.MPBase, "/")
	pc := mp + "/cgi-bin/componentloginpage?" + params.Encode()
	params.Set("action", "bindcomponent")
	params.Set("no_scan", "1")
	mobile := mp + "/safe/bindcomponent?" + params.Encode() + "#wechat_redirect"

	zh, en := authTypeWords(authType)
	p.log.Info("authorization page rendered", "auth_type", authType, "biz_appid", biz, "return_url", returnURL != "")
	return render(http.StatusOK, startPage(startView{
		Tenant: tenant, KindZH: zh, KindEN: en, BizAppID: biz, PCURL: pc, MobileURL: mobile,
		Minutes: int(exp.Sub(now).Round(time.Minute) / time.Minute),
	}))
}

func (p *page) callback(q url.Values) events.APIGatewayV2HTTPResponse {
	h := p.h
	token := q.Get("state")
	if token == "" {
		return p.fail(http.StatusBadRequest, "state missing", nil,
			"链接缺少 state 参数，请从授权页面重新发起授权。", "The link has no state. Please start the authorization again from the authorization page.")
	}
	st, err := VerifyState(h.StateKey, token, h.now())
	switch {
	case errors.Is(err, ErrStateExpired):
		// The state is genuine, only late: offer a fresh link for its tenant.
		if tenantRE.MatchString(st.Tenant) {
			p.log = p.log.With("tenant", st.Tenant)
			p.restart = h.startURL(st)
		}
		return p.fail(http.StatusBadRequest, "state expired", err,
			"授权链接已过期，请重新发起授权。", "The authorization link has expired. Please start again.")
	case err != nil:
		return p.fail(http.StatusBadRequest, "state rejected", err,
			"授权链接无效。请从授权页面重新发起授权。", "The authorization link is not valid. Please start again from the authorization page.")
	}
	p.log = p.log.With("tenant", st.Tenant)
	p.restart = h.startURL(st)

	code := q.Get("auth_code")
	if code == "" || len(code) > maxAuthCode {
		return p.fail(http.StatusBadRequest, "auth_code missing or too long", nil,
			"缺少授权码 auth_code，授权未完成。", "There is no authorization code (auth_code): the authorization was not completed.")
	}
	// Spent before the exchange: a replayed link changes nothing, even while the first one is still running.
	if err := h.Store.UseOnce(p.ctx, "state:"+st.Nonce, time.Unix(st.Exp, 0)); err != nil {
		if errors.Is(err, tokenstore.ErrUsed) {
			if a, ok := p.alreadyDone(st, code); ok {
				p.log.Info("result page shown again")
				return p.result(a, st)
			}
			return p.fail(http.StatusBadRequest, "state replayed", err,
				"此授权链接已使用过。如需再次授权，请重新发起。", "This authorization link has already been used. Start again to authorize once more.")
		}
		return p.failErr("state not recorded", err)
	}
	a, err := h.Service.Complete(p.ctx, authorization.Delivery{
		Code: code, Tenant: st.Tenant, At: h.now(), PreAuthCode: st.PreAuthCode, WaitFor: CallbackWait,
	})
	if err != nil {
		return p.failErr("authorization not completed", err)
	}
	p.log.Info("authorization completed", "authorizer_appid", a.AppID, "permission_sets", a.PermissionSets)
	return p.result(a, st)
}

// alreadyDone recognises a reload of the result page: the state was spent by this very authorization, whose
// code was exchanged and whose account is bound to the state's tenant. Anything else is a replay. A failed
// lookup counts as a replay (the merchant sees "already used", never someone else's account).
func (p *page) alreadyDone(st State, code string) (tokenstore.Authorizer, bool) {
	claim, err := p.h.Store.CodeClaimOf(p.ctx, code)
	if err != nil || !claim.Done || claim.AppID == "" {
		return tokenstore.Authorizer{}, false
	}
	a, err := p.h.Store.Authorizer(p.ctx, claim.AppID)
	if err != nil || a.Tenant != st.Tenant {
		return tokenstore.Authorizer{}, false
	}
	return a, true
}

// result renders the result page for a stored authorization.
func (p *page) result(a tokenstore.Authorizer, st State) events.APIGatewayV2HTTPResponse {
	h := p.h
	p.log = p.log.With("authorizer_appid", a.AppID, "kind", a.Kind)
	if a.Status != tokenstore.StatusAuthorized {
		return p.fail(http.StatusConflict, "authorization superseded", fmt.Errorf("status %q", a.Status),
			"该帐号的授权已被取消或需要重新授权。", "This account's authorization has since been cancelled or must be renewed.")
	}

	v := resultView{
		Name: a.Info.NickName, AppID: a.AppID, Principal: a.Info.PrincipalName, Tenant: a.Tenant,
		Permissions: permissionSets(a.PermissionSets),
	}
	if v.Name == "" {
		v.Name = a.AppID
	}
	v.KindZH, v.KindEN = accountKind(a)
	if u, err := url.Parse(a.Info.HeadImg); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		v.Avatar = u.String()
	}
	if st.ReturnURL != "" {
		list, _ := parseAllowlist(h.ReturnAllowlist)
		if u, ok := allowed(list, st.ReturnURL); ok {
			v.ContinueURL = continueURL(u, a.AppID)
		} else {
			p.log.Warn("return URL no longer on the allow-list; not offered")
		}
	}
	return render(http.StatusOK, resultPage(v))
}

// failErr answers an error from the exchange or WeChat with the status its cause deserves.
func (p *page) failErr(msg string, err error) events.APIGatewayV2HTTPResponse {
	switch {
	case errors.Is(err, authorization.ErrCodeFailed):
		return p.fail(http.StatusBadRequest, msg, err,
			"授权码无效或已过期，请重新发起授权。", "The authorization code is invalid or has expired. Please start again.")
	case errors.Is(err, authorization.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return p.fail(http.StatusGatewayTimeout, msg, err,
			"处理超时，授权结果未确认。请稍后重新发起授权。", "Timed out: the authorization could not be confirmed. Please try again shortly.")
	case errors.Is(err, credentials.ErrNoTicket):
		return p.fail(http.StatusServiceUnavailable, msg, err,
			"平台正在等待微信的验证票据，请几分钟后重试。", "The platform is waiting for WeChat's verification ticket. Please try again in a few minutes.")
	case errors.Is(err, tokenstore.ErrStale):
		return p.fail(http.StatusConflict, msg, err,
			"该帐号已有更新的授权记录，本次结果未采用。请重新发起授权。", "A newer authorization of this account is already stored; this one was not used. Please start again.")
	case isWeChat(err):
		return p.fail(http.StatusBadGateway, msg, err,
			"微信服务暂时不可用，请稍后重试。", "WeChat is not available right now. Please try again later.")
	}
	return p.fail(http.StatusInternalServerError, msg, err,
		"系统错误，请稍后重试。", "Something went wrong on our side. Please try again later.")
}

func isWeChat(err error) bool {
	var we *wxapi.Error
	var he *wxapi.HTTPError
	return errors.As(err, &we) || errors.As(err, &he) || wxapi.IsTransient(err)
}

// fail logs why (never the state, codes or tokens: err values here carry none) and renders the error page.
func (p *page) fail(status int, msg string, err error, zh, en string) events.APIGatewayV2HTTPResponse {
	attrs := []any{"status", status}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	p.log.Log(p.ctx, level, msg, attrs...)
	return render(status, errorPage(errorView{Status: status, ZH: zh, EN: en, RestartURL: p.restart, RequestID: p.reqID}))
}

// startURL is the start page for the same tenant and return URL.
func (h *Handler) startURL(st State) string {
	q := url.Values{"tenant": {st.Tenant}}
	if st.ReturnURL != "" {
		q.Set("return_url", st.ReturnURL)
	}
	return strings.TrimRight(h.PublicBaseURL, "/") + StartPath + "?" + q.Encode()
}

// query parses the raw query string; a parameter given twice is refused rather than guessed at (API
// Gateway would join the values with commas).
func query(req events.APIGatewayV2HTTPRequest) (url.Values, error) {
	if req.RawQueryString == "" {
		q := url.Values{}
		for k, v := range req.QueryStringParameters {
			q.Set(k, v)
		}
		return q, nil
	}
	q, err := url.ParseQuery(req.RawQueryString)
	if err != nil {
		return nil, err
	}
	for k, v := range q {
		if len(v) > 1 {
			return nil, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	return q, nil
}

func (h *Handler) stateTTL() time.Duration {
	if h.StateTTL > 0 {
		return h.StateTTL
	}
	return DefaultStateTTL
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

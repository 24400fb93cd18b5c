// Package authpages serves the merchant-facing authorization pages (GET /auth/start, GET /auth/callback).
//
// /auth/start serves only links the service provider signed for one of its tenants (shared/authlink; the
// operator CLI prints them): an unsigned, tampered or expired link gets an error page and costs no WeChat call
// and no write. It renders a page whose buttons link to WeChat's login pages (componentloginpage on a
// computer, bindcomponent inside WeChat) with the tenant's pre_auth_code and a redirect_uri back to
// /auth/callback. WeChat refuses a server-side redirect to its login page (it checks the Referer against the
// 授权发起页域名), so the merchant has to click. The redirect_uri carries a signed, expiring, single-use
// `state`. /auth/callback verifies the state and completes the exchange through authorization.Service, which
// coordinates with WeChat's `authorized` push. The account's details are shown only once the push confirms
// that the authorization used this link's pre_auth_code; otherwise the page is neutral, so a stolen auth_code
// in another tenant's callback shows and moves nothing.
package authpages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/authlink"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
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

// Handler serves the authorization pages. Build it with New, which validates it.
type Handler struct {
	Service        *authorization.Service
	Table          *table.Table // single-use state nonces
	Tenants        *tenants.Store
	ComponentAppID string
	PublicBaseURL  string // the API's public URL; redirect_uri is PublicBaseURL + /auth/callback
	MPBase         string // https://mp.weixin.qq.com, or the sandbox
	LinkKey        []byte // HMAC-SHA256 key of the provider's signed start links (LINK_SIGNING_KEY)
	StateKey       []byte // HMAC-SHA256 key for `state`, at least MinStateKey bytes
	StateTTL       time.Duration
	// CallbackWait bounds how long the callback waits for the exchange and WeChat's confirming push; default
	// CallbackWait.
	CallbackWait time.Duration
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
	if h.Service == nil || h.Table == nil || h.Tenants == nil {
		problems = append(problems, "Service, Table and Tenants are required")
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
	if len(h.LinkKey) < authlink.MinKey {
		problems = append(problems, fmt.Sprintf("the link signing key (LINK_SIGNING_KEY) must be at least %d bytes", authlink.MinKey))
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
	q, err := Query(req)
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
	// The signature first: nothing about an unsigned or tampered link is looked at further, nothing is
	// written and WeChat is not called.
	link, err := authlink.Parse(h.LinkKey, q, h.now())
	switch {
	case errors.Is(err, authlink.ErrUnsigned):
		return p.fail(http.StatusForbidden, "unsigned start link", err,
			"此链接未经服务商签发，无法发起授权。请向您的服务商索取授权链接。",
			"This link was not issued by your service provider. Ask your service provider for an authorization link.")
	case errors.Is(err, authlink.ErrExpired):
		return p.fail(http.StatusGone, "start link expired", err,
			"授权链接已过期。请向您的服务商索取新的授权链接。",
			"This authorization link has expired. Ask your service provider for a new one.")
	case err != nil:
		return p.fail(http.StatusForbidden, "start link rejected", err,
			"授权链接无效或已被修改。请向您的服务商索取授权链接。",
			"This authorization link is not valid or has been altered. Ask your service provider for a new one.")
	}
	p.log = p.log.With("tenant", link.Tenant)
	tenant, err := h.Tenants.Get(p.ctx, link.Tenant)
	if err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			return p.fail(http.StatusNotFound, "tenant unknown", err,
				"此授权链接所属的商户不存在。请联系您的服务商。", "The merchant this link was issued for does not exist. Please contact your service provider.")
		}
		return p.failErr("tenant not read", err)
	}
	if link.ReturnURL != "" {
		list, _ := parseAllowlist(h.ReturnAllowlist) // validated in Handle
		if _, ok := allowed(list, link.ReturnURL); !ok {
			return p.fail(http.StatusBadRequest, "return_url not allowed", nil,
				"返回地址 return_url 不在平台允许的列表中。", "The return_url is not on the platform's allow-list.")
		}
	}
	authType := link.AuthType
	if authType == "" {
		authType = "3"
	}

	pre, preExp, err := h.Service.PreAuthCode(p.ctx, link.Tenant)
	if err != nil {
		return p.failErr("pre_auth_code not obtained", err)
	}
	// The page dies with its pre_auth_code (a reused one may have less than StateTTL left) and with the link:
	// it must not promise more time than WeChat will give.
	now := h.now()
	exp := now.Add(h.stateTTL())
	for _, limit := range []time.Time{preExp, link.Expires} {
		if !limit.IsZero() && limit.Before(exp) {
			exp = limit
		}
	}
	linkQuery, err := link.Query(h.LinkKey)
	if err != nil {
		return p.failErr("link not re-encoded", err)
	}
	st := State{Tenant: link.Tenant, Nonce: NewNonce(), Exp: exp.Unix(), Iat: now.Unix(), PreAuthCode: pre, ReturnURL: link.ReturnURL, Link: linkQuery}
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
	if link.BizAppID != "" {
		params.Set("biz_appid", link.BizAppID)
	}
	mp := strings.TrimRight(h.MPBase, "/")
	pc := mp + "/cgi-bin/componentloginpage?" + params.Encode()
	params.Set("action", "bindcomponent")
	params.Set("no_scan", "1")
	mobile := mp + "/safe/bindcomponent?" + params.Encode() + "#wechat_redirect"

	zh, en := authTypeWords(authType)
	p.log.Info("authorization page rendered", "auth_type", authType, "biz_appid", link.BizAppID, "return_url", link.ReturnURL != "")
	return render(http.StatusOK, startPage(startView{
		Tenant: merchantName(tenant), KindZH: zh, KindEN: en, BizAppID: link.BizAppID, PCURL: pc, MobileURL: mobile,
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
		// The state is genuine, only late: offer its link again while that link is valid.
		p.log = p.log.With("tenant", st.Tenant)
		p.restart = h.restartURL(st)
		return p.fail(http.StatusBadRequest, "state expired", err,
			"授权页面已过期，请重新发起授权。", "The authorization page has expired. Please start again.")
	case err != nil:
		return p.fail(http.StatusBadRequest, "state rejected", err,
			"授权链接无效。请从授权页面重新发起授权。", "The authorization link is not valid. Please start again from the authorization page.")
	}
	p.log = p.log.With("tenant", st.Tenant)
	p.restart = h.restartURL(st)

	code := q.Get("auth_code")
	if code == "" || len(code) > maxAuthCode {
		return p.fail(http.StatusBadRequest, "auth_code missing or too long", nil,
			"缺少授权码 auth_code，授权未完成。", "There is no authorization code (auth_code): the authorization was not completed.")
	}
	wait := h.CallbackWait
	if wait <= 0 {
		wait = CallbackWait
	}
	redirect := authorization.Redirect{Code: code, Tenant: st.Tenant, PreAuthCode: st.PreAuthCode, WaitFor: wait}
	if st.Iat > 0 {
		redirect.IssuedAt = time.Unix(st.Iat, 0)
	}
	// Spent before the exchange: a replayed link changes nothing, even while the first one is still running.
	if err := h.Table.UseOnce(p.ctx, "state:"+st.Nonce, time.Unix(st.Exp, 0)); err != nil {
		if errors.Is(err, table.ErrUsed) {
			return p.reload(redirect, st)
		}
		return p.failErr("state not recorded", err)
	}
	res, err := h.Service.Redirect(p.ctx, redirect)
	if errors.Is(err, authorization.ErrNotConfirmed) {
		p.log.Info("authorization not confirmed in time", "error", err.Error())
		return render(http.StatusAccepted, pendingPage(p.reqID))
	}
	if err != nil {
		return p.failErr("authorization not completed", err)
	}
	if !res.Confirmed {
		// Stored, but WeChat has not said this link made it (or says another link did): show nothing of it.
		p.log.Warn("authorization not confirmed for this link; account not shown", "authorizer_appid", res.Authorizer.AppID)
		return render(http.StatusAccepted, pendingPage(p.reqID))
	}
	p.log.Info("authorization completed", "authorizer_appid", res.Authorizer.AppID, "permission_sets", res.Authorizer.PermissionSets)
	return p.result(res.Authorizer, st)
}

// reload answers a state already spent: the result page again if this very link's authorization was
// confirmed (a reload), the pending page while WeChat has not confirmed it yet, and "already used" otherwise
// (another code, or the account has been authorized again since). A failed lookup counts as a replay: the
// merchant sees "already used", never someone else's account.
func (p *page) reload(r authorization.Redirect, st State) events.APIGatewayV2HTTPResponse {
	a, err := p.h.Service.Outcome(p.ctx, r.Code)
	switch {
	case err == nil && authorization.Confirmed(a, r):
		p.log.Info("result page shown again")
		return p.result(a, st)
	case errors.Is(err, authorization.ErrNotConfirmed), err == nil && a.AuthCode == r.Code && a.PreAuthCode == "":
		return render(http.StatusAccepted, pendingPage(p.reqID))
	}
	return p.fail(http.StatusBadRequest, "state replayed", err,
		"此授权链接已使用过。如需再次授权，请重新发起。", "This authorization link has already been used. Start again to authorize once more.")
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
		// Signed when the link was made, but the allow-list may have changed since: checked again now.
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
	case errors.Is(err, authorization.ErrBusy):
		return p.fail(http.StatusTooManyRequests, msg, err,
			"当前发起授权的商户较多，请一分钟后刷新本页面。", "Many authorizations are being started right now. Please reload this page in a minute.")
	case errors.Is(err, context.DeadlineExceeded):
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

// merchantName is how the start page names the tenant: its name and id, or the id alone.
func merchantName(t tenants.Tenant) string {
	if t.Name == "" {
		return t.ID
	}
	return t.Name + " (" + t.ID + ")"
}

// restartURL is the state's own start link, while that link is still valid ("" otherwise): a fresh start
// needs a link the provider signed, and the state carries the one it came from.
func (h *Handler) restartURL(st State) string {
	if st.Link == "" {
		return ""
	}
	q, err := url.ParseQuery(st.Link)
	if err != nil {
		return ""
	}
	if _, err := authlink.Parse(h.LinkKey, q, h.now()); err != nil {
		return ""
	}
	return strings.TrimRight(h.PublicBaseURL, "/") + StartPath + "?" + st.Link
}

// Query parses an HTTP API request's raw query string; a parameter given twice is refused rather than guessed
// at (API Gateway would join the values with commas). The fan sign-in pages (shared/fanauth) use it too.
func Query(req events.APIGatewayV2HTTPRequest) (url.Values, error) {
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

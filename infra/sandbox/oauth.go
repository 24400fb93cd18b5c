package sandbox

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// Web OAuth on behalf of an authorized official account (代公众号发起网页授权,
// protocol reference 7.1, addendum C): the authorization page
// /connect/oauth2/authorize (oauthpage.go), the code exchange and refresh
// with the component token, sns/userinfo with the fan's token, and
// cgi-bin/user/info (follow status) with the authorizer token.

// DefaultOAuthCodeTTL is how long an unused web OAuth code lasts.
const DefaultOAuthCodeTTL = 5 * time.Minute

const (
	snsTokenTTL   = 2 * time.Hour       // a fan's web access token
	snsRefreshTTL = 30 * 24 * time.Hour // a fan's web refresh token
)

// Permission sets (权限集) the OAuth APIs need.
const (
	permUserManagement = 2 // 用户管理: cgi-bin/user/info
	permWebService     = 4 // 网页服务: web OAuth
)

// Scopes.
const (
	scopeBase     = "snsapi_base"
	scopeUserInfo = "snsapi_userinfo"
)

// oauthParams are the authorization page's parameters.
type oauthParams struct {
	AppID, RedirectURI, ResponseType, Scope, State, ComponentAppID string
	HasState                                                       bool
}

// oauthParamOrder is the order WeChat requires (state may be left out).
var oauthParamOrder = []string{"appid", "redirect_uri", "response_type", "scope", "state", "component_appid"}

// oauthRefusal is why the authorization page refuses, Chinese first.
type oauthRefusal struct{ ZH, EN string }

// parseOAuthQuery reads the raw query of /connect/oauth2/authorize. WeChat
// checks the parameters' names, case and order, so the query is split by
// hand rather than parsed into a map.
func parseOAuthQuery(raw string) (oauthParams, *oauthRefusal) {
	bad := &oauthRefusal{"参数错误",
		"Invalid parameters: the query must hold appid, redirect_uri, response_type, scope, state (optional) and component_appid, in this order."}
	parts := strings.Split(raw, "&")
	want := oauthParamOrder
	if len(parts) == len(want)-1 {
		want = slices.DeleteFunc(slices.Clone(want), func(n string) bool { return n == "state" })
	}
	if len(parts) != len(want) {
		return oauthParams{}, bad
	}
	vals := make(map[string]string, len(parts))
	for i, part := range parts {
		name, value, _ := strings.Cut(part, "=")
		if name != want[i] {
			return oauthParams{}, bad
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			return oauthParams{}, bad
		}
		vals[name] = v
	}
	_, hasState := vals["state"]
	return oauthParams{
		AppID: vals["appid"], RedirectURI: vals["redirect_uri"], ResponseType: vals["response_type"],
		Scope: vals["scope"], State: vals["state"], HasState: hasState, ComponentAppID: vals["component_appid"],
	}, nil
}

// oauthParamsFromForm reads the parameters the consent form carries.
func oauthParamsFromForm(f url.Values) oauthParams {
	return oauthParams{
		AppID: f.Get("appid"), RedirectURI: f.Get("redirect_uri"), ResponseType: f.Get("response_type"),
		Scope: f.Get("scope"), State: f.Get("state"), HasState: f.Has("state"), ComponentAppID: f.Get("component_appid"),
	}
}

// oauthRequest is an authorization request that passed every check.
type oauthRequest struct {
	acct  Account
	scope string // what a code grants: scopeBase or scopeUserInfo
	p     oauthParams
}

// checkOAuth makes WeChat's checks of an authorization request after the
// parameter order, in WeChat's order.
func (s *Sandbox) checkOAuth(p oauthParams) (oauthRequest, *oauthRefusal) {
	if p.ComponentAppID != s.cfg.ComponentAppID {
		return oauthRequest{}, &oauthRefusal{"component_appid 参数错误，第三方平台不存在。", "The component_appid is not this third-party platform's."}
	}
	s.mu.Lock()
	a := s.authorizers[p.AppID]
	var acct Account
	var authorized, web bool
	if a != nil {
		acct, authorized, web = a.acct, a.authorized, slices.Contains(a.funcInfo, permWebService)
	}
	s.mu.Unlock()
	switch {
	case !authorized:
		return oauthRequest{}, &oauthRefusal{"该公众号未授权给此第三方平台，或已取消授权。",
			"The official account has not authorized this third-party platform, or has revoked the authorization."}
	case acct.IsMiniProgram():
		return oauthRequest{}, &oauthRefusal{"appid 不是公众号，小程序不能发起网页授权。",
			"The appid is a mini program's: only official accounts have web OAuth."}
	case !web:
		return oauthRequest{}, &oauthRefusal{"该公众号未授权给此第三方平台网页授权权限（权限集 4 网页服务）。",
			"The official account did not grant this platform web OAuth (permission set 4, 网页服务)."}
	case p.ResponseType != "code":
		return oauthRequest{}, &oauthRefusal{"response_type 参数错误。", "The response_type must be code."}
	}
	scope, ok := parseScope(p.Scope)
	if !ok {
		return oauthRequest{}, &oauthRefusal{"Scope 参数错误或没有 Scope 权限。",
			"The scope must be snsapi_base or snsapi_userinfo (or a comma-separated list of them)."}
	}
	u, err := url.Parse(p.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return oauthRequest{}, &oauthRefusal{"redirect_uri 参数错误。", "The redirect_uri must be an absolute http(s) URL."}
	}
	if s.cfg.OAuthDomain != "" && !underDomain(u.Host, s.cfg.OAuthDomain) {
		return oauthRequest{}, &oauthRefusal{"redirect_uri 域名与后台配置不一致。",
			"The redirect_uri's host is not under the platform's 公众号开发域名."}
	}
	if len(p.State) > 128 {
		return oauthRequest{}, &oauthRefusal{"state 参数过长，最多 128 字节。", "The state is longer than 128 bytes."}
	}
	return oauthRequest{acct: acct, scope: scope, p: p}, nil
}

// parseScope reads a comma-separated scope list: every element must be
// snsapi_base or snsapi_userinfo; userinfo wins.
func parseScope(raw string) (scope string, ok bool) {
	scope = scopeBase
	for _, sc := range strings.Split(raw, ",") {
		switch sc {
		case scopeBase:
		case scopeUserInfo:
			scope = scopeUserInfo
		default:
			return "", false
		}
	}
	return scope, true
}

// oauthCode is a web OAuth code: single use, bound to an account, a fan
// and a scope.
type oauthCode struct {
	appid, fanID, scope string
	expires             time.Time
	used                bool
}

// snsToken is a fan's web access or refresh token for one account.
type snsToken struct {
	appid, fanID, scope string
	expires             time.Time
}

// issueOAuthCode creates a code for fanID at appid with scope.
func (s *Sandbox) issueOAuthCode(appid, fanID, scope string) string {
	now := s.now()
	c := randomB64(24)
	s.mu.Lock()
	s.oauthCodes[c] = &oauthCode{appid: appid, fanID: fanID, scope: scope, expires: now.Add(s.cfg.OAuthCodeTTL)}
	s.sweepOAuthLocked(now)
	s.mu.Unlock()
	s.log.Info("web oauth code issued", "authorizer_appid", appid, "fan", fanID, "scope", scope)
	return c
}

// sweepOAuthLocked forgets web OAuth codes and tokens a day past their
// expiry (they then answer "invalid" rather than "expired"). Caller holds
// s.mu.
func (s *Sandbox) sweepOAuthLocked(now time.Time) {
	s.oauthInserts++
	if s.oauthInserts%256 != 0 {
		return
	}
	cutoff := now.Add(-24 * time.Hour)
	for k, c := range s.oauthCodes {
		if c.expires.Before(cutoff) {
			delete(s.oauthCodes, k)
		}
	}
	for _, m := range []map[string]*snsToken{s.snsAccess, s.snsRefresh} {
		for k, t := range m {
			if t.expires.Before(cutoff) {
				delete(m, k)
			}
		}
	}
}

// checkOAuthCallLocked makes the checks the component OAuth APIs share
// after the component token: component_appid, and appid is an official
// account that authorized the component with permission set 4. Caller
// holds s.mu.
func (s *Sandbox) checkOAuthCallLocked(q url.Values) *apiError {
	switch cappid := q.Get("component_appid"); {
	case cappid == "":
		return errCodef(CodeAppIDMissing, "hint: component_appid")
	case cappid != s.cfg.ComponentAppID:
		return errCodef(CodeInvalidAppID, "hint: component_appid")
	}
	appid := q.Get("appid")
	if appid == "" {
		return errCodef(CodeAppIDMissing, "hint: appid")
	}
	a := s.authorizers[appid]
	if a == nil || !a.authorized || a.acct.IsMiniProgram() || !slices.Contains(a.funcInfo, permWebService) {
		return errCodef(CodeAPIUnauthorized, "hint: appid must be an official account that granted this component permission set %d", permWebService)
	}
	return nil
}

// issueSNSLocked gives a fan a web access token (and, with refresh "", a
// new refresh token) and returns the API answer. Caller holds s.mu.
func (s *Sandbox) issueSNSLocked(appid, fanID, scope, refresh string, now time.Time) map[string]any {
	at := newAccessToken()
	s.snsAccess[at] = &snsToken{appid: appid, fanID: fanID, scope: scope, expires: now.Add(snsTokenTTL)}
	if refresh == "" {
		refresh = "refresh" + randomB64(72)
		s.snsRefresh[refresh] = &snsToken{appid: appid, fanID: fanID, scope: scope, expires: now.Add(snsRefreshTTL)}
	}
	s.sweepOAuthLocked(now)
	return map[string]any{
		"access_token":  at,
		"expires_in":    seconds(snsTokenTTL),
		"refresh_token": refresh,
		"openid":        s.OpenID(appid, fanID),
		"scope":         scope,
	}
}

// GET /sns/oauth2/component/access_token?appid=&code=&grant_type=authorization_code&component_appid=&component_access_token=
func (s *Sandbox) apiSNSComponentAccessToken(c *apiCall) (any, *apiError) {
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkOAuthCallLocked(q); e != nil {
		return nil, e
	}
	if q.Get("grant_type") != "authorization_code" {
		return nil, errCode(CodeInvalidGrantType)
	}
	appid, raw := q.Get("appid"), q.Get("code")
	if raw == "" {
		return nil, errCode(CodeOAuthCodeMissing)
	}
	oc := s.oauthCodes[raw]
	switch {
	case oc == nil, oc.appid != appid:
		return nil, errCode(CodeOAuthCodeInvalid)
	case oc.used:
		return nil, errCode(CodeOAuthCodeUsed)
	case !c.now.Before(oc.expires):
		return nil, errCode(CodeOAuthCodeExpired)
	}
	oc.used = true
	s.log.Info("web oauth code exchanged", "authorizer_appid", appid, "fan", oc.fanID, "scope", oc.scope)
	return s.issueSNSLocked(appid, oc.fanID, oc.scope, "", c.now), nil
}

// GET /sns/oauth2/component/refresh_token?appid=&grant_type=refresh_token&component_appid=&component_access_token=&refresh_token=
// The refresh token stays the same; a new access token is issued.
func (s *Sandbox) apiSNSComponentRefreshToken(c *apiCall) (any, *apiError) {
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkOAuthCallLocked(q); e != nil {
		return nil, e
	}
	if q.Get("grant_type") != "refresh_token" {
		return nil, errCode(CodeInvalidGrantType)
	}
	appid, raw := q.Get("appid"), q.Get("refresh_token")
	if raw == "" {
		return nil, errCode(CodeSNSRefreshTokenMissing)
	}
	rt := s.snsRefresh[raw]
	switch {
	case rt == nil, rt.appid != appid:
		return nil, errCode(CodeSNSRefreshTokenInvalid)
	case !c.now.Before(rt.expires):
		return nil, errCode(CodeSNSRefreshTokenExpired)
	}
	return s.issueSNSLocked(appid, rt.fanID, rt.scope, raw, c.now), nil
}

// GET /sns/userinfo?access_token=FAN_ACCESS_TOKEN&openid=&lang=zh_CN
func (s *Sandbox) apiSNSUserInfo(c *apiCall) (any, *apiError) {
	q := c.r.URL.Query()
	raw := q.Get("access_token")
	if raw == "" {
		return nil, errCode(CodeAccessTokenMissing)
	}
	s.mu.Lock()
	t := s.snsAccess[raw]
	var tok snsToken
	if t != nil {
		tok = *t
	}
	s.mu.Unlock()
	switch {
	case t == nil:
		return nil, errCode(CodeInvalidCredential)
	case !c.now.Before(tok.expires):
		return nil, errCode(CodeAccessTokenExpired)
	case tok.scope != scopeUserInfo:
		return nil, errCodef(CodeAPIUnauthorized, "hint: the token's scope is %s", tok.scope)
	case q.Get("openid") != s.OpenID(tok.appid, tok.fanID):
		return nil, errCode(CodeInvalidOpenID)
	}
	f := s.fanByID[tok.fanID]
	return map[string]any{
		"openid":     s.OpenID(tok.appid, tok.fanID),
		"nickname":   f.nickName,
		"sex":        0,
		"province":   "",
		"city":       "",
		"country":    "",
		"headimgurl": fanAvatarURL(c.r, f.id),
		"privilege":  []string{},
		"unionid":    s.UnionID(f.id),
	}, nil
}

// GET /cgi-bin/user/info?access_token=AUTHORIZER_TOKEN&openid=&lang=zh_CN:
// an official account's fan and whether they follow it.
func (s *Sandbox) apiUserInfo(c *apiCall) (any, *apiError) {
	openid := c.r.URL.Query().Get("openid")
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authorizers[c.token.owner]
	if a.acct.IsMiniProgram() || !slices.Contains(a.funcInfo, permUserManagement) {
		return nil, errCodef(CodeAPIUnauthorized, "hint: needs an official account that granted permission set %d", permUserManagement)
	}
	appid := a.acct.AppID
	f := s.fanByOpenID(appid, openid)
	if f == nil {
		return nil, errCode(CodeInvalidOpenID)
	}
	since, follows := f.since[appid]
	if !follows {
		return map[string]any{"subscribe": 0, "openid": openid, "tagid_list": []int{}}, nil
	}
	return map[string]any{
		"subscribe":       1,
		"openid":          openid,
		"language":        "zh_CN",
		"subscribe_time":  since.Unix(),
		"unionid":         s.UnionID(f.id),
		"remark":          "",
		"groupid":         0,
		"tagid_list":      []int{},
		"subscribe_scene": "ADD_SCENE_QR_CODE",
		"qr_scene":        0,
		"qr_scene_str":    "",
	}, nil
}

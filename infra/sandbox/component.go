package sandbox

import (
	"crypto/subtle"
	"time"
)

// The component API endpoints (protocol reference section 3). Each handler
// parses its JSON body, checks it the way WeChat does and answers either a
// result or an *apiError. Handlers take s.mu for their state changes.

func seconds(d time.Duration) int { return int(d / time.Second) }

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// checkComponent checks a request's component_appid.
func (s *Sandbox) checkComponent(appid string) *apiError {
	switch {
	case appid == "":
		return errCodef(CodeAppIDMissing, "hint: component_appid")
	case appid != s.cfg.ComponentAppID:
		return errCode(CodeInvalidComponent)
	}
	return nil
}

// checkComponentSecret checks component_appid and the AppSecret.
func (s *Sandbox) checkComponentSecret(appid, secret string) *apiError {
	if e := s.checkComponent(appid); e != nil {
		return e
	}
	switch {
	case secret == "":
		return errCode(CodeAppSecretMissing)
	case !equalSecret(secret, s.cfg.ComponentSecret):
		return errCode(CodeInvalidAppSecret)
	}
	return nil
}

// POST /cgi-bin/component/api_component_token
func (s *Sandbox) apiComponentToken(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID     string `json:"component_appid"`
		ComponentAppSecret string `json:"component_appsecret"`
		Ticket             string `json:"component_verify_ticket"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponentSecret(req.ComponentAppID, req.ComponentAppSecret); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[req.Ticket]
	switch {
	case t == nil:
		return nil, errCode(CodeTicketInvalid)
	case !c.now.Before(t.issued.Add(s.cfg.TicketTTL)):
		return nil, errCode(CodeTicketExpired)
	}
	tok, _ := s.compTokens.issue("", c.now, s.cfg.ComponentTokenTTL, s.cfg.TokenGrace)
	s.log.Info("component access token issued", "expires_in", seconds(s.cfg.ComponentTokenTTL))
	return map[string]any{
		"component_access_token": tok,
		"expires_in":             seconds(s.cfg.ComponentTokenTTL),
	}, nil
}

// POST /cgi-bin/component/api_start_push_ticket. The push itself follows
// the answer (see pushTicketSoon).
func (s *Sandbox) apiStartPushTicket(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID  string `json:"component_appid"`
		ComponentSecret string `json:"component_secret"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponentSecret(req.ComponentAppID, req.ComponentSecret); e != nil {
		return nil, e
	}
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// pushTicketSoon pushes a fresh ticket in the background, after the
// api_start_push_ticket answer has gone out.
func (s *Sandbox) pushTicketSoon() {
	s.goBackground(func() {
		_, _ = s.PushTicket(s.ctx) // a failed push is logged and recorded by push
	})
}

// POST /cgi-bin/component/api_create_preauthcode
func (s *Sandbox) apiCreatePreAuthCode(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID string `json:"component_appid"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponent(req.ComponentAppID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	pre := s.createPreAuthCodeLocked(c.now)
	s.mu.Unlock()
	return map[string]any{"pre_auth_code": pre, "expires_in": seconds(s.cfg.PreAuthCodeTTL)}, nil
}

func (s *Sandbox) createPreAuthCodeLocked(now time.Time) string {
	s.sweepCodesLocked(now)
	pre := newPreAuthCode()
	s.preAuthCodes[pre] = &code{expires: now.Add(s.cfg.PreAuthCodeTTL)}
	return pre
}

// CreatePreAuthCode issues a pre_auth_code without an API call, for tests
// that drive Authorize directly.
func (s *Sandbox) CreatePreAuthCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createPreAuthCodeLocked(s.now())
}

type funcScope struct {
	Category struct {
		ID int `json:"id"`
	} `json:"funcscope_category"`
}

func funcInfoJSON(ids []int) []funcScope {
	out := make([]funcScope, len(ids))
	for i, id := range ids {
		out[i].Category.ID = id
	}
	return out
}

// POST /cgi-bin/component/api_query_auth. Unknown and already used codes
// answer 61009 "code is invalid", expired ones 61010 "code is expired".
func (s *Sandbox) apiQueryAuth(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID string `json:"component_appid"`
		Code           string `json:"authorization_code"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponent(req.ComponentAppID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ac := s.authCodes[req.Code]
	switch {
	case ac == nil || ac.used:
		return nil, errCode(CodeAuthCodeInvalid)
	case !c.now.Before(ac.expires):
		return nil, errCode(CodeAuthCodeExpired)
	}
	ac.used = true
	a := s.authorizers[ac.appid]
	if !a.authorized { // revoked after the code was issued
		return nil, errCode(CodeAuthCodeInvalid)
	}
	tok, _ := a.tokens.issue(a.acct.AppID, c.now, s.cfg.AuthorizerTokenTTL, s.cfg.TokenGrace)
	s.log.Info("authorization code exchanged", "authorizer_appid", a.acct.AppID)
	return map[string]any{"authorization_info": map[string]any{
		"authorizer_appid":         a.acct.AppID,
		"authorizer_access_token":  tok,
		"expires_in":               seconds(s.cfg.AuthorizerTokenTTL),
		"authorizer_refresh_token": a.refreshToken,
		"func_info":                funcInfoJSON(a.funcInfo),
	}}, nil
}

// authorizedLocked returns the authorizer for appid if it is currently
// authorized; unknown and revoked accounts are 61003 like on WeChat.
func (s *Sandbox) authorizedLocked(appid string) (*authorizer, *apiError) {
	if appid == "" {
		return nil, errCodef(CodeAppIDMissing, "hint: authorizer_appid")
	}
	a := s.authorizers[appid]
	if a == nil || !a.authorized {
		return nil, errCode(CodeNotAuthorized)
	}
	return a, nil
}

// POST /cgi-bin/component/api_get_authorizer_info
func (s *Sandbox) apiGetAuthorizerInfo(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponent(req.ComponentAppID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.authorizedLocked(req.AuthorizerAppID)
	if e != nil {
		return nil, e
	}
	acct, base := a.acct, baseURL(c.r)
	info := map[string]any{
		"nick_name":         acct.NickName,
		"head_img":          base + avatarPrefix + acct.AppID + ".svg",
		"service_type_info": map[string]int{"id": acct.ServiceType},
		"verify_type_info":  map[string]int{"id": acct.VerifyType},
		"user_name":         acct.UserName,
		"alias":             acct.Alias,
		"principal_name":    acct.PrincipalName,
		"signature":         acct.Signature,
		"qrcode_url":        base + qrcodePrefix + acct.AppID + ".svg",
		"business_info":     map[string]int{"open_pay": 0, "open_shake": 0, "open_scan": 0, "open_card": 0, "open_store": 0},
		"account_status":    1,
		"register_type":     0,
		"idc":               1,
	}
	if acct.IsMiniProgram() {
		categories := acct.Categories
		if categories == nil {
			categories = []Category{}
		}
		info["MiniProgramInfo"] = map[string]any{
			"network":      s.networkLocked(acct.AppID),
			"categories":   categories,
			"visit_status": 0,
		}
	}
	return map[string]any{
		"authorizer_info": info,
		"authorization_info": map[string]any{
			"authorizer_appid":         acct.AppID,
			"authorizer_refresh_token": a.refreshToken,
			"func_info":                funcInfoJSON(a.funcInfo),
		},
	}, nil
}

// networkLocked is MiniProgramInfo.network: the domains set with
// modify_domain and setwebviewdomain. Caller holds s.mu.
func (s *Sandbox) networkLocked(appid string) map[string][]string {
	var d map[string][]string
	var biz []string
	if m := s.apps[appid]; m != nil {
		d, biz = m.domains, m.webview
	}
	list := func(v []string) []string { return append([]string{}, v...) }
	return map[string][]string{
		"RequestDomain":   list(d["requestdomain"]),
		"WsRequestDomain": list(d["wsrequestdomain"]),
		"UploadDomain":    list(d["uploaddomain"]),
		"DownloadDomain":  list(d["downloaddomain"]),
		"UDPDomain":       list(d["udpdomain"]),
		"TCPDomain":       list(d["tcpdomain"]),
		"BizDomain":       list(biz),
	}
}

// POST /cgi-bin/component/api_authorizer_token. Revoked accounts are 61003;
// an unknown or superseded refresh token is 61023.
func (s *Sandbox) apiAuthorizerToken(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
		RefreshToken    string `json:"authorizer_refresh_token"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponent(req.ComponentAppID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.authorizedLocked(req.AuthorizerAppID)
	if e != nil {
		return nil, e
	}
	if a.refreshToken == "" || !equalSecret(req.RefreshToken, a.refreshToken) {
		return nil, errCode(CodeRefreshTokenInvalid)
	}
	tok, _ := a.tokens.issue(a.acct.AppID, c.now, s.cfg.AuthorizerTokenTTL, s.cfg.TokenGrace)
	a.issues = append(a.issues, c.now)
	if s.cfg.RotateRefreshTokens {
		a.refreshToken = newRefreshToken()
	}
	s.log.Info("authorizer access token issued", "authorizer_appid", a.acct.AppID,
		"expires_in", seconds(s.cfg.AuthorizerTokenTTL), "refresh_token_rotated", s.cfg.RotateRefreshTokens)
	return map[string]any{
		"authorizer_access_token":  tok,
		"expires_in":               seconds(s.cfg.AuthorizerTokenTTL),
		"authorizer_refresh_token": a.refreshToken,
	}, nil
}

// POST /cgi-bin/component/api_get_authorizer_list (count at most 500).
func (s *Sandbox) apiGetAuthorizerList(c *apiCall) (any, *apiError) {
	var req struct {
		ComponentAppID string `json:"component_appid"`
		Offset         int    `json:"offset"`
		Count          int    `json:"count"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if e := s.checkComponent(req.ComponentAppID); e != nil {
		return nil, e
	}
	if req.Offset < 0 || req.Count < 1 || req.Count > 500 {
		return nil, errCodef(CodeDataFormat, "hint: offset >= 0 and 1 <= count <= 500")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type item struct {
		AppID        string `json:"authorizer_appid"`
		RefreshToken string `json:"refresh_token"`
		AuthTime     int64  `json:"auth_time"`
	}
	var all []item
	for _, acct := range s.listedAccountsLocked() {
		if a := s.authorizers[acct.AppID]; a.authorized {
			all = append(all, item{a.acct.AppID, a.refreshToken, a.authTime.Unix()})
		}
	}
	list := []item{}
	if req.Offset < len(all) {
		list = all[req.Offset:min(len(all), req.Offset+req.Count)]
	}
	return map[string]any{"total_count": len(all), "list": list}, nil
}

// GET|POST /cgi-bin/account/getaccountbasicinfo?access_token=AUTHORIZER_TOKEN:
// an authorizer-token API, so callers can observe 40001/42001 on their
// authorizer tokens.
func (s *Sandbox) apiGetAccountBasicInfo(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	a := s.authorizers[c.token.owner]
	s.mu.Unlock()
	acct := a.acct
	verified := acct.VerifyType == 0
	return map[string]any{
		"errcode":         0,
		"errmsg":          "ok",
		"appid":           acct.AppID,
		"account_type":    acct.accountType(),
		"principal_type":  1,
		"principal_name":  acct.PrincipalName,
		"realname_status": 1,
		"nickname":        acct.NickName,
		"wx_verify_info": map[string]any{
			"qualification_verify": verified,
			"naming_verify":        verified,
		},
		"signature_info": map[string]any{
			"signature": acct.Signature, "modify_used_count": 0, "modify_quota": 5,
		},
		"head_image_info": map[string]any{
			"head_image_url": baseURL(c.r) + avatarPrefix + acct.AppID + ".svg", "modify_used_count": 0, "modify_quota": 5,
		},
	}, nil
}

package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxBody is the largest request body accepted (WeChat's APIs take small
// JSON documents).
const maxBody = 1 << 20

// authKind says which access token an API endpoint requires.
type authKind int

const (
	authNone authKind = iota
	authComponent
	authAuthorizer
	// authComponentParam: the component token, in component_access_token
	// only (the web OAuth APIs); an authorizer token there is 48001.
	authComponentParam
)

// apiCall is one API request after the common checks.
type apiCall struct {
	r     *http.Request
	body  []byte
	now   time.Time
	token *accessToken // the validated access token, if the endpoint needs one
	// then, if the handler sets it, runs on a background goroutine once the
	// answer is written (or held or lost by a fault): work WeChat does after
	// answering, such as an audit's result event.
	then func()
}

// rawAnswer is an answer that is not JSON (get_qrcode's picture).
type rawAnswer struct {
	contentType string
	header      map[string]string
	body        []byte
}

// decode parses the JSON body into v; malformed JSON is 47001.
func (c *apiCall) decode(v any) *apiError {
	if err := json.Unmarshal(c.body, v); err != nil {
		return errCodef(CodeDataFormat, "hint: %s", jsonProblem(err))
	}
	return nil
}

// jsonProblem describes a JSON error without echoing request content.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "field " + typeErr.Field + " has the wrong type"
	}
	return "malformed JSON"
}

type apiEndpoint struct {
	name     string
	postOnly bool // false: GET and POST both accepted
	auth     authKind
	// miniProgram: the authorizer token must be a mini program's that
	// granted permission set 18 (the /wxa/ code APIs), checked right after
	// the token; anything else is 61007.
	miniProgram bool
	handle      func(s *Sandbox, c *apiCall) (any, *apiError)
	after       func(s *Sandbox) // runs after a successful answer was written
}

// apiRoutes maps request paths to the JSON API endpoints.
var apiRoutes = map[string]*apiEndpoint{
	"/cgi-bin/component/api_component_token":     {name: "api_component_token", postOnly: true, handle: (*Sandbox).apiComponentToken},
	"/cgi-bin/component/api_start_push_ticket":   {name: "api_start_push_ticket", postOnly: true, handle: (*Sandbox).apiStartPushTicket, after: (*Sandbox).pushTicketSoon},
	"/cgi-bin/component/api_create_preauthcode":  {name: "api_create_preauthcode", postOnly: true, auth: authComponent, handle: (*Sandbox).apiCreatePreAuthCode},
	"/cgi-bin/component/api_query_auth":          {name: "api_query_auth", postOnly: true, auth: authComponent, handle: (*Sandbox).apiQueryAuth},
	"/cgi-bin/component/api_get_authorizer_info": {name: "api_get_authorizer_info", postOnly: true, auth: authComponent, handle: (*Sandbox).apiGetAuthorizerInfo},
	"/cgi-bin/component/api_authorizer_token":    {name: "api_authorizer_token", postOnly: true, auth: authComponent, handle: (*Sandbox).apiAuthorizerToken},
	"/cgi-bin/component/api_get_authorizer_list": {name: "api_get_authorizer_list", postOnly: true, auth: authComponent, handle: (*Sandbox).apiGetAuthorizerList},
	"/cgi-bin/account/getaccountbasicinfo":       {name: "getaccountbasicinfo", auth: authAuthorizer, handle: (*Sandbox).apiGetAccountBasicInfo},
	"/cgi-bin/message/custom/send":               {name: "send", postOnly: true, auth: authAuthorizer, handle: (*Sandbox).apiCustomSend},

	// Template library (codetemplate.go): component token.
	"/wxa/gettemplatedraftlist": {name: "gettemplatedraftlist", auth: authComponent, handle: (*Sandbox).apiGetTemplateDraftList},
	"/wxa/addtotemplate":        {name: "addtotemplate", postOnly: true, auth: authComponent, handle: (*Sandbox).apiAddToTemplate},
	"/wxa/gettemplatelist":      {name: "gettemplatelist", auth: authComponent, handle: (*Sandbox).apiGetTemplateList},
	"/wxa/deletetemplate":       {name: "deletetemplate", postOnly: true, auth: authComponent, handle: (*Sandbox).apiDeleteTemplate},

	// Mini-program code management: authorizer token of a mini program.
	"/wxa/commit":                          {name: "commit", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiCommit},
	"/wxa/get_page":                        {name: "get_page", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetPage},
	"/wxa/get_category":                    {name: "get_category", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetCategory},
	"/wxa/get_qrcode":                      {name: "get_qrcode", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetQRCode},
	"/wxa/security/get_code_privacy_info":  {name: "get_code_privacy_info", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetCodePrivacyInfo},
	"/cgi-bin/component/setprivacysetting": {name: "setprivacysetting", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiSetPrivacySetting},
	"/cgi-bin/component/getprivacysetting": {name: "getprivacysetting", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetPrivacySetting},
	"/wxa/submit_audit":                    {name: "submit_audit", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiSubmitAudit},
	"/wxa/get_auditstatus":                 {name: "get_auditstatus", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetAuditStatus},
	"/wxa/get_latest_auditstatus":          {name: "get_latest_auditstatus", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetLatestAuditStatus},
	"/wxa/undocodeaudit":                   {name: "undocodeaudit", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiUndoCodeAudit},
	"/wxa/speedupaudit":                    {name: "speedupaudit", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiSpeedupAudit},
	"/wxa/queryquota":                      {name: "queryquota", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiQueryQuota},
	"/wxa/release":                         {name: "release", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiRelease},
	"/wxa/grayrelease":                     {name: "grayrelease", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGrayRelease},
	"/wxa/getgrayreleaseplan":              {name: "getgrayreleaseplan", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetGrayReleasePlan},
	"/wxa/revertgrayrelease":               {name: "revertgrayrelease", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiRevertGrayRelease},
	"/wxa/revertcoderelease":               {name: "revertcoderelease", auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiRevertCodeRelease},
	"/wxa/getversioninfo":                  {name: "getversioninfo", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetVersionInfo},
	"/wxa/getvisitstatus":                  {name: "getvisitstatus", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiGetVisitStatus},
	"/wxa/change_visitstatus":              {name: "change_visitstatus", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiChangeVisitStatus},
	"/wxa/modify_domain":                   {name: "modify_domain", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiModifyDomain},
	"/wxa/modify_domain_directly":          {name: "modify_domain_directly", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiModifyDomain},
	"/wxa/setwebviewdomain":                {name: "setwebviewdomain", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiSetWebviewDomain},
	"/wxa/setwebviewdomain_directly":       {name: "setwebviewdomain_directly", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiSetWebviewDomain},
	"/wxa/bind_tester":                     {name: "bind_tester", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiBindTester},
	"/wxa/unbind_tester":                   {name: "unbind_tester", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiUnbindTester},
	"/wxa/memberauth":                      {name: "memberauth", postOnly: true, auth: authAuthorizer, miniProgram: true, handle: (*Sandbox).apiMemberAuth},

	// Web OAuth on behalf of official accounts (oauth.go).
	"/sns/oauth2/component/access_token":  {name: "sns_component_access_token", auth: authComponentParam, handle: (*Sandbox).apiSNSComponentAccessToken},
	"/sns/oauth2/component/refresh_token": {name: "sns_component_refresh_token", auth: authComponentParam, handle: (*Sandbox).apiSNSComponentRefreshToken},
	"/sns/userinfo":                       {name: "sns_userinfo", handle: (*Sandbox).apiSNSUserInfo}, // the fan's token, checked by the handler
	"/cgi-bin/user/info":                  {name: "user_info", auth: authAuthorizer, handle: (*Sandbox).apiUserInfo},
}

// ServeHTTP serves WeChat's API paths (/cgi-bin/...), the authorization pages
// and the sandbox's own pages under /sandbox/.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if ep := apiRoutes[path]; ep != nil {
		s.serveAPI(w, r, ep)
		return
	}
	switch {
	case path == "/cgi-bin/componentloginpage":
		s.countCall("componentloginpage")
		s.serveLoginPage(w, r, false)
	case path == "/safe/bindcomponent", path == "/wxaopen/safe/bindcomponent":
		s.countCall("bindcomponent")
		s.serveLoginPage(w, r, true)
	case path == confirmPath:
		s.countCall("authorize")
		s.serveConfirm(w, r)
	case path == oauthAuthorizePath:
		s.countCall("oauth2_authorize")
		s.serveOAuthAuthorize(w, r)
	case path == oauthDecidePath:
		s.countCall("oauth_decide")
		s.serveOAuthDecide(w, r)
	case path == fansPath:
		s.countCall("fans")
		s.serveFans(w, r)
	case strings.HasPrefix(path, fanAvatarPrefix):
		s.countCall("avatar")
		s.serveFanAvatar(w, r)
	case strings.HasPrefix(path, avatarPrefix):
		s.countCall("avatar")
		s.serveAvatar(w, r)
	case strings.HasPrefix(path, qrcodePrefix):
		s.countCall("qrcode")
		s.serveQRCode(w, r)
	case path == "/sandbox/revoke":
		s.countCall("revoke")
		s.serveRevoke(w, r)
	case path == fanPath:
		s.countCall("fan")
		s.serveFan(w, r)
	case path == releaseCheckPath:
		s.countCall("release-check")
		s.serveReleaseCheck(w, r)
	case path == "/sandbox/" || path == "/sandbox" || path == "/":
		s.serveStatus(w, r)
	default:
		writeJSON(w, http.StatusNotFound, errorBody(&apiError{code: codeNotFoundSandboxLocal}))
	}
}

func (s *Sandbox) serveAPI(w http.ResponseWriter, r *http.Request, ep *apiEndpoint) {
	s.countCall(ep.name)
	if answer, ok := s.applyFault(r.Context(), ep.name); !ok {
		if r.Context().Err() == nil { // the sandbox is closing
			s.writeAPIError(w, errCode(CodeSystemBusy))
		}
		return
	} else if answer != nil {
		s.writeAPIError(w, answer)
		return
	}

	c := &apiCall{r: r}
	if ep.postOnly && r.Method != http.MethodPost {
		s.writeAPIError(w, errCode(CodeRequirePOST))
		return
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			s.writeAPIError(w, &apiError{code: CodeContentTooLarge, detail: "hint: body larger than 1 MB", status: http.StatusRequestEntityTooLarge})
			return
		case err != nil:
			return // the client went away mid-body
		}
		c.body = bytes.TrimSpace(body)
	}
	c.now = s.now()
	if ep.auth != authNone {
		tok, apiErr := s.checkAccessToken(r, ep.auth, c.now)
		if apiErr != nil {
			s.writeAPIError(w, apiErr)
			return
		}
		c.token = tok
	}
	if ep.miniProgram {
		if apiErr := s.checkMiniProgram(c.token.owner); apiErr != nil {
			s.writeAPIError(w, apiErr)
			return
		}
	}
	if ep.postOnly && len(c.body) == 0 {
		s.writeAPIError(w, errCode(CodeEmptyPostData))
		return
	}
	resp, apiErr := ep.handle(s, c)
	s.countServed(ep.name)
	if c.then != nil {
		defer s.goBackground(c.then) // WeChat has acted, whatever becomes of the answer
	}
	if !s.afterFault(r.Context(), ep.name) {
		return // processed, but the answer is lost
	}
	if apiErr != nil {
		s.writeAPIError(w, apiErr)
		return
	}
	if raw, ok := resp.(*rawAnswer); ok {
		for k, v := range raw.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", raw.contentType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(raw.body)
		return
	}
	writeJSON(w, http.StatusOK, resp)
	if ep.after != nil {
		ep.after(s)
	}
}

// checkAccessToken validates the access_token (or component_access_token)
// query parameter of a token-authenticated API call.
func (s *Sandbox) checkAccessToken(r *http.Request, kind authKind, now time.Time) (*accessToken, *apiError) {
	q := r.URL.Query()
	tok := q.Get("access_token")
	switch {
	case kind == authComponentParam:
		tok = q.Get("component_access_token")
	case kind == authComponent && q.Has("component_access_token"):
		tok = q.Get("component_access_token")
	}
	if tok == "" {
		return nil, errCode(CodeAccessTokenMissing)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *accessToken
	switch kind {
	case authComponent, authComponentParam:
		t = s.compTokens.tokens[tok]
		if t == nil && kind == authComponentParam && s.authTokens[tok] != nil {
			return nil, errCodef(CodeAPIUnauthorized, "hint: an authorizer access token is not a component_access_token")
		}
	default:
		t = s.authTokens[tok]
	}
	if code := t.check(now, s.cfg.TokenGrace); code != 0 {
		if code == CodeInvalidCredential {
			return nil, errCodef(code, "hint: [%s]", tokenHint(kind))
		}
		return nil, errCode(code)
	}
	return t, nil
}

func tokenHint(kind authKind) string {
	if kind != authAuthorizer {
		return "component_access_token"
	}
	return "authorizer_access_token"
}

func errorBody(e *apiError) map[string]any {
	return map[string]any{"errcode": e.code, "errmsg": e.message()}
}

func (s *Sandbox) writeAPIError(w http.ResponseWriter, e *apiError) {
	status := e.status
	if status == 0 {
		status = http.StatusOK // WeChat answers errors with HTTP 200
	}
	writeJSON(w, status, errorBody(e))
}

// writeJSON writes v without HTML escaping (WeChat sends '&' and '<' as is).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encoding response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// baseURL is the scheme and host the request reached the sandbox on; it is
// used for absolute links (head_img, qrcode_url) so they work however the
// sandbox is mounted.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

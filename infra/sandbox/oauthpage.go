package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The web OAuth pages: WeChat's authorization URL, served on the sandbox's
// base URL (the platform points its open.weixin.qq.com base here; the
// #wechat_redirect fragment never reaches a server), and the consent
// form's target.
const (
	oauthAuthorizePath = "/connect/oauth2/authorize"
	oauthDecidePath    = "/sandbox/oauth/decide"
)

// GET /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=&state=&component_appid=
// snsapi_base redirects at once with a code; snsapi_userinfo asks the
// browser's fan first. Refusals are an error page (HTTP 400), no redirect.
func (s *Sandbox) serveOAuthAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.renderOAuthError(w, http.StatusMethodNotAllowed, &oauthRefusal{"请求方法错误。", "Method not allowed."})
		return
	}
	p, refusal := parseOAuthQuery(r.URL.RawQuery)
	var req oauthRequest
	if refusal == nil {
		req, refusal = s.checkOAuth(p)
	}
	if refusal != nil {
		s.renderOAuthError(w, http.StatusBadRequest, refusal)
		return
	}
	fan := s.currentFan(r)
	if req.scope == scopeBase {
		s.redirectWithCode(w, req, fan)
		return
	}
	s.render(w, http.StatusOK, "oauth-consent", oauthConsentView{
		Params:        req.p,
		AccountName:   req.acct.NickName,
		AccountAvatar: avatarPrefix + req.acct.AppID + ".svg",
		FanID:         fan.id,
		FanName:       fan.nickName,
		FanAvatar:     fanAvatarPrefix + fan.id + ".svg",
		DecidePath:    oauthDecidePath,
		SwitchFan:     fansPath + "?" + url.Values{"next": {r.URL.RequestURI()}}.Encode(),
	})
}

// POST /sandbox/oauth/decide: the consent page's 允许 Allow / 拒绝 Refuse.
// The request is checked again as the authorization page checks it.
func (s *Sandbox) serveOAuthDecide(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.renderOAuthError(w, http.StatusMethodNotAllowed, &oauthRefusal{"请求方法错误。", "Method not allowed."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderOAuthError(w, http.StatusBadRequest, &oauthRefusal{"参数错误", "The form could not be read."})
		return
	}
	req, refusal := s.checkOAuth(oauthParamsFromForm(r.PostForm))
	if refusal != nil {
		s.renderOAuthError(w, http.StatusBadRequest, refusal)
		return
	}
	fan := s.currentFan(r)
	if r.PostForm.Get("fan") != fan.id {
		s.renderOAuthError(w, http.StatusBadRequest, &oauthRefusal{"当前微信用户已切换，请重新打开授权页面。",
			"The browser's fan changed since the page was shown: open the authorization page again."})
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		s.redirectWithCode(w, req, fan)
	case "refuse":
		s.log.Info("web oauth refused", "authorizer_appid", req.acct.AppID, "fan", fan.id)
		redirectCallback(w, appendCallbackQuery(req.p.RedirectURI, "state="+url.QueryEscape(req.p.State)))
	default:
		s.renderOAuthError(w, http.StatusBadRequest, &oauthRefusal{"参数错误", "The decision must be allow or refuse."})
	}
}

// redirectWithCode issues a code for fan and sends the browser to
// redirect_uri with code, state and appid.
func (s *Sandbox) redirectWithCode(w http.ResponseWriter, req oauthRequest, fan *fanRecord) {
	code := s.issueOAuthCode(req.acct.AppID, fan.id, req.scope)
	extra := "code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(req.p.State) + "&appid=" + url.QueryEscape(req.acct.AppID)
	redirectCallback(w, appendCallbackQuery(req.p.RedirectURI, extra))
}

// redirectCallback answers 302 to target without a body (http.Redirect
// would repeat the URL, and so the code, in an HTML body).
func redirectCallback(w http.ResponseWriter, target string) {
	var b strings.Builder
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	w.Header().Set("Location", b.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// appendCallbackQuery appends extra to the query of redirectURI the way
// WeChat does: before a #fragment, after "?" or "&".
func appendCallbackQuery(redirectURI, extra string) string {
	base, frag, hasFrag := strings.Cut(redirectURI, "#")
	switch {
	case !strings.Contains(base, "?"):
		base += "?"
	case !strings.HasSuffix(base, "?") && !strings.HasSuffix(base, "&"):
		base += "&"
	}
	out := base + extra
	if hasFrag {
		out += "#" + frag
	}
	return out
}

func (s *Sandbox) renderOAuthError(w http.ResponseWriter, status int, refusal *oauthRefusal) {
	s.render(w, status, "oauth-error", refusal)
}

type oauthConsentView struct {
	Params                     oauthParams
	AccountName, AccountAvatar string
	FanID, FanName, FanAvatar  string
	DecidePath, SwitchFan      string
}

const oauthTemplates = `
{{define "oauth-error"}}{{template "head" "网页授权 · WeChat sandbox"}}
<body class="mobile">
<header>微信 · 沙箱<small>WeChat sandbox</small></header>
<main><div class="error" id="oauth-error">
<h1>网页授权失败</h1>
<p id="oauth-error-reason">{{.ZH}}</p>
<p class="en">Web authorization refused. {{.EN}}</p>
</div></main></body></html>{{end}}

{{define "oauth-consent"}}{{template "head" "网页授权 · WeChat sandbox"}}
<body class="mobile">
<header>微信 · 沙箱<small>WeChat sandbox</small></header>
<main>
<div class="card" id="oauth-account">
  <img src="{{.AccountAvatar}}" alt="">
  <div class="info">
    <div class="name">{{.AccountName}}</div>
    <div class="meta">申请获得以下权限 <span class="en">asks for</span></div>
  </div>
</div>
<div class="panel">
<p>获得你的公开信息（昵称、头像等）<br><span class="en">Your public profile (nickname, avatar)</span></p>
<div class="card" id="oauth-fan">
  <img src="{{.FanAvatar}}" alt="">
  <div class="info">
    <div class="name">{{.FanName}}</div>
    <div class="meta">当前微信用户 <span class="en">Signed in as</span> {{.FanID}} · <a href="{{.SwitchFan}}" id="oauth-switch-fan">切换用户 Switch fan</a></div>
  </div>
</div>
<form method="post" action="{{.DecidePath}}">
  <input type="hidden" name="appid" value="{{.Params.AppID}}">
  <input type="hidden" name="redirect_uri" value="{{.Params.RedirectURI}}">
  <input type="hidden" name="response_type" value="{{.Params.ResponseType}}">
  <input type="hidden" name="scope" value="{{.Params.Scope}}">
  {{if .Params.HasState}}<input type="hidden" name="state" value="{{.Params.State}}">{{end}}
  <input type="hidden" name="component_appid" value="{{.Params.ComponentAppID}}">
  <input type="hidden" name="fan" value="{{.FanID}}">
  <p><button type="submit" name="decision" value="allow" id="oauth-allow">允许 Allow</button></p>
  <p><button type="submit" name="decision" value="refuse" id="oauth-refuse" style="background:#f2f2f2;color:#191919">拒绝 Refuse</button></p>
</form>
</div>
<p class="en">这是本地沙箱，不会连接微信。This is a local sandbox; nothing is sent to WeChat.</p>
</main></body></html>{{end}}
`

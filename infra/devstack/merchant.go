package devstack

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/wxtpp/platform/shared/fanauth"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// MerchantPath is the local stack's stand-in for a merchant's web page: it links to the fan sign-in of each
// of the demo tenant's official accounts and shows the `wx_identity` it gets back, verified as a merchant's
// server would verify it (with the tenant's signing secret, which only this local page reads from the table).
const MerchantPath = "/_dev/merchant"

var merchantPage = template.Must(template.New("merchant").Funcs(template.FuncMap{"deref": func(b *bool) bool { return *b }}).Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>商户网页（示例）· Merchant page (demo)</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:1rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left;word-break:break-all}
.ok{color:#1a7f37}.bad{color:#cf222e}small{color:#666}a.btn{display:inline-block;margin:.2rem .4rem .2rem 0}</style></head><body>
<h1>商户网页（示例）<small>Merchant page (demo)</small></h1>
{{if .Error}}<p class="bad" id="signin-error">登录未完成 Sign-in not completed: <code>{{.Error}}</code></p>{{end}}
{{if .Problem}}<p class="bad" id="identity-invalid">wx_identity 无效 not valid: {{.Problem}}</p>{{end}}
{{with .Identity}}<p class="ok" id="identity-verified">wx_identity 已用商户密钥验证 verified with the tenant's signing secret</p>
<table id="identity">
<tr><th>sub (openid)</th><td id="claim-sub">{{.Subject}}</td></tr>
<tr><th>appid</th><td id="claim-appid">{{.AppID}}</td></tr>
<tr><th>scope</th><td id="claim-scope">{{.Scope}}</td></tr>
<tr><th>subscribe 关注</th><td id="claim-subscribe">{{if .Subscribe}}{{if deref .Subscribe}}true{{else}}false{{end}}{{else}}unknown{{end}}</td></tr>
<tr><th>nickname</th><td id="claim-nickname">{{.NickName}}</td></tr>
<tr><th>unionid</th><td id="claim-unionid">{{.UnionID}}</td></tr>
<tr><th>aud · iss</th><td>{{index .Audience 0}} · {{.Issuer}}</td></tr>
</table>{{end}}
<h2>用微信登录 <small>Sign in with WeChat</small></h2>
{{if not .OriginSet}}<p class="bad" id="origin-missing">先允许本页的来源 First allow this page's origin:<br>
<code>build/wxtpp tenant set {{.Tenant}} --return-origin {{.Origin}}</code></p>{{end}}
{{if .Accounts}}<ul>{{range .Accounts}}<li>{{.Name}} <code>{{.AppID}}</code><br>
<a class="btn" id="signin-base-{{.AppID}}" href="{{.Base}}">静默登录 snsapi_base</a>
<a class="btn" id="signin-userinfo-{{.AppID}}" href="{{.UserInfo}}">授权登录 snsapi_userinfo</a></li>{{end}}</ul>
{{else}}<p id="no-accounts">商户 {{.Tenant}} 还没有授权公众号 The tenant has no authorized official account yet.</p>{{end}}
{{if .SandboxURL}}<p><small>换一个粉丝 Another fan: <a href="{{.SandboxURL}}/sandbox/fans">{{.SandboxURL}}/sandbox/fans</a></small></p>{{end}}
</body></html>`))

type merchantAccount struct{ Name, AppID, Base, UserInfo string }

func (s *Stack) merchant(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := struct {
		Tenant, Origin, SandboxURL string
		OriginSet                  bool
		Accounts                   []merchantAccount
		Identity                   *fanauth.Identity
		Error, Problem             string
	}{Tenant: DemoTenant, Origin: tenants.OriginOf(s.URL), SandboxURL: s.SandboxURL, Error: r.URL.Query().Get(fanauth.ErrorParam)}
	t, err := s.Tenants.Get(ctx, DemoTenant)
	if err != nil {
		http.Error(w, "tenant unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	v.OriginSet = slices.Contains(t.ReturnOrigins, v.Origin)
	if tok := r.URL.Query().Get(fanauth.IdentityParam); tok != "" {
		id, err := fanauth.Verify(t.SigningSecret, tok, s.URL, DemoTenant, time.Now())
		if err != nil {
			v.Problem = err.Error()
		} else {
			v.Identity = &id
		}
	}
	list, err := s.authorizers(ctx)
	if err != nil {
		http.Error(w, "accounts unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	back := s.URL + MerchantPath
	for _, a := range list {
		if a.Tenant != DemoTenant || a.Kind != tokenstore.KindOfficialAccount || a.Status != tokenstore.StatusAuthorized {
			continue
		}
		start := s.URL + fanauth.StartPrefix + a.AppID + "/start?"
		v.Accounts = append(v.Accounts, merchantAccount{Name: a.Info.NickName, AppID: a.AppID,
			Base:     start + url.Values{"scope": {"snsapi_base"}, "return_url": {back}}.Encode(),
			UserInfo: start + url.Values{"scope": {"snsapi_userinfo"}, "return_url": {back}}.Encode()})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = merchantPage.Execute(w, v)
}

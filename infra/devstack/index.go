package devstack

import (
	"html/template"
	"net/http"
	"time"
)

// The local stack's start page (GET / on the API's port, exact path only: every other path is the functions'):
// where to go first, in both languages, with the same links `make dev` prints.
var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>本地第三方平台 · Local WeChat third-party platform</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.5}
li{margin:.8rem 0}a{font-weight:600}small{color:#666}code{word-break:break-all}</style></head><body>
<h1>本地第三方平台 <small>Local WeChat third-party platform</small></h1>
<p>整个平台正在本机运行：每个函数、DynamoDB Local、SQS 模拟器和微信沙箱。<br>
<small>The whole platform is running on this machine: every function, DynamoDB Local, the SQS emulator and the WeChat sandbox.</small></p>
<ol>
<li><a id="link-status" href="{{.StatusURL}}">平台状态 Platform status</a><br>
<small>票据、第三方平台令牌、刷新运行和已授权的帐号 · the ticket, the component token, refresh runs and the authorized accounts</small></li>
<li>{{if .SandboxURL}}<a id="link-sandbox" href="{{.SandboxURL}}">微信沙箱 WeChat sandbox</a><br>
<small>沙箱帐号、推送、粉丝、取消授权和全网发布检测 · sandbox accounts, pushes, fans, revocation and the release check</small>
{{else}}微信沙箱未启动 WeChat sandbox not started<br><small>WECHAT_API_BASE 已设置：平台调用另一个微信 · WECHAT_API_BASE is set: the platform talks to another WeChat</small>{{end}}</li>
<li><a id="link-authorize" href="{{.AuthLink}}">授权一个帐号 Authorize an account</a>（商户 tenant <code>{{.Tenant}}</code>）<br>
<small>服务商签发的链接（<code>wxtpp auth-link</code>），{{.LinkDays}} 天内有效；请使用 127.0.0.1 而不是 localhost ·
a signed link as <code>wxtpp auth-link</code> makes them, valid for {{.LinkDays}} days; use 127.0.0.1, not localhost</small></li>
<li><a id="link-merchant" href="{{.MerchantURL}}">商户网页（示例）Merchant page (demo)</a><br>
<small>粉丝用微信登录商户网页（先授权一个公众号）· a fan signs in to a merchant's web page (authorize an official account first)</small></li>
</ol>
<p><small>运营命令行 Operator CLI: <code>build/wxtpp help</code>（先粘贴 make dev 打印的 export 行 · paste the export line make dev printed first）</small></p>
</body></html>`))

// indexLinkTTL is how long the start page's authorization link stays valid (the printed one's lifetime).
const indexLinkTTL = 7 * 24 * time.Hour

func (s *Stack) index(w http.ResponseWriter, r *http.Request) {
	link, err := s.AuthLink(DemoTenant, indexLinkTTL)
	if err != nil {
		http.Error(w, "authorization link not signed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	v := struct {
		StatusURL, SandboxURL, AuthLink, MerchantURL, Tenant string
		LinkDays                                             int
	}{StatusURL: s.URL + StatusPath, AuthLink: link, MerchantURL: s.URL + MerchantPath, Tenant: DemoTenant,
		LinkDays: int(indexLinkTTL / (24 * time.Hour))}
	if s.SandboxURL != "" {
		v.SandboxURL = s.SandboxURL + "/sandbox/"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // the link's expiry moves with every view
	_ = indexPage.Execute(w, v)
}

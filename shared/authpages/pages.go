package authpages

import (
	"html"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// The pages are written by hand rather than with html/template: executing a template makes the linker keep
// every exported method of every linked type (reflect's MethodByName), about 5 MB in this Lambda.
// The rule that keeps them safe: fixed markup goes through raw, and every value goes through text or url.

// Response headers of every page. The CSP lets nothing load but inline styles and the account's avatar
// (WeChat's head_img); Referrer-Policy keeps the origin on the click to WeChat, whose login page checks that
// the Referer is under the platform's 授权发起页域名. X-Frame-Options repeats frame-ancestors for browsers
// without CSP 2 (no clickjacking of the Authorize buttons); browsers ignore HSTS on http (make dev).
var pageHeaders = map[string]string{
	"Content-Type":              "text/html; charset=utf-8",
	"Cache-Control":             "no-store",
	"X-Content-Type-Options":    "nosniff",
	"Content-Security-Policy":   "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"Referrer-Policy":           "strict-origin-when-cross-origin",
	"X-Frame-Options":           "DENY",
	"Strict-Transport-Security": "max-age=31536000",
}

type startView struct {
	Tenant         string
	KindZH, KindEN string
	BizAppID       string
	PCURL          string // componentloginpage
	MobileURL      string // bindcomponent, #wechat_redirect
	Minutes        int    // how long the link works
}

type resultView struct {
	Name, AppID, Avatar string
	KindZH, KindEN      string
	Principal           string
	Tenant              string
	Permissions         []permissionSet
	ContinueURL         string
}

type errorView struct {
	Status     int
	ZH, EN     string
	RestartURL string
	RequestID  string
}

// render wraps a page's HTML in a response with the page headers.
func render(status int, body string) events.APIGatewayV2HTTPResponse {
	h := make(map[string]string, len(pageHeaders))
	for k, v := range pageHeaders {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: body}
}

// htmlDoc is a page being written.
type htmlDoc struct{ strings.Builder }

// raw writes markup from this file; never pass it a value.
func (d *htmlDoc) raw(s string) { d.WriteString(s) }

// text writes a value escaped, safe in element content and in a quoted attribute.
func (d *htmlDoc) text(s string) { d.WriteString(html.EscapeString(s)) }

// url writes a link target for a quoted href or src: an absolute http(s) URL, or "#" for anything else
// (javascript:, data:, relative or unparsable).
func (d *htmlDoc) url(s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		s = "#"
	}
	d.text(s)
}

func startPage(v startView) string {
	var d htmlDoc
	d.head("授权 · Authorize")
	d.raw(`
<section class="card">
<h1>授权您的`)
	d.text(v.KindZH)
	d.raw(`<span class="en">Authorize `)
	d.text(v.KindEN)
	d.raw(`</span></h1>
<p class="lead">授权后，本平台可代您管理该帐号（如消息回复、菜单、小程序代码提交与发布）。您可随时在微信公众平台取消授权。</p>
<p class="en">Once authorized, this platform manages the account on your behalf (replies, menus, mini-program code releases). You can cancel the authorization at any time on the WeChat Official Accounts Platform.</p>
<dl>
<dt>商户 Merchant</dt><dd id="tenant">`)
	d.text(v.Tenant)
	d.raw(`</dd>
<dt>可授权帐号 Accounts</dt><dd>`)
	d.text(v.KindZH)
	d.raw(" · ")
	d.text(v.KindEN)
	d.raw("</dd>\n")
	if v.BizAppID != "" {
		d.raw(`<dt>指定帐号 Account</dt><dd>`)
		d.text(v.BizAppID)
		d.raw("</dd>\n")
	}
	d.raw(`</dl>
<div class="actions">
<a class="btn primary" id="authorize-pc" href="`)
	d.url(v.PCURL)
	d.raw(`">使用电脑扫码授权<small>Authorize on a computer (scan the QR code)</small></a>
<a class="btn secondary" id="authorize-mobile" href="`)
	d.url(v.MobileURL)
	d.raw(`">在微信中授权<small>Authorize inside WeChat on your phone</small></a>
</div>
<ol class="steps">
<li>点击上方按钮，使用帐号管理员的微信扫码或确认。<span class="en">Click a button above; the account administrator scans or confirms with WeChat.</span></li>
<li>选择帐号并确认授予的权限。<span class="en">Choose the account and confirm the permissions.</span></li>
<li>完成后自动返回，查看授权结果。<span class="en">You come back here to see the result.</span></li>
</ol>
<p class="note">此页面 `)
	d.text(strconv.Itoa(v.Minutes))
	d.raw(` 分钟内有效，过期请刷新本页面。<br>This page works for `)
	d.text(strconv.Itoa(v.Minutes))
	d.raw(` minutes; reload it if it has expired.</p>
</section>
`)
	d.foot()
	return d.String()
}

func resultPage(v resultView) string {
	var d htmlDoc
	d.head("授权成功 · Authorized")
	d.raw(`
<section class="card">
<div class="status ok">✓</div>
<h1>授权成功<span class="en">Authorization complete</span></h1>
<div class="account">
`)
	if v.Avatar != "" {
		d.raw(`<img src="`)
		d.url(v.Avatar)
		d.raw(`" alt="" referrerpolicy="no-referrer" width="64" height="64">` + "\n")
	}
	d.raw(`<div>
<div class="name" id="account-name">`)
	d.text(v.Name)
	d.raw(`</div>
<div class="badge" id="account-kind">`)
	d.text(v.KindZH)
	d.raw(" · ")
	d.text(v.KindEN)
	d.raw(`</div>
<div class="meta">AppID `)
	d.text(v.AppID)
	if v.Principal != "" {
		d.raw(" · ")
		d.text(v.Principal)
	}
	d.raw(`</div>
</div>
</div>
<dl>
<dt>商户 Merchant</dt><dd id="tenant">`)
	d.text(v.Tenant)
	d.raw(`</dd>
</dl>
<h2>已授予的权限<span class="en">Granted permissions</span></h2>
<ul class="perms" id="permission-sets">
`)
	for _, p := range v.Permissions {
		d.raw(`<li data-id="`)
		d.text(strconv.Itoa(p.ID))
		d.raw(`">`)
		d.text(p.ZH)
		d.raw(`<span class="en">`)
		d.text(p.EN)
		d.raw("</span></li>\n")
	}
	if len(v.Permissions) == 0 {
		d.raw("<li>无 None</li>\n")
	}
	d.raw("</ul>\n")
	if v.ContinueURL != "" {
		d.raw(`<div class="actions"><a class="btn primary" id="continue" href="`)
		d.url(v.ContinueURL)
		d.raw(`">继续 Continue</a></div>` + "\n")
	}
	d.raw(`<p class="note">您可以关闭此页面。<br>You may close this page.</p>
</section>
`)
	d.foot()
	return d.String()
}

func errorPage(v errorView) string {
	var d htmlDoc
	d.head("无法完成授权 · Authorization failed")
	d.raw(`
<section class="card">
<div class="status bad">!</div>
<h1>无法完成授权<span class="en">The authorization could not be completed</span></h1>
<div class="error-msg" id="error">
<p>`)
	d.text(v.ZH)
	d.raw(`</p>
<p class="en">`)
	d.text(v.EN)
	d.raw(`</p>
</div>
`)
	if v.RestartURL != "" {
		d.raw(`<div class="actions"><a class="btn primary" id="restart" href="`)
		d.url(v.RestartURL)
		d.raw(`">重新发起授权 Start again</a></div>` + "\n")
	}
	d.raw(`<p class="note">HTTP `)
	d.text(strconv.Itoa(v.Status))
	if v.RequestID != "" {
		d.raw(" · 请求编号 Request ID ")
		d.text(v.RequestID)
	}
	d.raw(`</p>
</section>
`)
	d.foot()
	return d.String()
}

// pendingPage answers a redirect whose authorization is not confirmed for it: still being completed, or made
// through another link. It shows nothing of any account.
func pendingPage(requestID string) string {
	var d htmlDoc
	d.head("授权处理中 · Authorization pending")
	d.raw(`
<section class="card">
<div class="status wait">…</div>
<h1 id="pending">授权结果确认中<span class="en">Your authorization is being confirmed</span></h1>
<p>如果您已在微信中确认授权，无需再做任何操作：平台收到微信的通知后会自动完成。稍后刷新本页面可查看结果。</p>
<p class="en">If you confirmed the authorization in WeChat, there is nothing more to do: the platform completes it when WeChat notifies it. Reload this page in a moment to see the result.</p>
<p class="note">`)
	if requestID != "" {
		d.raw("请求编号 Request ID ")
		d.text(requestID)
	}
	d.raw(`</p>
</section>
`)
	d.foot()
	return d.String()
}

// head writes everything up to and including <main>: the shared styles and the top bar.
func (d *htmlDoc) head(title string) {
	d.raw(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>`)
	d.text(title)
	d.raw(`</title>
<style>
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f4f5f7;color:#1f2329;font:15px/1.6 -apple-system,BlinkMacSystemFont,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","Noto Sans SC","Segoe UI",Roboto,sans-serif}
.top{background:#fff;border-bottom:1px solid #e6e8eb}
.top .wrap{display:flex;align-items:center;gap:10px;padding:14px 20px;font-weight:600;font-size:15px}
.mark{width:22px;height:22px;border-radius:6px;background:#07c160;display:inline-block;flex:none}
.top small{color:#8a8f99;font-weight:400}
.wrap{max-width:640px;margin:0 auto}
main.wrap{padding:28px 16px 40px}
.card{background:#fff;border-radius:12px;padding:28px;box-shadow:0 1px 3px rgba(16,24,40,.06),0 1px 2px rgba(16,24,40,.04)}
h1{font-size:22px;line-height:1.35;margin:0}
h1 .en,h2 .en{display:block;font-size:14px;font-weight:400;color:#8a8f99;margin-top:2px}
h2{font-size:16px;margin:26px 0 10px}
p{margin:12px 0}
.en{color:#646a73}
.lead{color:#3b4048;margin-bottom:4px}
p.en{font-size:14px;margin-top:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px;margin:20px 0;padding:14px 16px;background:#f7f8fa;border-radius:8px;font-size:14px}
dt{color:#646a73}
dd{margin:0;word-break:break-all}
.actions{display:flex;flex-direction:column;gap:12px;margin:24px 0 8px}
.btn{display:block;text-align:center;text-decoration:none;border-radius:8px;padding:12px 18px;font-size:16px;font-weight:600;border:1px solid transparent}
.btn small{display:block;font-size:13px;font-weight:400;opacity:.9}
.primary{background:#07c160;color:#fff}
.primary:hover{background:#06ad56}
.secondary{background:#fff;color:#07a252;border-color:#b7ebcd}
.secondary:hover{background:#f0fbf5}
ol.steps{margin:22px 0 0;padding:0;list-style:none;counter-reset:s}
ol.steps li{counter-increment:s;position:relative;padding:0 0 12px 34px;font-size:14px}
ol.steps li .en{display:block;font-size:13px}
ol.steps li::before{content:counter(s);position:absolute;left:0;top:1px;width:22px;height:22px;border-radius:50%;background:#e8f8ef;color:#07a252;font-size:12px;font-weight:600;text-align:center;line-height:22px}
.note{font-size:13px;color:#8a8f99;margin-top:18px}
.status{width:48px;height:48px;border-radius:50%;display:flex;align-items:center;justify-content:center;color:#fff;font-size:26px;font-weight:700;margin-bottom:14px}
.ok{background:#07c160}.bad{background:#f54a45}.wait{background:#f0a020}
.account{display:flex;align-items:center;gap:16px;margin:22px 0 6px;padding:16px;border:1px solid #e6e8eb;border-radius:10px}
.account img{width:64px;height:64px;border-radius:50%;flex:none;background:#f0f1f3;object-fit:cover}
.account .name{font-size:18px;font-weight:600;word-break:break-all}
.badge{display:inline-block;background:#e8f8ef;color:#07a252;border-radius:4px;padding:1px 8px;font-size:13px;margin:4px 0}
.meta{font-size:13px;color:#646a73;word-break:break-all}
ul.perms{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:8px}
ul.perms li{background:#f7f8fa;border-radius:8px;padding:8px 12px;font-size:14px}
ul.perms li .en{display:block;font-size:12px}
.error-msg{background:#fef1f1;border-left:4px solid #f54a45;border-radius:6px;padding:12px 16px;margin:18px 0}
footer{text-align:center;font-size:12px;color:#a0a5ad;margin-top:20px}
@media (max-width:480px){.card{padding:20px 18px}h1{font-size:20px}dl{grid-template-columns:1fr;gap:0}dd{margin-bottom:6px}
#authorize-mobile{order:-1;background:#07c160;color:#fff}#authorize-pc{background:#fff;color:#07a252;border-color:#b7ebcd}}
</style></head>
<body><header class="top"><div class="wrap"><span class="mark"></span>帐号授权 <small>Account authorization</small></div></header>
<main class="wrap">`)
}

// foot closes what head opened.
func (d *htmlDoc) foot() {
	d.raw(`<footer>授权由微信开放平台完成，本平台不会获取您的微信密码。<br>Authorization happens on WeChat's Open Platform; this platform never sees your WeChat password.</footer>
</main></body></html>`)
}

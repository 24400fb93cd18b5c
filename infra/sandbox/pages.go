package sandbox

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// confirmPath is where the Authorize buttons post to.
const confirmPath = "/sandbox/authorize"

// loginParams are the query parameters of componentloginpage/bindcomponent,
// carried unchanged through the confirm form.
type loginParams struct {
	ComponentAppID string
	PreAuthCode    string
	RedirectURI    string
	AuthType       string // as given; "" means 3
	BizAppID       string
	Mobile         bool
}

func loginParamsFrom(v url.Values, mobile bool) loginParams {
	return loginParams{
		ComponentAppID: v.Get("component_appid"),
		PreAuthCode:    v.Get("pre_auth_code"),
		RedirectURI:    v.Get("redirect_uri"),
		AuthType:       v.Get("auth_type"),
		BizAppID:       v.Get("biz_appid"),
		Mobile:         mobile,
	}
}

// allowedAccounts validates p and lists the accounts it lets the merchant
// authorize: auth_type 1 official accounts, 2 mini programs, 3 (default)
// both; biz_appid restricts to one account and wins over auth_type.
func (s *Sandbox) allowedAccounts(p loginParams, now time.Time) ([]Account, error) {
	if p.ComponentAppID != s.cfg.ComponentAppID {
		return nil, ErrWrongComponent
	}
	s.mu.Lock()
	err := s.checkPreAuthCodeLocked(p.PreAuthCode, now)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(p.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrBadRedirectURI
	}
	if s.cfg.AuthDomain != "" && !underDomain(u.Host, s.cfg.AuthDomain) {
		return nil, ErrAuthDomainMismatch
	}
	authType := 3
	if p.AuthType != "" {
		authType, err = strconv.Atoi(p.AuthType)
		if err != nil || authType < 1 || authType > 3 {
			return nil, ErrBadAuthType
		}
	}
	var out []Account
	for _, a := range s.accounts {
		switch {
		case p.BizAppID != "":
			if a.AppID != p.BizAppID {
				continue
			}
		case authType == 1 && a.IsMiniProgram(), authType == 2 && !a.IsMiniProgram():
			continue
		}
		out = append(out, a)
	}
	if p.BizAppID != "" && len(out) == 0 {
		return nil, ErrUnknownAccount
	}
	return out, nil
}

// underDomain reports whether hostport's host is domain or a subdomain of it.
func underDomain(hostport, domain string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host, domain = strings.ToLower(host), strings.ToLower(domain)
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// pageError explains a refused authorization page, Chinese first.
func pageError(err error) (zh, en string) {
	switch {
	case errors.Is(err, ErrWrongComponent):
		return "第三方平台 appid 无效。", "The component_appid is not valid."
	case errors.Is(err, ErrUnknownPreAuthCode):
		return "预授权码无效，请返回重新发起授权。", "The pre_auth_code is invalid. Go back and start the authorization again."
	case errors.Is(err, ErrPreAuthCodeExpired):
		return "预授权码已过期，请返回重新发起授权。", "The pre_auth_code has expired. Go back and start the authorization again."
	case errors.Is(err, ErrPreAuthCodeUsed):
		return "预授权码已被使用，请返回重新发起授权。", "The pre_auth_code has already been used. Go back and start the authorization again."
	case errors.Is(err, ErrBadRedirectURI):
		return "回调地址 redirect_uri 缺失或无效。", "The redirect_uri is missing or is not an absolute http(s) URL."
	case errors.Is(err, ErrBadAuthType):
		return "auth_type 参数无效，应为 1、2 或 3。", "The auth_type must be 1, 2 or 3."
	case errors.Is(err, ErrUnknownAccount):
		return "指定的帐号 biz_appid 不存在。", "The account given by biz_appid does not exist."
	case errors.Is(err, ErrAccountNotAllowed):
		return "该帐号不在本次可授权的范围内。", "This account may not be authorized with these parameters."
	case errors.Is(err, ErrAuthDomainMismatch):
		return "请确认授权入口页所在域名，与授权后回调页所在域名相同，并且与第三方平台设置的授权发起页域名一致。",
			"The page that links here and the redirect_uri must both be under the platform's authorization domain."
	}
	return "授权失败，请稍后重试。", "The authorization failed. Please try again later."
}

// GET /cgi-bin/componentloginpage (PC) and /safe/bindcomponent (mobile).
func (s *Sandbox) serveLoginPage(w http.ResponseWriter, r *http.Request, mobile bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.renderError(w, http.StatusMethodNotAllowed, mobile, errors.New("method not allowed"))
		return
	}
	q := r.URL.Query()
	if mobile && q.Get("action") != "bindcomponent" {
		s.renderError(w, http.StatusBadRequest, mobile, fmt.Errorf("action must be bindcomponent"))
		return
	}
	if s.cfg.AuthDomain != "" {
		ref, err := url.Parse(r.Referer())
		if r.Referer() == "" || err != nil || !underDomain(ref.Host, s.cfg.AuthDomain) {
			s.renderError(w, http.StatusBadRequest, mobile, ErrAuthDomainMismatch)
			return
		}
	}
	p := loginParamsFrom(q, mobile)
	accts, err := s.allowedAccounts(p, s.now())
	if err != nil {
		s.renderError(w, http.StatusBadRequest, mobile, err)
		return
	}
	s.mu.Lock()
	cards := make([]accountCard, len(accts))
	for i, a := range accts {
		cards[i] = accountCard{Account: a, Authorized: s.authorizers[a.AppID].authorized, Perms: permNames(a.FuncInfo)}
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "login", loginView{
		Params: p, ComponentAppID: s.cfg.ComponentAppID, Accounts: cards, ConfirmPath: confirmPath,
	})
}

// POST /sandbox/authorize: the Authorize button. Validates everything again,
// authorizes, pushes, then redirects to redirect_uri with auth_code and
// expires_in appended to its query.
func (s *Sandbox) serveConfirm(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.renderError(w, http.StatusMethodNotAllowed, false, errors.New("method not allowed"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, false, errors.New("bad form"))
		return
	}
	p := loginParamsFrom(r.PostForm, r.PostForm.Get("mobile") == "1")
	appid := r.PostForm.Get("authorizer_appid")
	accts, err := s.allowedAccounts(p, s.now())
	if err == nil && !containsAccount(accts, appid) {
		err = ErrAccountNotAllowed
	}
	if err != nil {
		s.renderError(w, http.StatusBadRequest, p.Mobile, err)
		return
	}
	// The push outlives a browser that gives up; Close still stops it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	authCode, err := s.Authorize(ctx, appid, p.PreAuthCode)
	var pushErr *PushError
	switch {
	case errors.As(err, &pushErr):
		// WeChat redirects whether or not our receiver took the push.
	case err != nil:
		s.renderError(w, http.StatusBadRequest, p.Mobile, err)
		return
	}
	target := p.RedirectURI
	u, _ := url.Parse(target) // validated by allowedAccounts
	extra := url.Values{"auth_code": {authCode}, "expires_in": {strconv.Itoa(seconds(s.cfg.AuthCodeTTL))}}.Encode()
	if u.RawQuery != "" {
		u.RawQuery += "&" + extra
	} else {
		u.RawQuery = extra
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func containsAccount(accts []Account, appid string) bool {
	for _, a := range accts {
		if a.AppID == appid {
			return true
		}
	}
	return false
}

// POST /sandbox/revoke?appid=: Revoke for people (status page) and scripts.
func (s *Sandbox) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errcode": CodeRequirePOST, "errmsg": "require POST method"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	_ = r.ParseForm() // appid may come from the query or a form
	appid := r.Form.Get("appid")
	err := s.Revoke(context.WithoutCancel(r.Context()), appid)
	var pushErr *PushError
	resp := map[string]any{"errcode": 0, "errmsg": "ok"}
	status := http.StatusOK
	switch {
	case errors.As(err, &pushErr):
		resp["push_error"] = fmt.Sprintf("receiver answered HTTP %d", pushErr.Status)
	case errors.Is(err, ErrUnknownAccount):
		status, resp = http.StatusNotFound, map[string]any{"errcode": CodeInvalidAppID, "errmsg": "invalid appid"}
	case errors.Is(err, ErrNotAuthorized):
		status, resp = http.StatusConflict, map[string]any{"errcode": CodeNotAuthorized, "errmsg": "account is not authorized"}
	case err != nil:
		status, resp = http.StatusInternalServerError, map[string]any{"errcode": CodeSystemBusy, "errmsg": "system error"}
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") && status == http.StatusOK {
		http.Redirect(w, r, "/sandbox/", http.StatusSeeOther)
		return
	}
	writeJSON(w, status, resp)
}

// ticketScheduleLocked describes the ticket pushes for the status page: the
// timer's interval (TicketInterval, the one in use), the last ticket push
// (whoever asked for it: the timer, api_start_push_ticket, a release check or
// the embedder) and when the timer pushes next. now is the sandbox clock,
// wall the real clock the timer runs on.
func (s *Sandbox) ticketScheduleLocked(now, wall time.Time) (interval, last, next string) {
	interval = "关 off (0: 无定时推送 no timer)"
	next = "不推送 none: 无定时器 no timer"
	if d := s.cfg.TicketInterval; d > 0 {
		interval = ShortDuration(d)
		switch {
		case !s.nextTicket.IsZero():
			wait := max(s.nextTicket.Sub(wall), 0)
			next = fmt.Sprintf("%s (%s)", now.Add(wait).Format(time.DateTime), In(wait))
		case s.cfg.ManualFirstTicket:
			next = "等待首次推送 waiting for the first push; 之后每 then every " + interval
		default:
			next = "即将 soon"
		}
	}
	last = "尚无 none yet"
	for i := len(s.pushes) - 1; i >= 0; i-- {
		p := s.pushes[i]
		if p.InfoType != InfoTicket {
			continue
		}
		result := "成功 success"
		if p.Err != nil {
			result = fmt.Sprintf("失败 failed (HTTP %d)", p.Status)
		}
		last = fmt.Sprintf("%s (%s) %s", p.Time.Format(time.DateTime), Ago(max(now.Sub(p.Time), 0)), result)
		break
	}
	return interval, last, next
}

// ShortDuration writes a duration without its zero tails: 10m, 1h30m, 45s (the local stack's status page
// uses it too).
func ShortDuration(d time.Duration) string {
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

// Ago and In say how long ago or how soon, roughly, in both languages: "3 分钟前 3 min ago", "2 小时后 in 2 h"
// (the local stack's status page uses them too).
func Ago(d time.Duration) string {
	zh, en := roughly(d)
	return zh + "前 " + en + " ago"
}

// In: see Ago.
func In(d time.Duration) string {
	zh, en := roughly(d)
	return zh + "后 in " + en
}

func roughly(d time.Duration) (zh, en string) {
	switch {
	case d < time.Minute:
		n := int64(d / time.Second)
		return fmt.Sprintf("%d 秒", n), fmt.Sprintf("%d s", n)
	case d < time.Hour:
		n := int64(d / time.Minute)
		return fmt.Sprintf("%d 分钟", n), fmt.Sprintf("%d min", n)
	case d < 48*time.Hour:
		h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d 小时", h), fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d 小时 %d 分钟", h, m), fmt.Sprintf("%d h %d min", h, m)
	default:
		n := int64(d / (24 * time.Hour))
		return fmt.Sprintf("%d 天", n), fmt.Sprintf("%d days", n)
	}
}

// GET /sandbox/: what the sandbox knows, for people. No secrets or tokens.
func (s *Sandbox) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/sandbox" || r.URL.Path == "/" {
		http.Redirect(w, r, "/sandbox/", http.StatusFound)
		return
	}
	s.mu.Lock()
	v := statusView{
		ComponentAppID: s.cfg.ComponentAppID,
		PushURL:        s.cfg.PushURL,
		MessageURL:     s.cfg.MessageURL,
		FanPath:        fanPath,
		FansPath:       fansPath,
		ReleasePath:    releaseCheckPath,
		Groups:         groupNumbers(),
		Rotate:         s.cfg.RotateRefreshTokens,
		Now:            s.now().Format(time.DateTime),
	}
	now := s.now()
	v.TicketInterval, v.LastTicket, v.NextTicket = s.ticketScheduleLocked(now, time.Now())
	for _, t := range s.tickets {
		if now.Before(t.issued.Add(s.cfg.TicketTTL)) {
			v.ValidTickets++
		}
	}
	if t := s.compTokens.tokens[s.compTokens.current()]; t != nil && t.check(now, s.cfg.TokenGrace) == 0 {
		v.ComponentToken = "有效至 valid until " + t.expires.Format(time.DateTime)
	} else {
		v.ComponentToken = "无 none"
	}
	for _, acct := range s.listedAccountsLocked() {
		a := s.authorizers[acct.AppID]
		row := statusAccount{Account: acct, Authorized: a.authorized, HasRefresh: a.refreshToken != "", Issues: len(a.issues)}
		if a.authorized {
			row.AuthTime = a.authTime.Format(time.DateTime)
		}
		v.Accounts = append(v.Accounts, row)
	}
	start := max(0, len(s.pushes)-20)
	for i := len(s.pushes) - 1; i >= start; i-- {
		p := s.pushes[i]
		row := statusPush{InfoType: p.InfoType, Appid: p.AuthorizerAppid, Time: p.Time.Format(time.DateTime), OK: p.Err == nil}
		if p.Err != nil {
			row.Result = fmt.Sprintf("失败 failed (HTTP %d)", p.Status)
		} else {
			row.Result = "成功 success"
		}
		v.Pushes = append(v.Pushes, row)
	}
	v.Messages = s.messageRowsLocked(20)
	v.Fans = s.statusFansLocked(r)
	v.Code = s.codeViewLocked(now)
	s.mu.Unlock()
	v.Calls = s.callCounts()
	s.render(w, http.StatusOK, "status", v)
}

// renderError shows a refused authorization page with HTTP status.
func (s *Sandbox) renderError(w http.ResponseWriter, status int, mobile bool, err error) {
	zh, en := pageError(err)
	s.render(w, status, "error", errorView{Mobile: mobile, ZH: zh, EN: en})
}

func (s *Sandbox) render(w http.ResponseWriter, status int, name string, data any) {
	var buf strings.Builder
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Only inline styles and same-origin images: nothing external can load.
	// (No form-action: Chrome applies it to the redirect after the form.)
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

type accountCard struct {
	Account
	Authorized bool
	Perms      []string
}

// KindLabel is used by the templates.
func (c accountCard) KindLabel() string { return c.Account.kindLabel() }

type loginView struct {
	Params         loginParams
	ComponentAppID string
	Accounts       []accountCard
	ConfirmPath    string
}

type errorView struct {
	Mobile bool
	ZH, EN string
}

type statusAccount struct {
	Account
	Authorized bool
	AuthTime   string
	HasRefresh bool
	Issues     int
}

func (a statusAccount) KindLabel() string { return a.Account.kindLabel() }

type statusPush struct {
	InfoType, Appid, Time, Result string
	OK                            bool
}

type statusMessage struct {
	AppID, OpenID, Kind, Time, Result string
	OK                                bool
}

// messageRowsLocked describes the last n message pushes, newest first.
// Caller holds s.mu.
func (s *Sandbox) messageRowsLocked(n int) []statusMessage {
	var rows []statusMessage
	start := max(0, len(s.messagePushes)-n)
	for i := len(s.messagePushes) - 1; i >= start; i-- {
		p := s.messagePushes[i]
		row := statusMessage{AppID: p.AppID, OpenID: p.OpenID, Kind: p.MsgType, Time: p.Time.Format(time.DateTime), OK: p.Err == nil}
		if p.Event != "" {
			row.Kind += " / " + p.Event
		}
		switch {
		case p.Err != nil && p.Status != 0:
			row.Result = fmt.Sprintf("失败 failed (HTTP %d)", p.Status)
		case p.Err != nil:
			row.Result = "失败 failed (no answer)"
		case p.Replied:
			row.Result = "被动回复 passive reply"
		default:
			row.Result = "无回复 no reply"
		}
		rows = append(rows, row)
	}
	return rows
}

func groupNumbers() []int {
	out := make([]int, len(releaseGroupIDs))
	for i := range out {
		out[i] = i + 1
	}
	return out
}

type statusView struct {
	ComponentAppID, PushURL, TicketInterval, Now, ComponentToken string
	LastTicket, NextTicket                                       string
	MessageURL, FanPath, FansPath, ReleasePath                   string
	Rotate                                                       bool
	ValidTickets                                                 int
	Accounts                                                     []statusAccount
	Pushes                                                       []statusPush
	Messages                                                     []statusMessage
	Fans                                                         []statusFan
	Groups                                                       []int
	Calls                                                        []nameCount
	Code                                                         codeView
}

// permSetNames names the permission sets (权限集) shown on the login page.
var permSetNames = map[int]string{
	1: "消息管理", 2: "用户管理", 3: "帐号服务", 4: "网页服务", 5: "微信小店", 6: "微信多客服", 7: "群发与通知",
	8: "卡券", 9: "扫一扫", 10: "连WIFI", 11: "素材管理", 12: "摇周边", 13: "门店", 15: "自定义菜单",
	16: "认证状态", 17: "帐号管理", 18: "开发管理与数据分析", 19: "客服消息管理", 20: "微信登录",
	21: "数据分析", 22: "城市服务", 23: "广告管理", 24: "开放平台帐号管理", 25: "开放平台帐号管理", 26: "电子发票", 41: "搜索widget",
}

func permNames(ids []int) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := permSetNames[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, "权限集 "+strconv.Itoa(id))
		}
	}
	return out
}

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"join": strings.Join,
}).Parse(pageTemplates + fanTemplates + releaseTemplates + codeTemplates + fanListTemplates + oauthTemplates))

const pageTemplates = `
{{define "style"}}<style>
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;background:#f2f2f2;color:#191919}
header{background:#07c160;color:#fff;padding:14px 24px;font-size:16px}
header small{opacity:.85;margin-left:8px}
main{max-width:720px;margin:24px auto;padding:0 16px}
.mobile main{max-width:none;margin:12px 0;padding:0 12px}
h1{font-size:20px;font-weight:600;margin:0 0 4px}
.en{color:#6b6b6b;font-size:13px}
.card{background:#fff;border-radius:8px;padding:16px;margin:12px 0;display:flex;align-items:center;gap:14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.mobile .card{flex-wrap:wrap}
.card img{width:56px;height:56px;border-radius:50%;flex:none}
.info{flex:1;min-width:0}
.name{font-weight:600;font-size:16px}
.meta{color:#6b6b6b;font-size:13px;word-break:break-all}
.badge{display:inline-block;background:#e8f8ef;color:#06ae56;border-radius:4px;padding:0 6px;font-size:12px;margin-left:6px}
button{background:#07c160;color:#fff;border:0;border-radius:6px;padding:10px 22px;font-size:15px;cursor:pointer}
button:hover{background:#06ad56}
.mobile form{width:100%}
.mobile button{width:100%;padding:12px}
button.danger{background:#fa5151;padding:6px 14px;font-size:13px}
.error{background:#fff;border-radius:8px;padding:24px;border-left:4px solid #fa5151}
table{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;margin:8px 0 24px;font-size:13px}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #eee;vertical-align:middle}
th{color:#6b6b6b;font-weight:500}
td img{width:28px;height:28px;border-radius:50%;vertical-align:middle}
.ok{color:#06ae56}.bad{color:#fa5151}
h2{font-size:16px;margin:24px 0 4px}
form.inline{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin:8px 0}
select,input[type=text],textarea{font:inherit;padding:6px 8px;border:1px solid #ddd;border-radius:6px;background:#fff}
textarea{width:100%;min-height:72px}
.panel{background:#fff;border-radius:8px;padding:16px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.06)}
pre{white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f7f7f7;padding:8px;border-radius:6px}
a{color:#576b95}
</style>{{end}}

{{define "head"}}<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.}}</title>{{template "style"}}</head>{{end}}

{{define "login"}}{{template "head" "授权 · WeChat sandbox"}}
<body{{if .Params.Mobile}} class="mobile"{{end}}>
<header>微信开放平台 · 沙箱<small>WeChat Open Platform sandbox</small></header>
<main>
<h1>授权给第三方平台</h1>
<div class="en">Authorize the third-party platform <b>{{.ComponentAppID}}</b> to manage an account on your behalf.</div>
<p>请选择要授权的帐号。<span class="en">Choose the account to authorize.</span></p>
{{range .Accounts}}
<div class="card" id="account-{{.AppID}}">
  <img src="/sandbox/avatar/{{.AppID}}.svg" alt="">
  <div class="info">
    <div class="name">{{.NickName}}{{if .Authorized}}<span class="badge">已授权 Authorized</span>{{end}}</div>
    <div class="meta">{{.KindLabel}} · {{.AppID}}</div>
    <div class="meta">将授予权限集 Permission sets: {{join .Perms "、"}}</div>
  </div>
  <form method="post" action="{{$.ConfirmPath}}">
    <input type="hidden" name="component_appid" value="{{$.Params.ComponentAppID}}">
    <input type="hidden" name="pre_auth_code" value="{{$.Params.PreAuthCode}}">
    <input type="hidden" name="redirect_uri" value="{{$.Params.RedirectURI}}">
    <input type="hidden" name="auth_type" value="{{$.Params.AuthType}}">
    <input type="hidden" name="biz_appid" value="{{$.Params.BizAppID}}">
    <input type="hidden" name="mobile" value="{{if $.Params.Mobile}}1{{end}}">
    <input type="hidden" name="authorizer_appid" value="{{.AppID}}">
    <button type="submit" id="authorize-{{.AppID}}">授权 Authorize</button>
  </form>
</div>
{{else}}
<div class="error">没有可授权的帐号。<div class="en">No account can be authorized with these parameters.</div></div>
{{end}}
<p class="en">这是本地沙箱，不会连接微信。This is a local sandbox; nothing is sent to WeChat.</p>
</main></body></html>{{end}}

{{define "error"}}{{template "head" "授权失败 · WeChat sandbox"}}
<body{{if .Mobile}} class="mobile"{{end}}>
<header>微信开放平台 · 沙箱<small>WeChat Open Platform sandbox</small></header>
<main><div class="error" id="error">
<h1>无法授权</h1>
<p>{{.ZH}}</p>
<p class="en">Authorization not possible. {{.EN}}</p>
</div></main></body></html>{{end}}

{{define "status"}}{{template "head" "WeChat sandbox"}}
<body>
<header>微信开放平台 · 沙箱<small>WeChat Open Platform sandbox</small></header>
<main>
<h1>沙箱状态 <span class="en">Sandbox status</span></h1>
<table>
<tr><th>第三方平台 Component</th><td>{{.ComponentAppID}}</td></tr>
<tr><th>推送地址 Push URL</th><td>{{if .PushURL}}{{.PushURL}}{{else}}未配置 none{{end}}</td></tr>
<tr><th>消息与事件接收 Message URL</th><td>{{if .MessageURL}}{{.MessageURL}}{{else}}未配置 none (消息推送关闭 message pushes off){{end}}</td></tr>
<tr><th>票据推送间隔 Ticket interval</th><td id="ticket-interval">{{.TicketInterval}}</td></tr>
<tr><th>上次票据推送 Last ticket push</th><td id="ticket-last">{{.LastTicket}}</td></tr>
<tr><th>下次票据推送 Next ticket push</th><td id="ticket-next">{{.NextTicket}}</td></tr>
<tr><th>有效票据 Valid tickets</th><td>{{.ValidTickets}}</td></tr>
<tr><th>令牌 Component token</th><td>{{.ComponentToken}}</td></tr>
<tr><th>刷新令牌轮换 Refresh-token rotation</th><td>{{if .Rotate}}开 on{{else}}关 off{{end}}</td></tr>
<tr><th>沙箱时间 Sandbox clock</th><td>{{.Now}}</td></tr>
</table>
<h2>帐号 <span class="en">Accounts</span></h2>
<table>
<tr><th></th><th>名称 Name</th><th>类型 Kind</th><th>AppID</th><th>状态 State</th><th>令牌刷新次数 Token refreshes</th><th></th></tr>
{{range .Accounts}}<tr id="status-{{.AppID}}">
<td><img src="/sandbox/avatar/{{.AppID}}.svg" alt=""></td><td>{{.NickName}}</td><td>{{.KindLabel}}</td><td>{{.AppID}}</td>
<td>{{if .Authorized}}<span class="ok">已授权 authorized</span> {{.AuthTime}}{{if not .HasRefresh}} <span class="bad">刷新令牌已失效 refresh token invalidated</span>{{end}}{{else}}未授权 not authorized{{end}}</td>
<td>{{.Issues}}</td>
<td>{{if .Authorized}}<form method="post" action="/sandbox/revoke?appid={{.AppID}}"><button class="danger" type="submit" id="revoke-{{.AppID}}">取消授权 Revoke</button></form>{{end}}</td>
</tr>{{end}}
</table>
<p><a href="{{.FanPath}}" id="fan-link">模拟粉丝发消息 <span class="en">Send a message as a fan</span></a></p>
<h2>微信用户 <span class="en">Fans (web OAuth)</span></h2>
<table id="status-fans">
<tr><th></th><th>昵称 Nickname</th><th>ID</th><th>关注的公众号 Follows</th></tr>
{{range .Fans}}<tr id="status-fan-{{.ID}}"><td><img src="{{.Avatar}}" alt=""></td><td>{{.NickName}}{{if .Current}}<span class="badge">当前 Current</span>{{end}}</td><td>{{.ID}}</td><td>{{.Follows}}</td></tr>
{{end}}</table>
<p><a href="{{.FansPath}}" id="fans-link">切换微信用户、关注公众号 <span class="en">Switch fan, follow or unfollow</span></a></p>
<h2>全网发布检测 <span class="en">Release check</span></h2>
<form method="post" action="{{.ReleasePath}}" class="inline">
<label>测试组 Test group <select name="group" id="release-group">{{range .Groups}}<option value="{{.}}">{{.}}</option>{{end}}</select></label>
<button type="submit" id="release-check">运行全网发布检测 Run release check</button>
</form>
<p class="en">授权测试公众号与小程序，推送测试消息，检查回复与客服消息，最后取消授权；平台不应答时可能需要一分钟。Authorizes a test official account and mini program, pushes the test messages, checks the replies and customer-service messages, then revokes; it can take a minute when the platform does not answer.</p>
{{template "code" .Code}}
<h2>最近推送 <span class="en">Last pushes</span></h2>
<table>
<tr><th>时间 Time</th><th>InfoType</th><th>AuthorizerAppid</th><th>结果 Result</th></tr>
{{range .Pushes}}<tr><td>{{.Time}}</td><td>{{.InfoType}}</td><td>{{.Appid}}</td><td class="{{if .OK}}ok{{else}}bad{{end}}">{{.Result}}</td></tr>
{{else}}<tr><td colspan="4">暂无 none yet</td></tr>{{end}}
</table>
<h2>最近消息推送 <span class="en">Last message pushes</span></h2>
<table>
<tr><th>时间 Time</th><th>AppID</th><th>MsgType / Event</th><th>OpenID</th><th>结果 Result</th></tr>
{{range .Messages}}<tr><td>{{.Time}}</td><td>{{.AppID}}</td><td>{{.Kind}}</td><td>{{.OpenID}}</td><td class="{{if .OK}}ok{{else}}bad{{end}}">{{.Result}}</td></tr>
{{else}}<tr><td colspan="5">暂无 none yet</td></tr>{{end}}
</table>
<h2>接口调用 <span class="en">API calls</span></h2>
<table>
<tr><th>接口 Endpoint</th><th>次数 Calls</th></tr>
{{range .Calls}}<tr><td>{{.Name}}</td><td>{{.Count}}</td></tr>{{else}}<tr><td colspan="2">暂无 none yet</td></tr>{{end}}
</table>
</main></body></html>{{end}}
`

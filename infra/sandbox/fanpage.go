package sandbox

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// fanPath is the fan page: a person types a message as a fan of an
// authorized account, the sandbox pushes it to MessageURL and shows the
// passive reply and the customer-service messages the fan received.
const fanPath = "/sandbox/fan"

// maxFanText bounds a text typed on the fan page (WeChat's text messages
// are short).
const maxFanText = 2048

var openIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

type fanAccount struct {
	AppID, Label string
	Selected     bool
}

type fanReceived struct {
	Time, MsgType, Text string
}

type fanView struct {
	FanPath             string
	MessagesOff         bool
	Accounts            []fanAccount
	AppID, OpenID       string
	Sent                bool   // a message was pushed just now
	Error               string // why the push failed or was refused
	NoReply             bool
	ReplyText, ReplyXML string // the passive reply: text content, or the plaintext of other types
	Received            []fanReceived
	Content             string
}

// GET /sandbox/fan?appid=&openid= shows the form; POST /sandbox/fan sends
// the text as that fan with PushMessage and shows what came back.
func (s *Sandbox) serveFan(w http.ResponseWriter, r *http.Request) {
	var form func(string) string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		form = r.URL.Query().Get
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		form = r.PostForm.Get
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v := fanView{FanPath: fanPath, MessagesOff: s.cfg.MessageURL == "", AppID: form("appid"), OpenID: form("openid")}
	accts := s.authorizedAccounts()
	if !slices.ContainsFunc(accts, func(a Account) bool { return a.AppID == v.AppID }) {
		if r.Method == http.MethodPost {
			v.Error = "该帐号未授权。The account is not authorized."
		}
		v.AppID = ""
		if len(accts) > 0 {
			v.AppID = accts[0].AppID
		}
	}
	for _, a := range accts {
		v.Accounts = append(v.Accounts, fanAccount{AppID: a.AppID, Label: a.NickName + " · " + a.kindLabel() + " · " + a.AppID, Selected: a.AppID == v.AppID})
	}
	if !openIDPattern.MatchString(v.OpenID) {
		if r.Method == http.MethodPost && v.Error == "" {
			v.Error = "openid 只能包含字母、数字、- 和 _。The openid may only hold letters, digits, - and _."
		}
		v.OpenID = newOpenID()
	}
	status := http.StatusOK
	if r.Method == http.MethodPost && v.Error == "" && !v.MessagesOff {
		v.Content = form("content")
		s.sendAsFan(r, &v, accts)
	}
	if r.Method == http.MethodPost && v.Error != "" && !v.Sent {
		status = http.StatusBadRequest
	}
	v.Received = s.fanReceived(v.AppID, v.OpenID)
	s.render(w, status, "fan", v)
}

// sendAsFan pushes v.Content as a text from v.OpenID to v.AppID and puts
// the outcome into v.
func (s *Sandbox) sendAsFan(r *http.Request, v *fanView, accts []Account) {
	switch {
	case v.AppID == "":
		v.Error = "没有已授权的帐号。No account is authorized."
		return
	case v.Content == "":
		v.Error = "请输入消息内容。Type a message first."
		return
	case len(v.Content) > maxFanText:
		v.Error = "消息太长。The message is too long."
		return
	}
	i := slices.IndexFunc(accts, func(a Account) bool { return a.AppID == v.AppID })
	// The push outlives a browser that gives up; Close still stops it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	res, err := s.PushMessage(ctx, v.AppID, TextMessage(accts[i].UserName, v.OpenID, v.Content, newMsgID(), s.now()))
	v.Sent = true
	switch {
	case err != nil:
		v.Error = err.Error()
	case res.NoReply:
		v.NoReply = true
	default:
		if f, _ := plainFields(res.Reply); f["MsgType"] == "text" {
			v.ReplyText = f["Content"]
		} else {
			v.ReplyXML = string(res.Reply)
		}
	}
	v.Content = ""
}

// authorizedAccounts lists the accounts a fan can write to right now.
func (s *Sandbox) authorizedAccounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Account
	for _, a := range s.listedAccountsLocked() {
		if s.authorizers[a.AppID].authorized {
			out = append(out, a)
		}
	}
	return out
}

// fanReceived lists the customer-service messages openid got from appid,
// newest first.
func (s *Sandbox) fanReceived(appid, openid string) []fanReceived {
	var out []fanReceived
	msgs := s.CustomMessages(appid)
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.ToUser != openid {
			continue
		}
		text := m.Text
		if m.MsgType != "text" {
			text = string(m.Body)
		}
		out = append(out, fanReceived{Time: m.Time.Format(time.DateTime), MsgType: m.MsgType, Text: text})
	}
	return out
}

const fanTemplates = `
{{define "fan"}}{{template "head" "粉丝 Fan · WeChat sandbox"}}
<body>
<header>微信开放平台 · 沙箱<small>WeChat Open Platform sandbox</small></header>
<main>
<p><a href="/sandbox/">← 沙箱状态 Sandbox status</a></p>
<h1>模拟粉丝 <span class="en">Send a message as a fan</span></h1>
{{if .MessagesOff}}
<div class="error" id="messages-off">未配置消息与事件接收URL，消息推送已关闭。<div class="en">No MessageURL is configured: message pushes are off.</div></div>
{{else if not .Accounts}}
<div class="error" id="no-accounts">没有已授权的帐号。<div class="en">No account is authorized yet; authorize one first.</div></div>
{{else}}
<form method="post" action="{{.FanPath}}" class="panel">
<p><label>帐号 Account<br><select name="appid" id="fan-appid">{{range .Accounts}}<option value="{{.AppID}}"{{if .Selected}} selected{{end}}>{{.Label}}</option>{{end}}</select></label></p>
<p><label>粉丝 openid <span class="en">Fan openid</span><br><input type="text" name="openid" id="fan-openid" value="{{.OpenID}}" size="34"></label></p>
<p><label>消息 <span class="en">Text</span><br><textarea name="content" id="fan-content" maxlength="2048">{{.Content}}</textarea></label></p>
<button type="submit" id="fan-send">发送 Send</button>
</form>
{{end}}
{{if .Error}}<div class="error" id="fan-error">{{.Error}}</div>{{end}}
{{if .Sent}}{{if not .Error}}<div class="panel" id="fan-reply">
<h2>被动回复 <span class="en">Passive reply</span></h2>
{{if .NoReply}}<p>无被动回复（空串或 success）。<span class="en">No passive reply (empty or success).</span></p>
{{else if .ReplyXML}}<pre>{{.ReplyXML}}</pre>
{{else}}<p class="ok">{{.ReplyText}}</p>{{end}}
</div>{{end}}{{end}}
{{if .AppID}}
<h2>粉丝收到的客服消息 <span class="en">Customer-service messages this fan received</span></h2>
<p><a href="{{.FanPath}}?appid={{.AppID}}&amp;openid={{.OpenID}}" id="fan-refresh">刷新 Refresh</a></p>
<table id="fan-received">
<tr><th>时间 Time</th><th>类型 Type</th><th>内容 Content</th></tr>
{{range .Received}}<tr><td>{{.Time}}</td><td>{{.MsgType}}</td><td>{{.Text}}</td></tr>
{{else}}<tr><td colspan="3">暂无 none yet</td></tr>{{end}}
</table>
{{end}}
</main></body></html>{{end}}
`

package devstack

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/wxtpp/platform/shared/tokenstore"
)

// The local-only status page: what a person running `make dev` wants to see first, the ticket and the
// component token, without showing either (only when they arrived and when they expire).
var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>本地平台状态 · Local platform status</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.4rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.ok{color:#1a7f37}.bad{color:#cf222e}small{color:#666}</style></head><body>
<h1>本地平台状态 <small>Local platform status</small></h1>
<table>
<tr><th>第三方平台 AppID · Component appid</th><td><code>{{.AppID}}</code></td></tr>
<tr><th>component_verify_ticket</th><td id="ticket">{{if .Ticket}}<span class="ok">已收到 received</span> {{.Ticket}}{{else}}<span class="bad">尚未收到 not received yet</span>{{end}}</td></tr>
<tr><th>component_access_token</th><td id="token">{{if .Token}}<span class="ok">有效 valid</span> {{.Token}}{{else}}<span class="bad">无 none</span>{{end}}</td></tr>
</table>
<p><small>Secrets and tokens are never shown. This page exists only in the local stack.</small></p>
</body></html>`))

func (s *Stack) status(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data := struct{ AppID, Ticket, Token string }{AppID: s.opts.ComponentAppID}
	if t, err := s.Store.Ticket(ctx, s.opts.ComponentAppID); err == nil {
		data.Ticket = fmt.Sprintf("CreateTime %s, stored %s", time.Unix(t.CreateTime, 0).Format(time.DateTime),
			time.UnixMilli(t.StoredAt).Format(time.DateTime))
	} else if !errors.Is(err, tokenstore.ErrNotFound) {
		http.Error(w, "status unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if c, err := s.Store.Credential(ctx, tokenstore.ComponentTokenKey(s.opts.ComponentAppID)); err == nil && c.FreshUntil(time.Now()) {
		data.Token = fmt.Sprintf("expires %s (in %s), version %d", c.Expires().Format(time.DateTime),
			time.Until(c.Expires()).Round(time.Second), c.Version)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = statusPage.Execute(w, data)
}

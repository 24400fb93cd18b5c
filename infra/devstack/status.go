package devstack

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxtpp/platform/shared/tokenstore"
)

// The local-only status page: what a person running `make dev` wants to see first, the ticket and the
// component token, without showing either (only when they arrived and when they expire).
var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{"expires": expiresIn}).Parse(`<!doctype html>
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
<h2>授权方 <small>Authorizers</small></h2>
{{if .Authorizers}}<table id="authorizers">
<tr><th>帐号 Account</th><th>类型 Kind</th><th>商户 Tenant</th><th>状态 Status</th><th>令牌 Access token</th></tr>
{{range .Authorizers}}<tr><td>{{.Info.NickName}}<br><code>{{.AppID}}</code></td><td>{{.Kind}}</td><td>{{.Tenant}}</td>
<td class="{{if eq .Status "authorized"}}ok{{else}}bad{{end}}">{{.Status}}</td><td>{{expires .ExpiresAt}}</td></tr>
{{end}}</table>{{else}}<p id="authorizers">尚无授权 none yet: <a href="/auth/start?tenant=demo">授权一个帐号 authorize one</a></p>{{end}}
<p><small>Secrets and tokens are never shown. This page exists only in the local stack.</small></p>
</body></html>`))

func (s *Stack) status(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data := struct {
		AppID, Ticket, Token string
		Authorizers          []tokenstore.Authorizer
	}{AppID: s.opts.ComponentAppID}
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
	list, err := s.authorizers(ctx)
	if err != nil {
		http.Error(w, "status unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	data.Authorizers = list
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = statusPage.Execute(w, data)
}

// authorizers lists up to 200 authorizers. A scan is fine here: the local table is small and this page exists
// only in the local stack (the platform itself never scans).
func (s *Stack) authorizers(ctx context.Context) ([]tokenstore.Authorizer, error) {
	expr, err := expression.NewBuilder().WithFilter(expression.Name("SK").Equal(expression.Value("AUTHORIZER"))).Build()
	if err != nil {
		return nil, err
	}
	var out []tokenstore.Authorizer
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
		TableName: aws.String(s.opts.Table), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	for p.HasMorePages() && len(out) < 200 {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list authorizers: %w", err)
		}
		var items []tokenstore.Authorizer
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("decode authorizers: %w", err)
		}
		out = append(out, items...)
	}
	slices.SortFunc(out, func(a, b tokenstore.Authorizer) int { return strings.Compare(a.AppID, b.AppID) })
	return out, nil
}

func expiresIn(ms int64) string {
	if ms <= time.Now().UnixMilli() {
		return "无效 none"
	}
	return "有效 valid, expires in " + time.Until(time.UnixMilli(ms)).Round(time.Second).String()
}

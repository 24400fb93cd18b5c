package devstack

import (
	"context"
	"encoding/json"
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

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/shared/refresher"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// StatusPath is the local-only status page.
const StatusPath = "/_dev/status"

// The local-only status page: what a person running `make dev` wants to see first, the ticket and the
// component token, without showing either (only when they arrived and when they expire), the last refresh
// run, and every account in words.
var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>本地平台状态 · Local platform status</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.4rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.ok{color:#1a7f37}.bad{color:#cf222e}small{color:#666}</style></head><body>
<h1>本地平台状态 <small>Local platform status</small></h1>
<p><small><a href="/">首页 Start page</a> · 时间为本地时间 times are local ({{.Zone}})</small></p>
<table>
<tr><th>第三方平台 AppID · Component appid</th><td><code>{{.AppID}}</code></td></tr>
<tr><th>component_verify_ticket</th><td id="ticket">{{if .Ticket}}<span class="ok">已收到 received</span> {{.Ticket}}{{else}}<span class="bad">尚未收到 not received yet</span>{{end}}</td></tr>
<tr><th>component_access_token</th><td id="token">{{if .Token}}<span class="ok">有效 valid</span> {{.Token}}{{else}}<span class="bad">无 none</span>{{end}}</td></tr>
<tr><th>上次刷新运行 Last refresh run</th><td id="refresh-last">{{with .Refresh}}{{.When}}<br><span class="{{if .OK}}ok{{else}}bad{{end}}">{{.Summary}}</span>{{else}}尚未运行 not run yet{{end}}</td></tr>
<tr><th>下次刷新运行 Next refresh run</th><td id="refresh-next">{{.NextRefresh}}</td></tr>
</table>
<h2>授权方 <small>Authorizers</small></h2>
{{if .Authorizers}}<table id="authorizers">
<tr><th>帐号 Account</th><th>类型 Kind</th><th>商户 Tenant</th><th>状态 Status</th><th>令牌 Access token</th><th>令牌上次刷新 Token last refreshed</th><th>取消授权时间 Revoked at</th></tr>
{{range .Authorizers}}<tr id="authorizer-{{.AppID}}"><td>{{.Name}}<br><code>{{.AppID}}</code></td><td class="kind">{{.Kind}}</td><td>{{.Tenant}}</td>
<td class="status {{if .OK}}ok{{else}}bad{{end}}">{{.Status}}{{if .Reason}}<br><small class="reason">{{.Reason}}</small>{{end}}</td>
<td class="token">{{.Token}}</td><td class="refreshed">{{.Refreshed}}</td><td class="revoked">{{.Revoked}}</td></tr>
{{end}}</table>
<p><small>令牌上次刷新：当前令牌的获取时间（授权或刷新），即其到期时间减去微信的 7200 秒有效期。
Token last refreshed: when the stored token was obtained (by the authorization or a refresh), its expiry minus
WeChat's 7200 s lifetime.</small></p>
{{else}}<p id="authorizers">尚无授权 none yet: <a href="{{.AuthLink}}">授权一个帐号 authorize one</a></p>{{end}}
<p><small>Secrets and tokens are never shown. This page exists only in the local stack.</small></p>
</body></html>`))

// statusData is what the status page shows.
type statusData struct {
	AppID, Zone, Ticket, Token string
	Refresh                    *refreshLine
	NextRefresh                string
	AuthLink                   string
	Authorizers                []authorizerRow
}

// refreshLine is the last refresh run in words.
type refreshLine struct {
	When, Summary string
	OK            bool
}

// authorizerRow is one account in words.
type authorizerRow struct {
	Name, AppID, Kind, Tenant, Status, Reason, Token, Refreshed, Revoked string
	OK                                                                   bool
}

// refreshRun is the last invocation of the refresh function (RunRefresh), for the status page.
type refreshRun struct {
	At     time.Time
	Took   time.Duration
	Report *refresher.Report // the function's run report; nil if it failed or answered something else
	Err    string
}

// recordRefresh keeps the outcome of the refresh invocation that started at.
func (s *Stack) recordRefresh(at time.Time, out []byte, err error) {
	run := &refreshRun{At: at, Took: time.Since(at)}
	var fe *localrun.FunctionError
	switch {
	case errors.As(err, &fe):
		run.Err = fe.Type + ": " + fe.Message
	case err != nil:
		run.Err = err.Error()
	default:
		var rep refresher.Report
		if jerr := json.Unmarshal(out, &rep); jerr != nil {
			run.Err = fmt.Sprintf("unexpected answer %.200q", out)
		} else {
			run.Report = &rep
		}
	}
	s.mu.Lock()
	s.lastRefresh = run
	s.mu.Unlock()
}

func (s *Stack) status(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := time.Now()
	zone, _ := now.Zone()
	data := statusData{AppID: s.opts.ComponentAppID, Zone: zone}
	if t, err := s.Store.Ticket(ctx, s.opts.ComponentAppID); err == nil {
		data.Ticket = fmt.Sprintf("CreateTime %s, 收到 stored %s", localTime(time.Unix(t.CreateTime, 0)),
			when(time.UnixMilli(t.StoredAt), now))
	} else if !errors.Is(err, tokenstore.ErrNotFound) {
		http.Error(w, "status unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if c, err := s.Store.Credential(ctx, tokenstore.ComponentTokenKey(s.opts.ComponentAppID)); err == nil && c.FreshUntil(now) {
		data.Token = fmt.Sprintf("到期 expires %s, version %d", when(c.Expires(), now), c.Version)
	}
	s.mu.Lock()
	run, next := s.lastRefresh, s.nextRefresh
	s.mu.Unlock()
	data.Refresh = refreshWords(run, now)
	data.NextRefresh = nextRefreshWords(s.opts.RefreshInterval, next, now)
	list, err := s.authorizers(ctx)
	if err != nil {
		http.Error(w, "status unavailable: "+err.Error(), http.StatusInternalServerError)
		return
	}
	data.Authorizers = authorizerRows(list, now)
	if len(list) == 0 {
		if data.AuthLink, err = s.AuthLink(DemoTenant, 7*24*time.Hour); err != nil {
			http.Error(w, "status unavailable: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = statusPage.Execute(w, data)
}

// refreshWords says when the last refresh run was and what it did (its report's counts).
func refreshWords(run *refreshRun, now time.Time) *refreshLine {
	if run == nil {
		return nil
	}
	l := &refreshLine{When: when(run.At, now)}
	rep := run.Report
	if rep == nil {
		l.Summary = "失败 failed: " + run.Err
		return l
	}
	l.OK = rep.Component == "ok" && rep.Failed == 0 && !rep.Quota
	parts := []string{
		fmt.Sprintf("到期 due %d", rep.Due),
		fmt.Sprintf("已刷新 refreshed %d", rep.Refreshed),
		fmt.Sprintf("跳过 skipped %d", rep.Skipped),
		fmt.Sprintf("失败 failed %d", rep.Failed),
		fmt.Sprintf("需重新授权 needs re-authorization %d", rep.NeedsReauth),
		fmt.Sprintf("推迟 deferred %d", rep.Deferred),
	}
	comp := "第三方平台令牌 component token " + rep.Component
	if rep.Component == "ok" {
		comp = "第三方平台令牌正常 component token ok"
	}
	parts = append(parts, comp)
	if rep.Quota {
		parts = append(parts, "调用额度用尽 WeChat quota exhausted (45009)")
	}
	l.Summary = strings.Join(parts, " · ") + fmt.Sprintf(" · 用时 took %d ms", rep.DurationMs)
	return l
}

// nextRefreshWords says when the refresh function runs next (DEV_REFRESH_INTERVAL).
func nextRefreshWords(interval time.Duration, next, now time.Time) string {
	if interval <= 0 {
		return "不定时运行 not scheduled (DEV_REFRESH_INTERVAL=0)"
	}
	every := fmt.Sprintf("每 %s 一次 every %s", shortDuration(interval), shortDuration(interval))
	if next.IsZero() {
		return every
	}
	return when(next, now) + " · " + every
}

// wechatTokenLifetime is WeChat's expires_in for authorizer access tokens (the sandbox's too): a stored
// token's ExpiresAt is the moment it was obtained plus this.
const wechatTokenLifetime = 7200 * time.Second

// authorizerRows puts the accounts in words: kind, status (with the reason to re-authorize), the token's
// state, when it was obtained (the last refresh, or the authorization) and when the account was revoked.
func authorizerRows(list []tokenstore.Authorizer, now time.Time) []authorizerRow {
	rows := make([]authorizerRow, 0, len(list))
	for _, a := range list {
		row := authorizerRow{Name: a.Info.NickName, AppID: a.AppID, Kind: kindWords(a.Kind), Tenant: a.Tenant,
			Refreshed: "—", Revoked: "—"}
		if row.Name == "" {
			row.Name = "（未知 unknown）"
		}
		if row.Tenant == "" {
			row.Tenant = "—"
		}
		switch a.Status {
		case tokenstore.StatusAuthorized:
			row.Status, row.OK = "已授权 Authorized", true
		case tokenstore.StatusRevoked:
			row.Status = "已取消授权 Revoked"
		case tokenstore.StatusNeedsReauth:
			row.Status, row.Reason = "需重新授权 Needs re-authorization", a.ReauthReason
		default:
			row.Status = a.Status
		}
		switch {
		case a.ExpiresAt == 0 && a.Status == tokenstore.StatusAuthorized:
			row.Token = "已作废 invalidated: 下次使用或刷新时更换 replaced on next use or refresh run"
		case a.ExpiresAt == 0:
			row.Token = "无 none"
		case a.ExpiresAt <= now.UnixMilli():
			row.Token = "已过期 expired " + when(time.UnixMilli(a.ExpiresAt), now)
		default:
			row.Token = "有效 valid, 到期 expires " + when(time.UnixMilli(a.ExpiresAt), now)
		}
		if a.ExpiresAt > 0 {
			row.Refreshed = when(time.UnixMilli(a.ExpiresAt).Add(-wechatTokenLifetime), now)
		}
		if a.RevokedAt > 0 {
			row.Revoked = when(time.UnixMilli(a.RevokedAt), now)
		}
		rows = append(rows, row)
	}
	return rows
}

// kindWords names an account kind in both languages.
func kindWords(kind string) string {
	switch kind {
	case tokenstore.KindMiniProgram:
		return "小程序 Mini program"
	case tokenstore.KindOfficialAccount:
		return "公众号 Official account"
	case "":
		return "未知 unknown"
	}
	return kind
}

// shortDuration writes a duration without its zero tails: 1m, 10m, 1h30m, 45s.
func shortDuration(d time.Duration) string { return sandbox.ShortDuration(d) }

// localTime is t in local time, to the second.
func localTime(t time.Time) string { return t.Local().Format(time.DateTime) }

// when is t in local time with how long ago (or how soon) it is: "2025-03-01 10:00:00 (3 分钟前 3 min ago)".
func when(t, now time.Time) string {
	if d := now.Sub(t); d >= 0 {
		return localTime(t) + " (" + ago(d) + ")"
	}
	return localTime(t) + " (" + ahead(t.Sub(now)) + ")"
}

// ago and ahead say a duration roughly, in both languages (as the sandbox's pages do).
func ago(d time.Duration) string   { return sandbox.Ago(d) }
func ahead(d time.Duration) string { return sandbox.In(d) }

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

package devstack

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/shared/authlink"
	"github.com/wxtpp/platform/shared/refresher"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// hrefs maps the id of every link of page to its href.
func hrefs(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`<a id="([^"]+)" href="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		out[m[1]] = strings.ReplaceAll(m[2], "&amp;", "&")
	}
	return out
}

func get(t *testing.T, h http.HandlerFunc, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", path, rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestIndexPageLinksWhereToGo(t *testing.T) {
	key := "index-test-link-signing-key"
	s := &Stack{URL: "http://127.0.0.1:8080", SandboxURL: "http://127.0.0.1:8081", opts: Options{LinkSigningKey: key}}
	page := get(t, s.index, "/")
	for _, want := range []string{"本地第三方平台", "Local WeChat third-party platform", "平台状态 Platform status",
		"微信沙箱 WeChat sandbox", "授权一个帐号 Authorize an account", "商户网页（示例）Merchant page (demo)"} {
		if !strings.Contains(page, want) {
			t.Errorf("start page lacks %q", want)
		}
	}
	links := hrefs(t, page)
	for id, want := range map[string]string{
		"link-status":   "http://127.0.0.1:8080/_dev/status",
		"link-sandbox":  "http://127.0.0.1:8081/sandbox/",
		"link-merchant": "http://127.0.0.1:8080/_dev/merchant",
	} {
		if links[id] != want {
			t.Errorf("%s links to %q, want %q", id, links[id], want)
		}
	}
	// The authorization link is the signed one `make dev` prints: it verifies with the stack's key, for the
	// demo tenant, for about a week.
	u, err := url.Parse(links["link-authorize"])
	if err != nil || u.Scheme+"://"+u.Host+u.Path != "http://127.0.0.1:8080/auth/start" {
		t.Fatalf("authorization link %q", links["link-authorize"])
	}
	l, err := authlink.Parse([]byte(key), u.Query(), time.Now())
	if err != nil || l.Tenant != DemoTenant || time.Until(l.Expires) < 6*24*time.Hour {
		t.Fatalf("authorization link %q: %+v, %v", links["link-authorize"], l, err)
	}

	// Without the sandbox (WECHAT_API_BASE set) the page says so instead of linking nowhere.
	s.SandboxURL = ""
	page = get(t, s.index, "/")
	if _, ok := hrefs(t, page)["link-sandbox"]; ok || !strings.Contains(page, "微信沙箱未启动 WeChat sandbox not started") {
		t.Error("start page without the sandbox links to it")
	}
}

func TestAuthorizersInWords(t *testing.T) {
	now := time.Now()
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	rows := authorizerRows([]tokenstore.Authorizer{
		{AppID: "wxa", Kind: tokenstore.KindMiniProgram, Status: tokenstore.StatusAuthorized, Tenant: "demo",
			Info: tokenstore.AccountInfo{NickName: "鲜果时光小店"}, AccessToken: "tok",
			// Obtained 3 minutes ago (WeChat's tokens live 7200 s); UpdatedAt is not a refresh (a tenant binding).
			ExpiresAt: ms(now.Add(-3*time.Minute + 7200*time.Second)), UpdatedAt: ms(now.Add(-10 * time.Second))},
		{AppID: "wxb", Kind: tokenstore.KindOfficialAccount, Status: tokenstore.StatusRevoked,
			RevokedAt: ms(now.Add(-5 * time.Minute)), UpdatedAt: ms(now.Add(-5 * time.Minute))},
		{AppID: "wxc", Kind: tokenstore.KindOfficialAccount, Status: tokenstore.StatusNeedsReauth,
			ReauthReason: "61023 invalid refresh_token"},
		{AppID: "wxd", Kind: tokenstore.KindMiniProgram, Status: tokenstore.StatusAuthorized, ExpiresAt: 0},
	}, now)
	want := []authorizerRow{
		{Name: "鲜果时光小店", AppID: "wxa", Kind: "小程序 Mini program", Tenant: "demo", Status: "已授权 Authorized", OK: true,
			Token:     "有效 valid, 到期 expires " + localTime(now.Add(-3*time.Minute+7200*time.Second)),
			Refreshed: localTime(now.Add(-3*time.Minute)) + " (3 分钟前 3 min ago)", Revoked: "—"},
		{Name: "（未知 unknown）", AppID: "wxb", Kind: "公众号 Official account", Tenant: "—", Status: "已取消授权 Revoked",
			Token: "无 none", Refreshed: "—", Revoked: localTime(now.Add(-5*time.Minute)) + " (5 分钟前 5 min ago)"},
		{AppID: "wxc", Kind: "公众号 Official account", Status: "需重新授权 Needs re-authorization", Reason: "61023 invalid refresh_token",
			Token: "无 none", Refreshed: "—", Revoked: "—"},
		{AppID: "wxd", Kind: "小程序 Mini program", Status: "已授权 Authorized", OK: true,
			Token: "已作废 invalidated", Refreshed: "—", Revoked: "—"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		if (w.Name != "" && r.Name != w.Name) || r.Kind != w.Kind || (w.Tenant != "" && r.Tenant != w.Tenant) ||
			r.Status != w.Status || r.Reason != w.Reason || r.OK != w.OK || r.Refreshed != w.Refreshed ||
			r.Revoked != w.Revoked || !strings.HasPrefix(r.Token, w.Token) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, r, w)
		}
	}
}

func TestRefreshRunInWords(t *testing.T) {
	now := time.Now()
	s := &Stack{}
	s.recordRefresh(now.Add(-2*time.Minute), []byte(`{"due":3,"refreshed":2,"skipped":1,"failed":0,"needs_reauth":0,"deferred":0,"quota":false,"component":"ok","duration_ms":41}`), nil)
	l := refreshWords(s.lastRefresh, now)
	if !l.OK || !strings.HasPrefix(l.When, localTime(now.Add(-2*time.Minute))+" (2 分钟前 2 min ago)") ||
		!strings.Contains(l.Summary, "到期 due 3 · 已刷新 refreshed 2 · 跳过 skipped 1 · 失败 failed 0") ||
		!strings.Contains(l.Summary, "第三方平台令牌正常 component token ok") || !strings.Contains(l.Summary, "用时 took 41 ms") {
		t.Errorf("a good run: %+v", l)
	}
	s.recordRefresh(now, []byte(`{"due":1,"failed":1,"component":"ok"}`), nil)
	if l := refreshWords(s.lastRefresh, now); l.OK || !strings.Contains(l.Summary, "失败 failed 1") {
		t.Errorf("a run with a failure: %+v", l)
	}
	s.recordRefresh(now, nil, &localrun.FunctionError{Function: "refresh", Type: "errorString", Message: "component token: no ticket"})
	if l := refreshWords(s.lastRefresh, now); l.OK || l.Summary != "失败 failed: errorString: component token: no ticket" {
		t.Errorf("a failed run: %+v", l)
	}
	s.recordRefresh(now, nil, errors.New("localrun: closed"))
	if l := refreshWords(s.lastRefresh, now); l.OK || !strings.Contains(l.Summary, "localrun: closed") {
		t.Errorf("an invocation that failed: %+v", l)
	}
	if refreshWords(nil, now) != nil {
		t.Error("words for a run that did not happen")
	}
	if got := nextRefreshWords(time.Minute, now.Add(40*time.Second), now); got != localTime(now.Add(40*time.Second))+" (40 秒后 in 40 s) · 每 1m 一次 every 1m" {
		t.Errorf("next run: %q", got)
	}
	if got := nextRefreshWords(0, time.Time{}, now); !strings.Contains(got, "DEV_REFRESH_INTERVAL=0") {
		t.Errorf("no schedule: %q", got)
	}
}

func TestStatusPageTemplateShowsTheWords(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	err := statusPage.Execute(&b, statusData{AppID: "wxcomponent", Zone: "CST",
		Refresh:     refreshWords(&refreshRun{At: now, Report: &refresher.Report{Due: 1, Refreshed: 1, Component: "ok"}}, now),
		NextRefresh: "soon",
		Authorizers: authorizerRows([]tokenstore.Authorizer{{AppID: "wxc", Kind: tokenstore.KindOfficialAccount,
			Status: tokenstore.StatusNeedsReauth, ReauthReason: "61023 invalid refresh_token"}}, now)})
	if err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`id="refresh-last"`, "已刷新 refreshed 1", "公众号 Official account",
		"需重新授权 Needs re-authorization", "61023 invalid refresh_token", "令牌上次刷新 Token last refreshed", "取消授权时间 Revoked at"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	for _, raw := range []string{">needs_reauth<", ">officialaccount<"} {
		if strings.Contains(page, raw) {
			t.Errorf("status page shows the raw value %q", raw)
		}
	}
}

func TestDurationsInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		40 * time.Second:               "40 秒前 40 s ago",
		3*time.Minute + 20*time.Second: "3 分钟前 3 min ago",
		time.Hour + 59*time.Minute:     "1 小时 59 分钟前 1 h 59 min ago",
		2 * time.Hour:                  "2 小时前 2 h ago",
		72*time.Hour + 5*time.Minute:   "3 天前 3 days ago",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%s) = %q, want %q", d, got, want)
		}
	}
	if got := ahead(90 * time.Second); got != "1 分钟后 in 1 min" {
		t.Errorf("ahead(90s) = %q", got)
	}
}

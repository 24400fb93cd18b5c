package sandbox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReleaseTestGroupsExistButAreHidden(t *testing.T) {
	groups := ReleaseTestGroups()
	if len(groups) != 5 {
		t.Fatalf("%d groups", len(groups))
	}
	g2 := groups[1]
	if g2.OfficialAccount.AppID != "wx9252c5e0bb1836fc" || g2.OfficialAccount.UserName != "gh_c0f28a78b318" ||
		g2.MiniProgram.AppID != "wxc39235c15087f6f3" || g2.MiniProgram.UserName != "gh_905ae9d01059" ||
		g2.OfficialAccount.NickName != "全网发布测试公众号 2" || !g2.MiniProgram.IsMiniProgram() ||
		!slices.Equal(g2.OfficialAccount.FuncInfo, []int{1, 2, 3, 4, 7, 11, 15, 24}) ||
		!slices.Equal(g2.MiniProgram.FuncInfo, []int{17, 18, 19, 20, 21, 25}) {
		t.Errorf("group 2: %+v", g2)
	}
	var all []Account
	for _, g := range groups {
		all = append(all, g.OfficialAccount, g.MiniProgram)
	}
	if err := validateAccounts(all); err != nil {
		t.Errorf("test accounts do not validate: %v", err)
	}

	e := newEnv(t)
	for _, a := range e.sb.Accounts() {
		if isReleaseTestAccount(a.AppID) {
			t.Errorf("Accounts lists %s", a.AppID)
		}
	}
	ctok := e.componentToken(t)
	login := url.Values{"component_appid": {testComponent}, "redirect_uri": {"https://platform.example/cb"}}
	login.Set("pre_auth_code", e.preAuthCode(t, ctok))
	if _, page := e.page(t, "/cgi-bin/componentloginpage", login); strings.Contains(page, "全网发布") {
		t.Error("the login page lists a test account")
	}
	login.Set("pre_auth_code", e.preAuthCode(t, ctok))
	login.Set("biz_appid", g2.OfficialAccount.AppID)
	if status, _ := e.page(t, "/cgi-bin/componentloginpage", login); status != http.StatusBadRequest {
		t.Errorf("biz_appid of a test account: HTTP %d", status)
	}

	cfg := testConfig(nil, newClock(), io.Discard)
	cfg.Accounts = append(DefaultAccounts(), g2.MiniProgram)
	if _, err := New(cfg); err == nil {
		t.Error("New accepted a test account in Config.Accounts")
	}
}

// releaseEnv is a sandbox whose PushURL and MessageURL are a platform
// behaving as b says.
func releaseEnv(t *testing.T, b releaseBehaviour) (*env, *platform) {
	t.Helper()
	e, p := newPlatformEnv(t, true)
	p.set(p.releaseAnswers(b))
	return e, p
}

func TestRunReleaseCheckPasses(t *testing.T) {
	t.Parallel()
	e, p := releaseEnv(t, releaseBehaviour{})
	report, err := e.sb.RunReleaseCheck(context.Background(), 3, ReleaseCheckOptions{Deliveries: 3})
	if err != nil {
		t.Fatalf("RunReleaseCheck: %v", err)
	}
	if !report.Passed() || report.Group != 3 || len(report.Steps) != 9 {
		t.Fatalf("report %+v", report)
	}
	if errs := p.errors(); len(errs) > 0 {
		t.Fatalf("platform: %v", errs)
	}
	g := ReleaseTestGroups()[2]
	oa, mp := g.OfficialAccount, g.MiniProgram

	// The test accounts authorized themselves and were revoked at the end.
	if e.sb.IsAuthorized(oa.AppID) || e.sb.IsAuthorized(mp.AppID) {
		t.Error("test accounts still authorized")
	}
	var infos []string
	for _, push := range e.sb.Pushes() {
		infos = append(infos, push.InfoType+" "+push.AuthorizerAppid)
	}
	want := []string{InfoTicket + " ", InfoAuthorized + " " + oa.AppID, InfoAuthorized + " " + mp.AppID,
		InfoUnauthorized + " " + oa.AppID, InfoUnauthorized + " " + mp.AppID}
	if !slices.Equal(infos, want) {
		t.Errorf("pushes %v, want %v", infos, want)
	}

	// Every message was delivered three times; each fan got one message.
	deliveries := p.received()
	if len(deliveries) != 12 {
		t.Errorf("%d message deliveries, want 4 messages × 3", len(deliveries))
	}
	for _, appid := range []string{oa.AppID, mp.AppID} {
		msgs := e.sb.CustomMessages(appid)
		if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "queryauthcode@@@") || !strings.HasSuffix(msgs[0].Text, "_from_api") {
			t.Errorf("%s customer-service messages %+v", appid, msgs)
		}
	}
	for _, st := range report.Steps {
		if strings.Contains(st.Detail, "queryauthcode@@@") {
			t.Errorf("step %q shows a code: %s", st.Name, st.Detail)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "queryauthcode@@@") || !strings.Contains(logs, "release check finished") {
		t.Error("the logs show a code or lack the run")
	}
	// The authorizer APIs worked for the test accounts (the platform calls
	// api_query_auth, api_get_authorizer_info and api_authorizer_token).
	if e.sb.Served("api_get_authorizer_info") != 2 || e.sb.Served("api_authorizer_token") != 2 {
		t.Errorf("served info %d, token %d", e.sb.Served("api_get_authorizer_info"), e.sb.Served("api_authorizer_token"))
	}

	// A second run works the same (fresh codes and fans).
	if report, err := e.sb.RunReleaseCheck(context.Background(), 3, ReleaseCheckOptions{}); err != nil || !report.Passed() {
		t.Errorf("second run: %+v, %v", report, err)
	}
}

func TestRunReleaseCheckFailures(t *testing.T) {
	cases := map[string]struct {
		b          releaseBehaviour
		deliveries int
		wait       time.Duration
		failing    []int  // indexes of the failing steps
		says       string // in the first failing step's detail
	}{
		"wrong passive text": {b: releaseBehaviour{textReply: "hello"}, failing: []int{3}, says: `reply Content "hello"`},
		"swapped names":      {b: releaseBehaviour{swapNames: true}, failing: []int{3, 5}, says: "ToUserName"},
		"no event reply":     {b: releaseBehaviour{eventAnswer: "success"}, failing: []int{5}, says: "no passive reply"},
		"bad event reply":    {b: releaseBehaviour{eventAnswer: "LOCATIONfrom_callback"}, failing: []int{5}, says: "not an <xml> passive reply"},
		"no customer-service message": {b: releaseBehaviour{noCustom: true}, wait: 100 * time.Millisecond,
			failing: []int{4, 6}, says: "no customer-service text $query_auth_code$_from_api reached the fan within 100ms"},
		"retries not de-duplicated": {b: releaseBehaviour{noDedup: true}, deliveries: 2, failing: []int{4, 6}, says: "sent 2 times"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, p := releaseEnv(t, c.b)
			report, err := e.sb.RunReleaseCheck(context.Background(), 1, ReleaseCheckOptions{Deliveries: c.deliveries, CustomMessageWait: c.wait})
			if err != nil {
				t.Fatalf("RunReleaseCheck: %v", err)
			}
			if errs := p.errors(); len(errs) > 0 {
				t.Fatalf("platform: %v", errs)
			}
			if report.Passed() {
				t.Fatalf("passed: %+v", report)
			}
			var failing []int
			for i, st := range report.Steps {
				if !st.OK {
					failing = append(failing, i)
				}
			}
			if !slices.Equal(failing, c.failing) || !strings.Contains(report.Steps[c.failing[0]].Detail, c.says) {
				t.Fatalf("failing steps %v, want %v; steps %+v", failing, c.failing, report.Steps)
			}
			if e.sb.IsAuthorized(ReleaseTestGroups()[0].OfficialAccount.AppID) {
				t.Error("the test account stays authorized after a failed run")
			}
		})
	}
}

func TestRunReleaseCheckRecordsFailedAuthorizationPushes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MessageURL = "http://127.0.0.1:1/wechat/$APPID$/callback" })
	e.rc.setAnswer(http.StatusOK, "fail")
	report, err := e.sb.RunReleaseCheck(context.Background(), 5, ReleaseCheckOptions{CustomMessageWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if report.Passed() || len(report.Steps) != 9 {
		t.Fatalf("report %+v", report)
	}
	for _, st := range report.Steps {
		if st.OK {
			t.Errorf("step %q passed", st.Name)
		}
	}
	if !strings.Contains(report.Steps[0].Detail, `"fail"`) || !strings.Contains(report.Steps[3].Detail, "posting") {
		t.Errorf("details %+v", report.Steps)
	}
}

func TestRunReleaseCheckRefusals(t *testing.T) {
	e, _ := newPlatformEnv(t, true)
	for _, g := range []int{0, 6} {
		if _, err := e.sb.RunReleaseCheck(context.Background(), g, ReleaseCheckOptions{}); err == nil {
			t.Errorf("group %d accepted", g)
		}
	}
	noMsg := newEnv(t)
	if _, err := noMsg.sb.RunReleaseCheck(context.Background(), 1, ReleaseCheckOptions{}); !errors.Is(err, ErrNoMessageURL) {
		t.Errorf("without MessageURL: %v", err)
	}
	noPush := newEnv(t, func(c *Config) { c.PushURL, c.MessageURL = "", "http://127.0.0.1:1/m" })
	if _, err := noPush.sb.RunReleaseCheck(context.Background(), 1, ReleaseCheckOptions{}); !errors.Is(err, ErrNoPushURL) {
		t.Errorf("without PushURL: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	report, err := e.sb.RunReleaseCheck(ctx, 1, ReleaseCheckOptions{})
	if !errors.Is(err, context.Canceled) || report.Passed() {
		t.Errorf("cancelled: %+v, %v", report, err)
	}
}

func TestReleaseCheckPage(t *testing.T) {
	t.Parallel()
	e, _ := releaseEnv(t, releaseBehaviour{textReply: "<script>alert(1)</script>"})
	_, status := e.page(t, "/sandbox/", nil)
	if !containsAll(status, `action="/sandbox/release-check"`, `id="release-check"`, `<option value="5">5</option>`, `href="/sandbox/fan"`) {
		t.Fatal("status page lacks the release form or the fan link")
	}
	resp, err := http.PostForm(e.base+releaseCheckPath, url.Values{"group": {"2"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK || !containsAll(page, "测试组 group 2", "✗ 未通过", "验证票据", "✓", "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, page)
	}
	if strings.Contains(page, "<script>") {
		t.Error("the report is not escaped")
	}
	// The run is on the status page: its pushes and message pushes.
	if _, status := e.page(t, "/sandbox/", nil); !containsAll(status, "wx9252c5e0bb1836fc", "event / LOCATION", "无回复 no reply", "被动回复 passive reply") {
		t.Error("status page does not show the run")
	}

	resp, err = http.PostForm(e.base+releaseCheckPath, url.Values{"group": {"9"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("group 9: HTTP %d", resp.StatusCode)
	}
}

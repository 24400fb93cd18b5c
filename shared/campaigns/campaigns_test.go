package campaigns_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/campaigns"
)

// fast is the timing for tests: waits in milliseconds instead of minutes.
var fast = campaigns.Timing{Lease: 20 * time.Second, Stall: 2 * time.Second, AuditCheck: 2 * time.Second,
	RetryBase: 100 * time.Millisecond, ScanWait: 300 * time.Millisecond, BusyWait: 500 * time.Millisecond,
	QuotaWait: 500 * time.Millisecond, QuotaTTL: time.Minute}

// The campaign of the issue: 200 mini programs, 10% of audits rejected, 5% of every WeChat call answered -1,
// some audit events never pushed, and every SQS message handled twice at once. It ends with every app
// released or failed with its reason, no app committed, submitted or released twice, and nothing in the DLQ.
func TestCampaignOf200AppsUnderFaultsReleasesEachOnce(t *testing.T) {
	e := newEnv(t, options{apps: 200, timing: fast, tweak: func(c *sandbox.Config) {
		c.AuditRejectRate, c.AuditEventLossRate = 0.10, 0.03
	}})
	tpl := e.wx.AddTemplate("1.2.0", "spring menu")
	e.wx.SetFault("*", sandbox.Fault{BusyRate: 0.05})
	stop := e.run(t, 4, true, 300*time.Millisecond)
	defer stop()
	e.start(t, e.campaign("spring-200", tpl, nil))

	apps := e.waitApps(t, "spring-200", 3*time.Minute, "every app released or failed", func(a campaigns.App) bool {
		return a.State == campaigns.StateReleased || a.State == campaigns.StateFailed
	})
	stop()
	released, failed := 0, 0
	for _, a := range apps {
		st := e.wx.CodeStats(a.AppID)
		if st.Commits != 1 || st.Submits != 1 {
			t.Errorf("%s: %d commits and %d submissions, want 1 each (%+v)", a.AppID, st.Commits, st.Submits, a)
		}
		switch a.State {
		case campaigns.StateReleased:
			released++
			if st.Releases != 1 || st.ReleasedVersion != "1.2.0" {
				t.Errorf("%s: released with %d release calls, live version %q", a.AppID, st.Releases, st.ReleasedVersion)
			}
		case campaigns.StateFailed:
			failed++
			if !strings.HasPrefix(a.ErrMsg, "audit rejected: ") || st.AuditStatus != "rejected" || st.Releases != 0 {
				t.Errorf("%s failed with %q (sandbox: audit %s, %d releases)", a.AppID, a.ErrMsg, st.AuditStatus, st.Releases)
			}
		}
	}
	if released == 0 || failed == 0 || released+failed != 200 {
		t.Fatalf("%d released, %d failed of 200", released, failed)
	}
	if dead := e.dlq(t); len(dead) != 0 {
		t.Fatalf("dead letters: %v", dead)
	}
	// ext_json reached WeChat with the placeholders filled in.
	var ext map[string]any
	if err := json.Unmarshal([]byte(e.wx.CodeStats(apps[0].AppID).ExtJSON), &ext); err != nil || ext["extAppid"] != apps[0].AppID {
		t.Fatalf("ext_json as committed: %v (%v)", ext, err)
	}
	if inner, _ := ext["ext"].(map[string]any); inner["shop"] != "shop-1" || inner["n"] != 3.0 {
		t.Fatalf("ext_json as committed: %v", ext)
	}
	// The sweeper's counts agree with the apps, and it finds the campaign finished.
	var c campaigns.Campaign
	testenv.Eventually(t, 10*time.Second, "the campaign counted and finished", func() bool {
		if _, err := e.runner.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		var err error
		c, err = e.runner.Store.Campaign(context.Background(), "spring-200")
		return err == nil && c.State == campaigns.CampaignFinished
	})
	if c.Counts[campaigns.StateReleased] != released || c.Counts[campaigns.StateFailed] != failed {
		t.Fatalf("campaign counts %v; apps: %s", c.Counts, states(apps))
	}
	t.Logf("%d released, %d rejected; %d SQS receives", released, failed, e.received.Load())
}

// appsOf is a campaign over some of the env's apps.
func appsOf(ids ...string) map[string]any { return map[string]any{"appids": ids} }

func (e *env) app(t testing.TB, id, appid string) campaigns.App {
	t.Helper()
	a, err := e.runner.Store.App(context.Background(), id, appid)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) waitApp(t testing.TB, id, appid, what string, done func(campaigns.App) bool) campaigns.App {
	t.Helper()
	var a campaigns.App
	testenv.Eventually(t, 30*time.Second, appid+" "+what, func() bool {
		var err error
		a, err = e.runner.Store.App(context.Background(), id, appid)
		return err == nil && done(a)
	})
	return a
}

func inState(s string) func(campaigns.App) bool {
	return func(a campaigns.App) bool { return a.State == s }
}

// A malformed campaign goes to the DLQ with its reason, is recorded as rejected where `campaign status` shows
// it, and commits nothing.
func TestInvalidCampaignIsRejectedWithItsReasonAndCommitsNothing(t *testing.T) {
	e := newEnv(t, options{apps: 2, timing: fast})
	stop := e.run(t, 1, false, 0)
	defer stop()
	job := e.campaign("bad-1", 1, map[string]any{"release": map[string]any{"mode": "gray"}}) // no gray_percentage
	e.start(t, job)
	var c campaigns.Campaign
	testenv.Eventually(t, 10*time.Second, "the rejected campaign recorded", func() bool {
		var err error
		c, err = e.runner.Store.Campaign(context.Background(), "bad-1")
		return err == nil
	})
	if c.State != campaigns.CampaignRejected || !strings.Contains(c.Reason, "gray_percentage") {
		t.Fatalf("campaign %+v", c)
	}
	var dead []string
	testenv.Eventually(t, 10*time.Second, "the dead letter", func() bool { dead = append(dead, e.dlq(t)...); return len(dead) > 0 })
	if len(dead) != 1 || !strings.Contains(dead[0], "gray_percentage") {
		t.Fatalf("dead letters %v", dead)
	}
	for _, appid := range e.apps {
		if st := e.wx.CodeStats(appid); st.Commits != 0 {
			t.Fatalf("%s committed %d times", appid, st.Commits)
		}
	}
	if apps, _ := e.runner.Store.Apps(context.Background(), "bad-1"); len(apps) != 0 {
		t.Fatalf("a rejected campaign has %d apps", len(apps))
	}
}

// The same campaign sent twice is one campaign; another campaign under its id goes to the DLQ; a target that
// is not an authorized mini program fails with that reason instead of vanishing.
func TestCampaignIDsAreOnceAndUnknownTargetsFailVisibly(t *testing.T) {
	e := newEnv(t, options{apps: 2, timing: fast, tweak: func(c *sandbox.Config) { c.AuditDelay = sandbox.AuditImmediate }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	unknown := "wx00000000000000ff"
	job := e.campaign("once-1", tpl, map[string]any{"targets": appsOf(e.apps[0], unknown)})
	e.start(t, job)
	e.start(t, job)
	stop := e.run(t, 2, false, 0)
	defer stop()
	e.waitApp(t, "once-1", e.apps[0], "released", inState(campaigns.StateReleased))
	u := e.waitApp(t, "once-1", unknown, "failed", inState(campaigns.StateFailed))
	if !strings.Contains(u.ErrMsg, "not an authorized") {
		t.Fatalf("unknown target: %+v", u)
	}
	if st := e.wx.CodeStats(e.apps[0]); st.Commits != 1 || st.Submits != 1 || st.Releases != 1 {
		t.Fatalf("campaign sent twice: %+v", st)
	}
	other := e.campaign("once-1", tpl, map[string]any{"user_version": "9.9.9"})
	e.start(t, other)
	var dead []string
	testenv.Eventually(t, 10*time.Second, "the other campaign's dead letter", func() bool { dead = append(dead, e.dlq(t)...); return len(dead) > 0 })
	if !strings.Contains(dead[0], "taken by another campaign") {
		t.Fatalf("dead letters %v", dead)
	}
	if c, _ := e.runner.Store.Campaign(context.Background(), "once-1"); c.Total != 2 {
		t.Fatalf("the first campaign changed: %+v", c)
	}
}

// When WeChat acted but its answer was lost (commit, submit_audit, release), the next run asks WeChat what
// happened instead of doing it again.
func TestLostAnswersAreCheckedNotRepeated(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast, apiTimout: 400 * time.Millisecond,
		tweak: func(c *sandbox.Config) { c.AuditDelay = sandbox.AuditImmediate }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	held := make(chan struct{})
	defer close(held)
	for _, ep := range []string{"commit", "submit_audit", "release"} {
		e.wx.SetFault(ep, sandbox.Fault{HoldAnswer: held})
	}
	// Each endpoint loses its first answer only.
	done := make(chan struct{})
	go func() {
		defer close(done)
		cleared := map[string]bool{}
		for len(cleared) < 3 {
			for _, ep := range []string{"commit", "submit_audit", "release"} {
				if !cleared[ep] && e.wx.Served(ep) > 0 {
					e.wx.SetFault(ep, sandbox.Fault{})
					cleared[ep] = true
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	stop := e.run(t, 1, false, 500*time.Millisecond)
	defer stop()
	e.start(t, e.campaign("lost-1", tpl, nil))
	e.waitApp(t, "lost-1", e.apps[0], "released", inState(campaigns.StateReleased))
	<-done
	st := e.wx.CodeStats(e.apps[0])
	if st.Commits != 1 || st.Submits != 1 || st.Releases != 1 {
		t.Fatalf("after lost answers: %+v, want one commit, one submission, one release", st)
	}
	if e.wx.Calls("getversioninfo") < 2 || e.wx.Calls("get_latest_auditstatus") < 1 {
		t.Fatalf("the lost answers were not checked: getversioninfo %d, get_latest_auditstatus %d",
			e.wx.Calls("getversioninfo"), e.wx.Calls("get_latest_auditstatus"))
	}
}

// The provider's audit quota used up (85085) pauses every app's submission without asking WeChat again and
// again; the apps wait with the reason shown.
func TestUsedUpAuditQuotaPausesSubmissions(t *testing.T) {
	e := newEnv(t, options{apps: 5, timing: fast, tweak: func(c *sandbox.Config) { c.AuditQuota = 2; c.AuditDelay = time.Hour }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	stop := e.run(t, 2, false, 300*time.Millisecond)
	defer stop()
	e.start(t, e.campaign("quota-1", tpl, nil))
	apps := e.waitApps(t, "quota-1", 30*time.Second, "two submitted, three paused", func(a campaigns.App) bool {
		return a.State == campaigns.StateAuditing || a.State == campaigns.StateSubmitting && strings.Contains(a.Note, "85085")
	})
	if n := campaigns.Count(apps)[campaigns.StateAuditing]; n != 2 {
		t.Fatalf("%d auditing, want the quota's 2 (%s)", n, states(apps))
	}
	submits := e.wx.Calls("submit_audit")
	time.Sleep(2 * time.Second) // several QuotaWait periods
	if more := e.wx.Calls("submit_audit") - submits; more != 0 {
		t.Fatalf("%d more submit_audit calls while the quota is used up", more)
	}
	if q := e.wx.Calls("queryquota"); q > 2 {
		t.Fatalf("queryquota called %d times", q)
	}
}

// An audit already running (85009): "fail" fails the app with 85009; "undo" withdraws it and submits.
func TestAuditAlreadyRunningFollowsThePolicy(t *testing.T) {
	e := newEnv(t, options{apps: 2, timing: fast, tweak: func(c *sandbox.Config) { c.AuditDelay = time.Hour }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	for _, appid := range e.apps { // the merchant's own audit is running
		e.merchantSubmits(t, appid, tpl, false)
	}
	stop := e.run(t, 1, false, 0)
	defer stop()
	e.start(t, e.campaign("busy-fail", tpl, map[string]any{"targets": appsOf(e.apps[0]), "audit": map[string]any{"on_pending": "fail"}}))
	e.start(t, e.campaign("busy-undo", tpl, map[string]any{"targets": appsOf(e.apps[1]), "audit": map[string]any{"on_pending": "undo"}}))
	f := e.waitApp(t, "busy-fail", e.apps[0], "failed", inState(campaigns.StateFailed))
	if f.ErrCode != 85009 {
		t.Fatalf("on_pending fail: %+v", f)
	}
	e.waitApp(t, "busy-undo", e.apps[1], "auditing", inState(campaigns.StateAuditing))
	if st := e.wx.CodeStats(e.apps[1]); st.Undos != 1 || st.Submits != 2 {
		t.Fatalf("on_pending undo: %+v", st)
	}
}

// Manual mode stops at approved and gray mode at the gray release until the operator's campaign_release. A
// mini program with no live version cannot be gray-released (85079): it is released in full.
func TestManualAndGrayReleasesWaitForTheOperator(t *testing.T) {
	e := newEnv(t, options{apps: 5, timing: fast, tweak: func(c *sandbox.Config) { c.AuditDelay = sandbox.AuditImmediate }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	for _, appid := range e.apps[2:4] { // live versions to gray-release from
		e.merchantSubmits(t, appid, tpl, true)
	}
	stop := e.run(t, 2, false, 0)
	defer stop()
	fresh := e.apps[4]
	e.start(t, e.campaign("gray-fresh", tpl, map[string]any{"targets": appsOf(fresh), "release": map[string]any{"mode": "gray", "gray_percentage": 10}}))
	e.start(t, e.campaign("manual-1", tpl, map[string]any{"targets": appsOf(e.apps[0], e.apps[1]), "release": map[string]any{"mode": "manual"}}))
	e.start(t, e.campaign("gray-1", tpl, map[string]any{"targets": appsOf(e.apps[2], e.apps[3]),
		"release": map[string]any{"mode": "gray", "gray_percentage": 10}}))
	for _, appid := range e.apps[:2] {
		e.waitApp(t, "manual-1", appid, "approved", inState(campaigns.StateApproved))
	}
	for _, appid := range e.apps[2:4] {
		e.waitApp(t, "gray-1", appid, "gray", inState(campaigns.StateGray))
		if st := e.wx.CodeStats(appid); st.GrayReleases != 1 || st.Releases != 1 || st.ReleasedVersion != "0.9.0" {
			t.Fatalf("gray: %+v", st)
		}
	}
	e.waitApp(t, "gray-fresh", fresh, "released in full", inState(campaigns.StateReleased))
	if st := e.wx.CodeStats(fresh); st.GrayReleases != 0 || st.Releases != 1 {
		t.Fatalf("gray without a live version: %+v", st)
	}
	time.Sleep(300 * time.Millisecond)
	for _, appid := range e.apps[:2] {
		if st := e.wx.CodeStats(appid); st.Releases != 0 || e.app(t, "manual-1", appid).State != campaigns.StateApproved {
			t.Fatalf("manual mode released without the operator: %+v", st)
		}
	}
	e.send(t, "campaign_release", "manual-1")
	e.send(t, "campaign_release", "gray-1")
	for i, appid := range e.apps[:4] {
		id, releases := "manual-1", 1
		if i >= 2 {
			id, releases = "gray-1", 2
		}
		e.waitApp(t, id, appid, "released", inState(campaigns.StateReleased))
		if st := e.wx.CodeStats(appid); st.Releases != releases || st.ReleasedVersion != "1.2.0" {
			t.Fatalf("%s after campaign_release: %+v", appid, st)
		}
	}
}

// campaign_retry submits a rejected app again without a new commit.
func TestRetryResubmitsRejectedAppsWithoutCommittingAgain(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast, tweak: func(c *sandbox.Config) { c.AuditDelay = time.Hour }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	stop := e.run(t, 1, false, 0)
	defer stop()
	appid := e.apps[0]
	e.start(t, e.campaign("retry-1", tpl, nil))
	e.waitApp(t, "retry-1", appid, "auditing", inState(campaigns.StateAuditing))
	if err := e.wx.FinishAudit(appid, false, "1:类目不符<br>"); err != nil {
		t.Fatal(err)
	}
	a := e.waitApp(t, "retry-1", appid, "failed", inState(campaigns.StateFailed))
	if a.ErrMsg != "audit rejected: 1:类目不符<br>" {
		t.Fatalf("rejected app %+v", a)
	}
	e.send(t, "campaign_retry", "retry-1")
	e.waitApp(t, "retry-1", appid, "auditing again", func(a campaigns.App) bool { return a.State == campaigns.StateAuditing && a.ErrMsg == "" })
	if err := e.wx.FinishAudit(appid, true, ""); err != nil {
		t.Fatal(err)
	}
	e.waitApp(t, "retry-1", appid, "released", inState(campaigns.StateReleased))
	if st := e.wx.CodeStats(appid); st.Commits != 1 || st.Submits != 2 || st.Releases != 1 {
		t.Fatalf("after the retry: %+v", st)
	}
}

// An audit whose event never comes is asked for by the sweeper.
func TestLostAuditEventsAreFoundByTheSweeper(t *testing.T) {
	e := newEnv(t, options{apps: 2, timing: fast, tweak: func(c *sandbox.Config) { c.AuditEventLossRate = 1 }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	stop := e.run(t, 1, false, 300*time.Millisecond)
	defer stop()
	e.start(t, e.campaign("lost-events", tpl, nil))
	e.waitApps(t, "lost-events", 30*time.Second, "released", inState(campaigns.StateReleased))
	if e.wx.Calls("get_auditstatus") < 2 {
		t.Fatalf("get_auditstatus called %d times", e.wx.Calls("get_auditstatus"))
	}
	c, err := e.runner.Store.Campaign(context.Background(), "lost-events")
	testenv.Eventually(t, 10*time.Second, "the campaign finished", func() bool {
		c, err = e.runner.Store.Campaign(context.Background(), "lost-events")
		return err == nil && c.State == campaigns.CampaignFinished
	})
	if c.Counts[campaigns.StateReleased] != 2 {
		t.Fatalf("finished campaign %+v", c)
	}
}

// A wait (61039 here) disarms the app, and the next run arms it again before it submits: a submission whose
// answer is then lost is checked with WeChat, not made twice.
func TestAfterAWaitALostSubmissionIsCheckedNotRepeated(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast, apiTimout: 400 * time.Millisecond,
		tweak: func(c *sandbox.Config) {
			c.AuditDelay = sandbox.AuditImmediate
			c.PrivacyScanDuration = 700 * time.Millisecond
		}})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	appid := e.apps[0]
	held := make(chan struct{})
	defer close(held)
	go func() { // once the app waits for the scan, the next submission's answer is lost
		for {
			if a, err := e.runner.Store.App(context.Background(), "scan-1", appid); err == nil && strings.Contains(a.Note, "61039") {
				e.wx.SetFault("submit_audit", sandbox.Fault{HoldAnswer: held})
				for e.wx.CodeStats(appid).Submits == 0 { // answers until the submission itself are lost
					time.Sleep(5 * time.Millisecond)
				}
				e.wx.SetFault("submit_audit", sandbox.Fault{})
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	stop := e.run(t, 1, false, 500*time.Millisecond)
	defer stop()
	e.start(t, e.campaign("scan-1", tpl, nil))
	e.waitApp(t, "scan-1", appid, "released", inState(campaigns.StateReleased))
	if st := e.wx.CodeStats(appid); st.Submits != 1 || st.Releases != 1 {
		t.Fatalf("after a wait and a lost answer: %+v", st)
	}
	if e.wx.Calls("get_latest_auditstatus") == 0 {
		t.Fatal("the lost submission was not checked")
	}
}

// Setting domains WeChat already has ("nothing changed": 89019, 85017) is not a failure: a second campaign
// with the same web-view domains releases.
func TestSetupThatChangesNothingCountsAsDone(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast, tweak: func(c *sandbox.Config) { c.AuditDelay = sandbox.AuditImmediate }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	stop := e.run(t, 1, false, 0)
	defer stop()
	wv := map[string]any{"webview_domains": map[string]any{"webviewdomain": []string{"https://shop.example.com"}}}
	e.start(t, e.campaign("wv-1", tpl, wv))
	e.waitApp(t, "wv-1", e.apps[0], "released", inState(campaigns.StateReleased))
	wv["user_version"] = "1.3.0"
	e.start(t, e.campaign("wv-2", tpl, wv))
	a := e.waitApp(t, "wv-2", e.apps[0], "settled", func(a campaigns.App) bool { return campaigns.Final(a.State) })
	if a.State != campaigns.StateReleased || e.wx.CodeStats(e.apps[0]).ReleasedVersion != "1.3.0" {
		t.Fatalf("second campaign with the same domains: %+v", a)
	}
}

// A campaign whose targets resolve to no mini program finishes at once.
func TestCampaignWithoutTargetsFinishes(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast})
	stop := e.run(t, 1, false, 0)
	defer stop()
	e.start(t, e.campaign("empty-1", 1, map[string]any{"targets": map[string]any{"tenant": "nobody"}}))
	testenv.Eventually(t, 10*time.Second, "the empty campaign finished", func() bool {
		c, err := e.runner.Store.Campaign(context.Background(), "empty-1")
		return err == nil && c.State == campaigns.CampaignFinished && c.Total == 0
	})
}

// A gray release refused for a rate limit (45011) and then tried again with its answer lost is checked, not
// repeated (a repeat is refused 85082 and would fail an app that is in fact gray-released).
func TestGrayReleaseAfterARateLimitIsCheckedNotRepeated(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast, apiTimout: 400 * time.Millisecond, tweak: func(c *sandbox.Config) { c.AuditDelay = sandbox.AuditImmediate }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	appid := e.apps[0]
	e.merchantSubmits(t, appid, tpl, true) // a live version to gray from
	held := make(chan struct{})
	defer close(held)
	e.wx.SetFault("grayrelease", sandbox.Fault{ErrCode: 45011, ErrRate: 1})
	go func() {
		for e.wx.Calls("grayrelease") < 1 {
			time.Sleep(2 * time.Millisecond)
		}
		e.wx.SetFault("grayrelease", sandbox.Fault{HoldAnswer: held})
		for e.wx.Served("grayrelease") == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		e.wx.SetFault("grayrelease", sandbox.Fault{})
	}()
	stop := e.run(t, 1, false, 500*time.Millisecond)
	defer stop()
	e.start(t, e.campaign("gray-rl", tpl, map[string]any{"release": map[string]any{"mode": "gray", "gray_percentage": 10}}))
	a := e.waitApp(t, "gray-rl", appid, "settled", func(a campaigns.App) bool { return campaigns.Final(a.State) || a.State == campaigns.StateGray })
	if st := e.wx.CodeStats(appid); a.State != campaigns.StateGray || st.GrayReleases != 1 {
		t.Fatalf("after a rate limit and a lost answer: %s %s; %+v", a.State, a.ErrMsg, st)
	}
}

// Two campaigns never commit over each other: the second waits while the first's app is under way, and
// goes on when it is released.
func TestASecondCampaignWaitsForTheFirstOnTheSameMiniProgram(t *testing.T) {
	e := newEnv(t, options{apps: 1, timing: fast, tweak: func(c *sandbox.Config) { c.AuditDelay = time.Hour }})
	tpl := e.wx.AddTemplate("1.2.0", "x")
	appid := e.apps[0]
	stop := e.run(t, 1, false, 0)
	defer stop()
	e.start(t, e.campaign("first", tpl, nil))
	e.waitApp(t, "first", appid, "auditing", inState(campaigns.StateAuditing))
	e.start(t, e.campaign("second", tpl, map[string]any{"user_version": "1.3.0"}))
	e.waitApp(t, "second", appid, "waiting for the first", func(a campaigns.App) bool { return strings.Contains(a.Note, "another campaign") })
	if st := e.wx.CodeStats(appid); st.Commits != 1 || st.Version != "1.2.0" {
		t.Fatalf("the second campaign committed over the first: %+v", st)
	}
	if err := e.wx.FinishAudit(appid, true, ""); err != nil {
		t.Fatal(err)
	}
	e.waitApp(t, "first", appid, "released", inState(campaigns.StateReleased))
	e.waitApp(t, "second", appid, "auditing", inState(campaigns.StateAuditing))
	if st := e.wx.CodeStats(appid); st.Commits != 2 || st.Version != "1.3.0" || st.ReleasedVersion != "1.2.0" {
		t.Fatalf("after the first: %+v", st)
	}
}

package sandbox

import (
	"net/url"
	"testing"
	"time"
)

// ship commits version, has it pass (the env decides at once) and
// releases it.
func (ce *codeEnv) ship(t *testing.T, version string) {
	t.Helper()
	ce.commit(t, version)
	ce.submit(t)
	wantCode(t, "release "+version, ce.wxa(t, "/wxa/release", map[string]any{}), 0)
}

func TestReleaseFlow(t *testing.T) {
	ce := newCodeEnv(t)
	wantCode(t, "empty body", ce.wxa(t, "/wxa/release", []byte{}), CodeEmptyPostData)
	wantCode(t, "GET", ce.wxa(t, "/wxa/release", nil), CodeRequirePOST)
	wantCode(t, "nothing audited", ce.wxa(t, "/wxa/release", map[string]any{}), CodeNoAuditedVersion)
	if v := ce.wxa(t, "/wxa/getversioninfo", map[string]any{}); v.obj("exp_info") != nil || v.obj("release_info") != nil {
		t.Errorf("version info before anything %v", v)
	}

	ce.commit(t, "1.0.0")
	ce.submit(t)
	ce.clock.Add(time.Hour)
	wantCode(t, "release", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	wantCode(t, "release twice", ce.wxa(t, "/wxa/release", map[string]any{}), CodeNoAuditedVersion)
	if st := withoutExt(ce.sb.CodeStats(mp1)); st != (CodeStats{Commits: 1, Submits: 1, Releases: 1, Version: "1.0.0", AuditStatus: "passed", ReleasedVersion: "1.0.0"}) {
		t.Errorf("stats %+v", st)
	}

	ce.commit(t, "1.1.0")
	v := ce.wxa(t, "/wxa/getversioninfo", map[string]any{})
	wantCode(t, "getversioninfo", v, 0)
	exp, rel := v.obj("exp_info"), v.obj("release_info")
	if exp.str("exp_version") != "1.1.0" || exp.str("exp_desc") != "版本 1.1.0" || answer(exp).num("exp_time") != ce.clock.Now().Unix() ||
		rel.str("release_version") != "1.0.0" || answer(rel).num("release_time") != ce.clock.Now().Unix() {
		t.Errorf("version info %v", v)
	}
	wantCode(t, "getversioninfo without a body", ce.wxa(t, "/wxa/getversioninfo", []byte{}), CodeEmptyPostData)
}

// A newer version under audit does not keep the passed one from release;
// release takes the audited commit, not the current 体验版.
func TestReleaseWithNewerAuditPending(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	ce.commit(t, "1.0.0")
	ce.submit(t)
	if err := ce.sb.FinishAudit(mp1, true, ""); err != nil {
		t.Fatal(err)
	}
	ce.commit(t, "2.0.0")
	ce.submit(t)
	wantCode(t, "release", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	if st := ce.sb.CodeStats(mp1); st.ReleasedVersion != "1.0.0" || st.Version != "2.0.0" || st.AuditStatus != "pending" {
		t.Errorf("stats %+v", st)
	}
	// Rejecting 2.0.0 leaves nothing to release; passing it releases it.
	if err := ce.sb.FinishAudit(mp1, false, ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "release after the rejection", ce.wxa(t, "/wxa/release", map[string]any{}), CodeNoAuditedVersion)
	ce.submit(t)
	if err := ce.sb.FinishAudit(mp1, true, ""); err != nil {
		t.Fatal(err)
	}
	ce.commit(t, "3.0.0") // a later commit is not what was audited
	wantCode(t, "release 2.0.0", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	if st := withoutExt(ce.sb.CodeStats(mp1)); st != (CodeStats{Commits: 3, Submits: 3, Releases: 2, Version: "3.0.0", AuditStatus: "passed", ReleasedVersion: "2.0.0"}) {
		t.Errorf("stats %+v", st)
	}
}

func TestGrayRelease(t *testing.T) {
	ce := newCodeEnv(t)
	gray := func(pct int, debugger bool) answer {
		return ce.wxa(t, "/wxa/grayrelease", map[string]any{"gray_percentage": pct, "support_debuger_first": debugger, "support_experiencer_first": false})
	}
	plan := func() answer {
		a := ce.wxa(t, "/wxa/getgrayreleaseplan", nil)
		wantCode(t, "getgrayreleaseplan", a, 0)
		return a.obj("gray_release_plan")
	}
	if p := plan(); p.num("status") != 0 || p.num("gray_percentage") != 0 {
		t.Errorf("initial plan %v", p)
	}
	ce.commit(t, "1.0.0")
	ce.submit(t)
	wantCode(t, "gray before any release", gray(10, false), CodeGrayNoLiveVersion)
	wantCode(t, "release 1.0.0", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	wantCode(t, "gray without a passed version", gray(10, false), CodeGrayNotPassed)

	ce.commit(t, "1.1.0")
	ce.submit(t)
	for _, c := range []struct {
		pct      int
		debugger bool
	}{{0, false}, {101, false}, {-1, true}} {
		wantCode(t, "bad percentage", gray(c.pct, c.debugger), CodeGrayPercentage)
	}
	wantCode(t, "gray 0 to debuggers", gray(0, true), 0)
	wantCode(t, "gray 10", gray(10, false), 0)
	wantCode(t, "gray 10 again", gray(10, false), CodeGrayPercentageLower)
	wantCode(t, "gray 5", gray(5, false), CodeGrayPercentageLower)
	wantCode(t, "gray 50", gray(50, true), 0)
	if p := plan(); p.num("status") != 1 || p.num("gray_percentage") != 50 || p["support_debuger_first"] != true ||
		p.num("create_timestamp") != ce.clock.Now().Unix() {
		t.Errorf("running plan %v", p)
	}
	wantCode(t, "revert during gray", ce.wxa(t, "/wxa/revertcoderelease", nil), CodeRevertDuringGray)
	wantCode(t, "revertgrayrelease", ce.wxa(t, "/wxa/revertgrayrelease", nil), 0)
	if p := plan(); p.num("status") != 4 {
		t.Errorf("reverted plan %v", p)
	}
	wantCode(t, "gray 20 after the revert", gray(20, false), 0)
	wantCode(t, "release 1.1.0", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	if p := plan(); p.num("status") != 3 || p.num("gray_percentage") != 20 {
		t.Errorf("plan after release %v", p)
	}
	if st := ce.sb.CodeStats(mp1); st.GrayReleases != 4 || st.Releases != 2 || st.ReleasedVersion != "1.1.0" {
		t.Errorf("stats %+v", st)
	}
}

func TestRevertCodeRelease(t *testing.T) {
	ce := newCodeEnv(t)
	history := func() []answer {
		a := ce.call(t, "/wxa/revertcoderelease", url.Values{"access_token": {ce.tok}, "action": {"get_history_version"}}, nil)
		wantCode(t, "get_history_version", a, 0)
		var out []answer
		list, _ := a["version_list"].([]any)
		for _, v := range list {
			out = append(out, answer(v.(map[string]any)))
		}
		return out
	}
	revert := func(appVersion string) answer {
		q := url.Values{"access_token": {ce.tok}}
		if appVersion != "" {
			q.Set("app_version", appVersion)
		}
		return ce.call(t, "/wxa/revertcoderelease", q, nil)
	}
	wantCode(t, "revert before any release", revert(""), CodeRevertNotAllowed)
	if h := history(); len(h) != 0 {
		t.Errorf("history %v", h)
	}
	ce.ship(t, "1.0.0")
	wantCode(t, "revert with one version", revert(""), CodeRevertNotAllowed)
	ce.ship(t, "2.0.0")
	ce.ship(t, "3.0.0")
	h := history()
	if len(h) != 2 || h[0].str("user_version") != "2.0.0" || h[0].num("app_version") != 2 || h[1].str("user_version") != "1.0.0" ||
		h[0].str("user_desc") != "版本 2.0.0" || h[0].num("commit_time") != ce.clock.Now().Unix() {
		t.Fatalf("history %v", h)
	}
	wantCode(t, "revert", revert(""), 0)
	if st := ce.sb.CodeStats(mp1); st.ReleasedVersion != "2.0.0" || st.Releases != 3 {
		t.Errorf("stats %+v", st)
	}
	wantCode(t, "unknown app_version", revert("99"), CodeRevertNotAllowed)
	wantCode(t, "the live app_version", revert("2"), CodeRevertNotAllowed)
	wantCode(t, "revert to 1.0.0", revert("1"), 0)
	if st := ce.sb.CodeStats(mp1); st.ReleasedVersion != "1.0.0" {
		t.Errorf("stats %+v", st)
	}
	wantCode(t, "release again", ce.wxa(t, "/wxa/release", map[string]any{}), CodeNoAuditedVersion)

	// At most five versions are kept, the live one among them, in the order
	// they were last live: 1.0.0 (live again since the revert) stays, 3.0.0
	// and 2.0.0 go.
	for _, v := range []string{"4.0.0", "5.0.0", "6.0.0", "7.0.0"} {
		ce.ship(t, v)
	}
	if h := history(); len(h) != 4 || h[0].str("user_version") != "6.0.0" || h[3].str("user_version") != "1.0.0" {
		t.Errorf("history %v", h)
	}
}

func TestVisitStatus(t *testing.T) {
	ce := newCodeEnv(t)
	status := func() int64 {
		a := ce.wxa(t, "/wxa/getvisitstatus", map[string]any{})
		wantCode(t, "getvisitstatus", a, 0)
		return a.num("status")
	}
	wantCode(t, "getvisitstatus without a body", ce.wxa(t, "/wxa/getvisitstatus", []byte{}), CodeEmptyPostData)
	if status() != 1 {
		t.Error("a new mini program is paused")
	}
	wantCode(t, "close", ce.wxa(t, "/wxa/change_visitstatus", map[string]any{"action": "close"}), 0)
	if status() != 0 {
		t.Error("closing did not pause it")
	}
	wantCode(t, "bad action", ce.wxa(t, "/wxa/change_visitstatus", map[string]any{"action": "pause"}), CodeDataFormat)
	wantCode(t, "open", ce.wxa(t, "/wxa/change_visitstatus", map[string]any{"action": "open"}), 0)
	if status() != 1 {
		t.Error("opening did not resume it")
	}
}

// The pipeline a platform runs for many mini programs, end to end: each is
// committed, submitted and released exactly once.
func TestReleasePipelineForSeveralMiniPrograms(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = 20 * time.Millisecond })
	tokens := map[string]string{mp1: ce.tok, mp2: ce.tokenFor(t, mp2), "wx1e7c9a4b6d2f8c03": ce.tokenFor(t, "wx1e7c9a4b6d2f8c03")}
	for appid, tok := range tokens {
		wantCode(t, "commit "+appid, ce.wxaAs(t, tok, "/wxa/commit", commitBody(ce.templateID, "5.0.0")), 0)
		wantCode(t, "submit "+appid, ce.wxaAs(t, tok, "/wxa/submit_audit", map[string]any{}), 0)
	}
	for appid, tok := range tokens {
		ce.waitEvents(t, appid, 1) // the platform learns of the result from the event
		wantCode(t, "release "+appid, ce.wxaAs(t, tok, "/wxa/release", map[string]any{}), 0)
		if st := withoutExt(ce.sb.CodeStats(appid)); st != (CodeStats{Commits: 1, Submits: 1, Releases: 1, Version: "5.0.0", AuditStatus: "passed", ReleasedVersion: "5.0.0"}) {
			t.Errorf("%s: %+v", appid, st)
		}
	}
	if q := ce.wxa(t, "/wxa/queryquota", nil); q.num("rest") != DefaultAuditQuota-3 {
		t.Errorf("quota %v", q)
	}
}

// withoutExt leaves out the committed ext_json, for comparing the counts and versions.
func withoutExt(st CodeStats) CodeStats {
	st.ExtJSON = ""
	return st
}

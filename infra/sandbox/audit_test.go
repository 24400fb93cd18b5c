package sandbox

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditEvents returns the weapp_audit_* events the platform received for
// appid, decrypted (the platform verifies signatures and decrypts with
// wxcrypt).
func (ce *codeEnv) auditEvents(appid string) []delivery {
	var out []delivery
	for _, d := range ce.p.received() {
		if d.AppID == appid && strings.HasPrefix(d.Msg["Event"], "weapp_audit_") {
			out = append(out, d)
		}
	}
	return out
}

// waitEvents waits until the platform has n audit events for appid.
func (ce *codeEnv) waitEvents(t *testing.T, appid string, n int) []delivery {
	t.Helper()
	waitFor(t, func() bool { return len(ce.auditEvents(appid)) >= n })
	return ce.auditEvents(appid)
}

func TestSubmitAuditRules(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	wantCode(t, "no commit", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodeNoCommitForAudit)
	ce.commit(t, "1.0.0")
	item := func(k string, v any) map[string]any {
		it := map[string]any{"address": "pages/index/index", "tag": "水果 生鲜", "first_class": "商家自营",
			"second_class": "生鲜果蔬", "third_class": "", "first_id": 304, "second_id": 722, "third_id": 0, "title": "首页"}
		if k != "" {
			it[k] = v
		}
		return it
	}
	items := func(list ...map[string]any) map[string]any {
		return map[string]any{"item_list": append([]map[string]any{}, list...)}
	}
	six := []map[string]any{item("", nil), item("", nil), item("", nil), item("", nil), item("", nil), item("", nil)}
	cases := []struct {
		name string
		body any
		code int
	}{
		{"empty item_list", items(), CodeAuditItemCount},
		{"six items", items(six...), CodeAuditItemCount},
		{"empty item", items(map[string]any{}), CodeAuditItemEmpty},
		{"unknown page", items(item("address", "pages/cart/index")), CodeAuditPagePath},
		{"eleven tags", items(item("tag", "a b c d e f g h i j k")), CodeAuditTag},
		{"long tag", items(item("tag", strings.Repeat("标", 21))), CodeAuditTag},
		{"long title", items(item("title", strings.Repeat("题", 33))), CodeAuditTitle},
		{"unknown category id", items(item("second_id", 999)), CodeAuditCategory},
		{"unknown category name", items(item("first_class", "金融业")), CodeAuditCategory},
		{"third level", items(item("third_id", 5)), CodeAuditCategory},
		{"preview_info a list", map[string]any{"preview_info": []string{"m1"}}, CodeDataFormat},
		{"first_id a string", items(item("first_id", "304")), CodeDataFormat},
	}
	for _, c := range cases {
		wantCode(t, c.name, ce.wxa(t, "/wxa/submit_audit", c.body), c.code)
	}
	if st := ce.sb.CodeStats(mp1); st.Submits != 0 || st.AuditStatus != "" {
		t.Fatalf("refused submits counted: %+v", st)
	}

	a := ce.wxa(t, "/wxa/submit_audit", map[string]any{
		"item_list":    []map[string]any{item("", nil), {"address": "pages/goods/detail", "first_id": 304, "second_id": 723}},
		"preview_info": map[string]any{"pic_id_list": []string{"m1"}}, "version_desc": "测试账号 test/test",
		"ugc_declare": map[string]any{"scene": []int{0}}, "privacy_api_not_use": true, "order_path": "pages/order/list",
	})
	wantCode(t, "submit", a, 0)
	id := a.num("auditid")
	wantCode(t, "a second submit", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodeAuditPending)
	ce.commit(t, "1.0.1") // a new 体验版 does not end the audit
	wantCode(t, "a submit after a new commit", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodeAuditPending)

	st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id})
	wantCode(t, "get_auditstatus", st, 0)
	if st.num("status") != AuditPending {
		t.Errorf("status %v", st)
	}
	latest := ce.wxa(t, "/wxa/get_latest_auditstatus", nil)
	if latest.num("auditid") != id || latest.str("user_version") != "1.0.0" || latest.str("user_desc") != "版本 1.0.0" ||
		latest.num("submit_audit_time") != ce.clock.Now().Unix() || latest.num("status") != AuditPending {
		t.Errorf("latest %v", latest)
	}
	if st := withoutExt(ce.sb.CodeStats(mp1)); st != (CodeStats{Commits: 2, Submits: 1, Version: "1.0.1", AuditStatus: "pending"}) {
		t.Errorf("stats %+v", st)
	}
}

func TestAuditStatusLookups(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	wantCode(t, "latest before any", ce.wxa(t, "/wxa/get_latest_auditstatus", nil), CodeNoAudit)
	wantCode(t, "unknown auditid", ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": 12345}), CodeInvalidAuditID)
	wantCode(t, "auditid as a string", ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": "1"}), CodeDataFormat)
	wantCode(t, "get_auditstatus by GET", ce.wxa(t, "/wxa/get_auditstatus", nil), CodeRequirePOST)

	// Another mini program's audit is as unknown as a made-up one.
	tok2 := ce.tokenFor(t, mp2)
	wantCode(t, "mp2 commit", ce.wxaAs(t, tok2, "/wxa/commit", commitBody(ce.templateID, "3.0.0")), 0)
	a := ce.wxaAs(t, tok2, "/wxa/submit_audit", map[string]any{})
	wantCode(t, "mp2 submit", a, 0)
	wantCode(t, "mp2's audit seen by mp1", ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": a.num("auditid")}), CodeInvalidAuditID)
	if st := ce.sb.CodeStats(mp2); st.Submits != 1 || ce.sb.CodeStats(mp1).Submits != 0 {
		t.Errorf("stats mp2 %+v mp1 %+v", st, ce.sb.CodeStats(mp1))
	}
}

func TestAuditQuota(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour; c.AuditQuota = 2 })
	quota := func() answer {
		a := ce.wxa(t, "/wxa/queryquota", nil)
		wantCode(t, "queryquota", a, 0)
		return a
	}
	if q := quota(); q.num("rest") != 2 || q.num("limit") != 2 || q.num("speedup_limit") != 10 || q.num("speedup_rest") != 10 {
		t.Fatalf("quota %v", q)
	}
	ce.commit(t, "1.0.0")
	for range 2 {
		ce.submit(t)
		wantCode(t, "undo", ce.wxa(t, "/wxa/undocodeaudit", nil), 0) // withdrawing does not give the quota back
	}
	if q := quota(); q.num("rest") != 0 {
		t.Fatalf("quota %v", q)
	}
	wantCode(t, "over quota", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodeAuditQuota)

	// The quota is the component's: another mini program has none left either.
	tok2 := ce.tokenFor(t, mp2)
	wantCode(t, "mp2 commit", ce.wxaAs(t, tok2, "/wxa/commit", commitBody(ce.templateID, "1.0.0")), 0)
	wantCode(t, "mp2 over quota", ce.wxaAs(t, tok2, "/wxa/submit_audit", map[string]any{}), CodeAuditQuota)

	ce.clock.Add(31 * 24 * time.Hour) // next month
	if q := quota(); q.num("rest") != 2 {
		t.Fatalf("next month's quota %v", q)
	}
	ce.submit(t)
	if st := ce.sb.CodeStats(mp1); st.Submits != 3 || st.Undos != 2 || st.AuditStatus != "pending" {
		t.Errorf("stats %+v", st)
	}
}

func TestUndoCodeAudit(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	wantCode(t, "undo with no audit", ce.wxa(t, "/wxa/undocodeaudit", nil), CodeRevertNotAllowed)
	ce.commit(t, "1.0.0")
	// undo submits and withdraws; a refused undo's audit is passed so the
	// next submit works.
	undo := func() int {
		t.Helper()
		ce.submit(t)
		code := ce.wxa(t, "/wxa/undocodeaudit", nil).code()
		if code != 0 {
			if err := ce.sb.FinishAudit(mp1, true, ""); err != nil {
				t.Fatal(err)
			}
		}
		return code
	}
	for i := range 5 { // 2025-03-01, Beijing time
		if code := undo(); code != 0 {
			t.Fatalf("undo %d: %d", i, code)
		}
	}
	id := ce.sb.Audits(mp1)[4].AuditID
	if st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id}); st.num("status") != AuditWithdrawn {
		t.Errorf("withdrawn audit %v", st)
	}
	if code := undo(); code != CodeUndoQuota {
		t.Fatalf("sixth undo today: %d", code)
	}
	ce.clock.Add(24 * time.Hour)
	for i := range 5 {
		if code := undo(); code != 0 {
			t.Fatalf("undo %d the next day: %d", i, code)
		}
	}
	ce.clock.Add(24 * time.Hour)
	if code := undo(); code != CodeUndoQuota {
		t.Fatalf("eleventh undo this month: %d", code)
	}
	wantCode(t, "undo of a passed audit", ce.wxa(t, "/wxa/undocodeaudit", nil), CodeRevertNotAllowed)
	if st := ce.sb.CodeStats(mp1); st.Undos != 10 || st.Submits != 12 || st.AuditStatus != "passed" {
		t.Errorf("stats %+v", st)
	}
}

func TestSpeedupAudit(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	ce.commit(t, "1.0.0")
	id := ce.submit(t)
	wantCode(t, "unknown", ce.wxa(t, "/wxa/speedupaudit", map[string]any{"auditid": id + 1}), CodeInvalidAuditID)
	wantCode(t, "speedup", ce.wxa(t, "/wxa/speedupaudit", map[string]any{"auditid": id}), 0)
	wantCode(t, "twice", ce.wxa(t, "/wxa/speedupaudit", map[string]any{"auditid": id}), CodeSpeedupAlready)
	if q := ce.wxa(t, "/wxa/queryquota", nil); q.num("speedup_rest") != 9 {
		t.Errorf("quota %v", q)
	}
	if err := ce.sb.FinishAudit(mp1, true, ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "finished", ce.wxa(t, "/wxa/speedupaudit", map[string]any{"auditid": id}), CodeSpeedupNotPending)
}

// The simulator decides at once (AuditImmediate) and pushes the encrypted
// weapp_audit_success event to the mini program's message URL.
func TestAuditSimulatorPushesSuccess(t *testing.T) {
	ce := newCodeEnv(t)
	ce.commit(t, "1.0.0")
	id := ce.submit(t)
	// Decided when submit_audit answered: no waiting needed.
	if st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id}); st.num("status") != AuditPassed || st["reason"] != nil {
		t.Fatalf("status %v", st)
	}
	d := ce.waitEvents(t, mp1, 1)[0]
	now := strconv.FormatInt(ce.clock.Now().Unix(), 10)
	if d.Envelope.ToUserName != mp1User || d.Query.Get("openid") != SystemOpenID || d.Msg["ToUserName"] != mp1User ||
		d.Msg["FromUserName"] != SystemOpenID || d.Msg["MsgType"] != "event" || d.Msg["Event"] != EventAuditSuccess ||
		d.Msg["SuccTime"] != now || d.Msg["CreateTime"] != now {
		t.Errorf("event %+v", d)
	}
	waitFor(t, func() bool { return ce.sb.Audits(mp1)[0].EventPushed })
	if a := ce.sb.Audits(mp1)[0]; a.AuditID != id || a.Status != AuditPassed || a.EventErr != nil || a.Event != EventAuditSuccess ||
		a.UserVersion != "1.0.0" || !a.FinishTime.Equal(ce.clock.Now()) {
		t.Errorf("audit %+v", a)
	}
	if errs := ce.p.errors(); len(errs) > 0 {
		t.Errorf("platform: %v", errs)
	}
}

// With a real delay the audit is pending first; a rejection carries
// Reason, FailTime and ScreenShot, which get_auditstatus reports too.
func TestAuditSimulatorRejectsAfterDelay(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = 50 * time.Millisecond; c.AuditRejectRate = 1 })
	ce.commit(t, "1.0.0")
	id := ce.submit(t)
	if st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id}); st.num("status") != AuditPending {
		t.Fatalf("status right after submit %v", st) // 50 ms: a test machine answers sooner
	}
	d := ce.waitEvents(t, mp1, 1)[0]
	st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id})
	if st.num("status") != AuditRejected || st.str("reason") == "" || st.str("reason") != d.Msg["Reason"] ||
		st.str("screenshot") != d.Msg["ScreenShot"] || d.Msg["Event"] != EventAuditFail ||
		d.Msg["FailTime"] != strconv.FormatInt(ce.clock.Now().Unix(), 10) || !strings.Contains(d.Msg["Reason"], "<br>") {
		t.Errorf("status %v, event %v", st, d.Msg)
	}
	latest := ce.wxa(t, "/wxa/get_latest_auditstatus", nil)
	if latest.str("ScreenShot") != d.Msg["ScreenShot"] || latest.num("status") != AuditRejected {
		t.Errorf("latest %v", latest)
	}
	wantCode(t, "release of a rejected version", ce.wxa(t, "/wxa/release", map[string]any{}), CodeNoAuditedVersion)
	if st := ce.sb.CodeStats(mp1); st.AuditStatus != "rejected" || st.Releases != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A lost event is never pushed: the platform must poll get_auditstatus.
func TestAuditEventLoss(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour; c.AuditEventLossRate = 1 })
	ce.commit(t, "1.0.0")
	id := ce.submit(t)
	if err := ce.sb.FinishAudit(mp1, true, ""); err != nil {
		t.Fatalf("FinishAudit: %v", err)
	}
	if got := ce.auditEvents(mp1); len(got) != 0 {
		t.Fatalf("a lost event was pushed: %v", got)
	}
	if a := ce.sb.Audits(mp1)[0]; !a.EventLost || a.EventPushed || a.Event != EventAuditSuccess {
		t.Errorf("audit %+v", a)
	}
	if st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id}); st.num("status") != AuditPassed {
		t.Errorf("status %v", st)
	}
	if len(ce.sb.MessagePushes()) != 0 {
		t.Errorf("message pushes %v", ce.sb.MessagePushes())
	}
}

// A push the platform does not acknowledge is recorded and not retried.
func TestAuditEventPushFailure(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	ce.p.set(func(string, map[string]string) string { return "not success" })
	ce.commit(t, "1.0.0")
	ce.submit(t)
	err := ce.sb.FinishAudit(mp1, false, "1:测试原因<br>")
	var me *MessageError
	if !errors.As(err, &me) || me.MsgType != EventAuditFail || me.AppID != mp1 {
		t.Fatalf("FinishAudit: %v", err)
	}
	if a := ce.sb.Audits(mp1)[0]; a.Status != AuditRejected || a.Reason != "1:测试原因<br>" || !a.EventPushed || a.EventErr == nil {
		t.Errorf("audit %+v", a)
	}
	pushes := ce.sb.MessagePushes()
	if len(pushes) != 1 || pushes[0].Event != EventAuditFail || pushes[0].Err == nil || pushes[0].Status != http.StatusOK {
		t.Errorf("pushes %+v", pushes)
	}
	if got := ce.auditEvents(mp1); len(got) != 1 || got[0].Msg["Reason"] != "1:测试原因<br>" {
		t.Errorf("deliveries %v", got)
	}
}

func TestFinishAudit(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	if err := ce.sb.FinishAudit(mp1, true, ""); !errors.Is(err, ErrNoPendingAudit) {
		t.Errorf("nothing submitted: %v", err)
	}
	if err := ce.sb.FinishAudit("wx0000000000000000", true, ""); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
	ce.commit(t, "1.0.0")
	id := ce.submit(t)
	ce.clock.Add(3 * time.Hour)
	if err := ce.sb.FinishAudit(mp1, true, ""); err != nil {
		t.Fatalf("FinishAudit: %v", err)
	}
	// Synchronous: the event is there when FinishAudit returns.
	got := ce.auditEvents(mp1)
	if len(got) != 1 || got[0].Msg["Event"] != EventAuditSuccess || got[0].Msg["SuccTime"] != strconv.FormatInt(ce.clock.Now().Unix(), 10) {
		t.Fatalf("events %v", got)
	}
	if err := ce.sb.FinishAudit(mp1, false, ""); !errors.Is(err, ErrNoPendingAudit) {
		t.Errorf("finished twice: %v", err)
	}
	if st := ce.wxa(t, "/wxa/get_auditstatus", map[string]any{"auditid": id}); st.num("status") != AuditPassed {
		t.Errorf("status %v", st)
	}

	// A stock reason and screenshots when none is given.
	ce.commit(t, "1.0.1")
	ce.submit(t)
	if err := ce.sb.FinishAudit(mp1, false, ""); err != nil {
		t.Fatal(err)
	}
	if a := ce.sb.Audits(mp1)[1]; a.Reason == "" || a.ScreenShot == "" || a.Event != EventAuditFail {
		t.Errorf("audit %+v", a)
	}
	if st := withoutExt(ce.sb.CodeStats(mp1)); st != (CodeStats{Commits: 2, Submits: 2, Version: "1.0.1", AuditStatus: "rejected"}) {
		t.Errorf("stats %+v", st)
	}
}

// Faults work on the code APIs like on any other; a refused call is not an
// operation WeChat performed.
func TestSubmitAuditFault(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	ce.commit(t, "1.0.0")
	ce.sb.SetFault("submit_audit", Fault{BusyFirst: 1})
	wantCode(t, "busy", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodeSystemBusy)
	ce.submit(t)
	if st := ce.sb.CodeStats(mp1); st.Submits != 1 || ce.sb.Calls("submit_audit") != 2 || ce.sb.Served("submit_audit") != 1 {
		t.Errorf("stats %+v, calls %d, served %d", st, ce.sb.Calls("submit_audit"), ce.sb.Served("submit_audit"))
	}
}

// The audit timer stops on Close.
func TestCloseStopsPendingAudits(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.AuditDelay = time.Hour })
	ce.commit(t, "1.0.0")
	ce.submit(t)
	done := make(chan error, 1)
	go func() { done <- ce.sb.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close waits for the audit timer")
	}
	if a := ce.sb.Audits(mp1)[0]; a.Status != AuditPending {
		t.Errorf("audit %+v", a)
	}
}

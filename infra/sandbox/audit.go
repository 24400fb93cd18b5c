package sandbox

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Code audits (提审, reference 5.2, addendum B.1-B.4) and the audit
// simulator: an audit ends AuditDelay after submit_audit, passed or (with
// AuditRejectRate) rejected, and WeChat then pushes weapp_audit_success or
// weapp_audit_fail to the message URL, unless AuditEventLossRate loses it.

// Audit statuses, as get_auditstatus reports them. The sandbox never
// delays an audit (status 4, weapp_audit_delay).
const (
	AuditPassed    = 0
	AuditRejected  = 1
	AuditPending   = 2
	AuditWithdrawn = 3
)

var auditStatusNames = map[int]string{
	AuditPassed: "passed", AuditRejected: "rejected", AuditPending: "pending", AuditWithdrawn: "withdrawn",
}

// Limits (addendum B.4). Quotas reset at midnight Beijing time.
const (
	undoPerDay        = 5
	undoPerMonth      = 10
	auditSpeedupLimit = 10 // speed-ups a month for the component
	firstAuditID      = 420000000
)

var beijing = time.FixedZone("CST", 8*60*60)

// quotaMonth counts a monthly quota's uses.
type quotaMonth struct {
	month string // "2006-01" in Beijing time
	used  int
}

// usedIn returns the uses in now's month, starting a new month if needed.
func (q *quotaMonth) usedIn(now time.Time) int {
	if m := now.In(beijing).Format("2006-01"); m != q.month {
		q.month, q.used = m, 0
	}
	return q.used
}

// audit is one submit_audit.
type audit struct {
	id         int64
	appid      string
	version    *codeVersion // the audited commit
	status     int
	reason     string
	screenshot string // media ids joined by "|"
	submitted  time.Time
	finished   time.Time
	speedup    bool
	released   bool // its version was released: release answers 85019 for it from then on
	event      string
	eventLost  bool
	pushed     bool
	pushErr    error
}

// Audit is what the sandbox knows of one audit, for tests.
type Audit struct {
	AuditID     int64
	AppID       string
	UserVersion string // of the audited commit
	UserDesc    string
	Status      int    // AuditPassed, AuditRejected, AuditPending or AuditWithdrawn
	Reason      string // why it was rejected
	ScreenShot  string // rejected: media ids joined by "|"
	SubmitTime  time.Time
	FinishTime  time.Time // zero while pending or when withdrawn
	// Event is the result event WeChat sends (weapp_audit_success or
	// weapp_audit_fail) once the audit is decided.
	Event string
	// EventLost: AuditEventLossRate dropped the event; it is never pushed.
	EventLost bool
	// EventPushed: the push was tried; EventErr is nil when the platform
	// answered it right. A failed push is not retried.
	EventPushed bool
	EventErr    error
}

// Audits returns appid's audits, oldest first.
func (s *Sandbox) Audits(appid string) []Audit {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.apps[appid]
	if m == nil {
		return nil
	}
	out := make([]Audit, 0, len(m.audits))
	for _, a := range m.audits {
		out = append(out, Audit{
			AuditID: a.id, AppID: a.appid, UserVersion: a.version.userVersion, UserDesc: a.version.userDesc,
			Status: a.status, Reason: a.reason, ScreenShot: a.screenshot, SubmitTime: a.submitted, FinishTime: a.finished,
			Event: a.event, EventLost: a.eventLost, EventPushed: a.pushed, EventErr: a.pushErr,
		})
	}
	return out
}

// auditItem is one entry of submit_audit's item_list.
type auditItem struct {
	Address     string `json:"address"`
	Tag         string `json:"tag"`
	FirstClass  string `json:"first_class"`
	SecondClass string `json:"second_class"`
	ThirdClass  string `json:"third_class"`
	FirstID     int    `json:"first_id"`
	SecondID    int    `json:"second_id"`
	ThirdID     int    `json:"third_id"`
	Title       string `json:"title"`
}

// POST /wxa/submit_audit (addendum B.2). Checks in this order: JSON (47001;
// preview_info must be an object), a commit (85086), its privacy scan
// (61039), no audit pending (85009), item_list (85023, 85010, 85007, 85006,
// 85011, 85077), the component's monthly quota (85085).
func (s *Sandbox) apiSubmitAudit(c *apiCall) (any, *apiError) {
	var req struct {
		ItemList    *[]auditItem `json:"item_list"`
		PreviewInfo *struct {
			VideoIDList []string `json:"video_id_list"`
			PicIDList   []string `json:"pic_id_list"`
		} `json:"preview_info"`
		VersionDesc   string `json:"version_desc"`
		FeedbackInfo  string `json:"feedback_info"`
		FeedbackStuff string `json:"feedback_stuff"`
		UgcDeclare    *struct {
			Scene          []int  `json:"scene"`
			OtherSceneDesc string `json:"other_scene_desc"`
			Method         []int  `json:"method"`
			HasAuditTeam   int    `json:"has_audit_team"`
			AuditDesc      string `json:"audit_desc"`
		} `json:"ugc_declare"`
		PrivacyAPINotUse bool   `json:"privacy_api_not_use"`
		OrderPath        string `json:"order_path"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	switch {
	case m.exp == nil:
		return nil, errCode(CodeNoCommitForAudit)
	case c.now.Before(m.scanUntil):
		return nil, errCode(CodePrivacyScanPending)
	case m.latest() != nil && m.latest().status == AuditPending:
		return nil, errCode(CodeAuditPending)
	}
	if req.ItemList != nil {
		if e := checkAuditItems(*req.ItemList, m.exp.pages, categoriesOf(owner.acct)); e != nil {
			return nil, e
		}
	}
	if s.auditQuota.usedIn(c.now) >= s.cfg.AuditQuota {
		return nil, errCode(CodeAuditQuota)
	}
	s.auditQuota.used++
	a := &audit{
		id: firstAuditID + int64(len(s.audits)) + 1, appid: owner.acct.AppID, version: m.exp,
		status: AuditPending, submitted: c.now,
	}
	s.audits[a.id] = a
	m.audits = append(m.audits, a)
	m.stats.Submits++
	s.log.Info("code submitted for audit", "authorizer_appid", a.appid, "auditid", a.id, "user_version", a.version.userVersion)
	if s.cfg.AuditDelay < 0 { // AuditImmediate
		// Decided now, so a test can release right after; the event
		// follows the answer as it would on WeChat.
		s.decideAuditLocked(a, !chance(s.cfg.AuditRejectRate), "", c.now)
		c.then = func() { _ = s.pushAuditEvent(s.ctx, a) }
	} else {
		c.then = func() { s.runAudit(a) }
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "auditid": a.id}, nil
}

// checkAuditItems checks item_list: 1 to 5 items, none empty, addresses
// among the commit's pages, at most 10 tags of at most 20 characters, a
// title of at most 32, and categories the mini program has.
func checkAuditItems(items []auditItem, pages []string, cats []auditCategory) *apiError {
	if len(items) < 1 || len(items) > 5 {
		return errCode(CodeAuditItemCount)
	}
	for i, it := range items {
		if it == (auditItem{}) {
			return errCodef(CodeAuditItemEmpty, "hint: item %d", i)
		}
		if it.Address != "" && !slices.Contains(pages, it.Address) {
			return errCodef(CodeAuditPagePath, "hint: item %d address is not a page of the commit", i)
		}
		tags := strings.Fields(it.Tag)
		if len(tags) > 10 || slices.ContainsFunc(tags, func(t string) bool { return utf8.RuneCountInString(t) > 20 }) {
			return errCode(CodeAuditTag)
		}
		if utf8.RuneCountInString(it.Title) > 32 {
			return errCode(CodeAuditTitle)
		}
		named := it.FirstID != 0 || it.FirstClass != "" || it.SecondID != 0 || it.SecondClass != ""
		if it.ThirdID != 0 || it.ThirdClass != "" || named && !slices.ContainsFunc(cats, it.matches) {
			return errCodef(CodeAuditCategory, "hint: item %d names a category the mini program does not have", i)
		}
	}
	return nil
}

// matches reports whether the item's category fields (those given) are c's.
func (it auditItem) matches(c auditCategory) bool {
	return (it.FirstID == 0 || it.FirstID == c.FirstID) && (it.SecondID == 0 || it.SecondID == c.SecondID) &&
		(it.FirstClass == "" || it.FirstClass == c.FirstClass) && (it.SecondClass == "" || it.SecondClass == c.SecondClass)
}

// auditRejectReasons are rejection texts in WeChat's format (numbered
// items separated by <br>, reference 5.4).
var auditRejectReasons = []string{
	`1:小程序类目与实际运营内容不符:<br>(1):你的小程序涉及提供商品在线交易服务，请在"设置-服务类目"中补充相关类目后重新提交审核。<br>`,
	`1:小程序页面无法正常打开:<br>(1):审核时小程序首页提示"网络错误"，请确保服务器可正常访问后重新提交审核。<br>`,
	`1:用户隐私保护指引与实际不符:<br>(1):小程序收集了用户手机号，但未在《用户隐私保护指引》中声明，请补充后重新提交审核。<br>2:功能页面设置的部分标签与该页面内容不相关。<br>`,
}

// newScreenshots makes up one to three screenshot media ids.
func newScreenshots() string {
	ids := make([]string, 1+mrand.IntN(3))
	for i := range ids {
		ids[i] = randomB64(48)
	}
	return strings.Join(ids, "|")
}

// decideAuditLocked ends pending audit a at now: passed, or rejected for
// reason (a stock one when "") with screenshots. Whether its event will be
// lost is decided here too. Caller holds s.mu.
func (s *Sandbox) decideAuditLocked(a *audit, pass bool, reason string, now time.Time) {
	a.finished = now
	if pass {
		a.status, a.event = AuditPassed, EventAuditSuccess
	} else {
		if reason == "" {
			reason = auditRejectReasons[mrand.IntN(len(auditRejectReasons))]
		}
		a.status, a.event, a.reason, a.screenshot = AuditRejected, EventAuditFail, reason, newScreenshots()
	}
	a.eventLost = chance(s.cfg.AuditEventLossRate)
	s.log.Info("audit finished", "authorizer_appid", a.appid, "auditid", a.id, "status", auditStatusNames[a.status],
		"event_lost", a.eventLost)
}

// runAudit is the audit's background work unless AuditImmediate: wait (a real
// timer), decide, push. FinishAudit or undocodeaudit may have ended it first.
func (s *Sandbox) runAudit(a *audit) {
	if !s.wait(context.Background(), s.cfg.AuditDelay) {
		return // closing
	}
	s.mu.Lock()
	if a.status != AuditPending {
		s.mu.Unlock()
		return
	}
	s.decideAuditLocked(a, !chance(s.cfg.AuditRejectRate), "", s.now())
	s.mu.Unlock()
	_ = s.pushAuditEvent(s.ctx, a) // logged and recorded
}

// pushAuditEvent pushes a decided audit's event to the mini program's
// message URL (PushMessage: same envelope, query and answer rules), unless
// it is lost. Failures are logged and recorded on the audit, not retried.
func (s *Sandbox) pushAuditEvent(ctx context.Context, a *audit) error {
	s.mu.Lock()
	lost := a.eventLost
	plain := AuditEvent(s.authorizers[a.appid].acct.UserName, a.event, a.finished, a.reason, a.screenshot)
	s.mu.Unlock()
	if lost {
		s.log.Info("audit event lost (AuditEventLossRate): the platform must poll get_auditstatus",
			"authorizer_appid", a.appid, "auditid", a.id, "event", a.event)
		return nil
	}
	_, err := s.PushMessage(ctx, a.appid, plain)
	s.mu.Lock()
	a.pushed, a.pushErr = true, err
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("audit event not delivered; not retried", "authorizer_appid", a.appid, "auditid", a.id, "event", a.event, "err", err)
	}
	return err
}

// FinishAudit ends appid's pending audit now, passed or rejected for reason
// (a stock reason when ""), and pushes its event unless AuditEventLossRate
// loses it, for tests that do not want to wait for AuditDelay. The push is
// synchronous; if it fails the audit stays finished and the error (a
// *MessageError, ErrNoMessageURL, ...) is returned. ErrNoPendingAudit when
// nothing is under audit.
func (s *Sandbox) FinishAudit(appid string, pass bool, reason string) error {
	s.mu.Lock()
	if s.authorizers[appid] == nil {
		s.mu.Unlock()
		return fmt.Errorf("finish audit of %s: %w", appid, ErrUnknownAccount)
	}
	var a *audit
	if m := s.apps[appid]; m != nil {
		a = m.latest()
	}
	if a == nil || a.status != AuditPending {
		s.mu.Unlock()
		return fmt.Errorf("finish audit of %s: %w", appid, ErrNoPendingAudit)
	}
	s.decideAuditLocked(a, pass, reason, s.now())
	s.mu.Unlock()
	if err := s.pushAuditEvent(s.ctx, a); err != nil {
		return fmt.Errorf("finish audit of %s: %w", appid, err)
	}
	return nil
}

// auditOfLocked finds an audit of this mini program by id: another mini
// program's audit is as unknown as a made-up id (85012).
func (s *Sandbox) auditOfLocked(appid string, id int64) (*audit, *apiError) {
	a := s.audits[id]
	if a == nil || a.appid != appid {
		return nil, errCode(CodeInvalidAuditID)
	}
	return a, nil
}

// POST /wxa/get_auditstatus {"auditid":n}
func (s *Sandbox) apiGetAuditStatus(c *apiCall) (any, *apiError) {
	var req struct {
		AuditID int64 `json:"auditid"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, _ := s.codeAppLocked(c)
	a, e := s.auditOfLocked(owner.acct.AppID, req.AuditID)
	if e != nil {
		return nil, e
	}
	resp := map[string]any{"errcode": 0, "errmsg": "ok", "status": a.status}
	if a.status == AuditRejected {
		resp["reason"], resp["screenshot"] = a.reason, a.screenshot
	}
	return resp, nil
}

// GET /wxa/get_latest_auditstatus: 85058 before the first submit_audit.
func (s *Sandbox) apiGetLatestAuditStatus(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	a := m.latest()
	if a == nil {
		return nil, errCode(CodeNoAudit)
	}
	return map[string]any{
		"errcode": 0, "errmsg": "ok", "auditid": a.id, "status": a.status, "reason": a.reason, "ScreenShot": a.screenshot,
		"user_version": a.version.userVersion, "user_desc": a.version.userDesc, "submit_audit_time": a.submitted.Unix(),
	}, nil
}

// GET /wxa/undocodeaudit: withdraws the pending audit (status 3, no event;
// the quota it used stays used). 87012 when nothing is pending; 87013 past
// 5 a day or 10 a month per mini program.
func (s *Sandbox) apiUndoCodeAudit(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	a := m.latest()
	if a == nil || a.status != AuditPending {
		return nil, errCodef(CodeRevertNotAllowed, "hint: no audit to withdraw")
	}
	day, month := c.now.In(beijing).Format(time.DateOnly), c.now.In(beijing).Format("2006-01")
	var today, thisMonth int
	for _, t := range m.undos {
		if bt := t.In(beijing); bt.Format("2006-01") == month {
			thisMonth++
			if bt.Format(time.DateOnly) == day {
				today++
			}
		}
	}
	if today >= undoPerDay || thisMonth >= undoPerMonth {
		return nil, errCode(CodeUndoQuota)
	}
	m.undos = append(m.undos, c.now)
	a.status = AuditWithdrawn
	m.stats.Undos++
	s.log.Info("audit withdrawn", "authorizer_appid", a.appid, "auditid", a.id)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// POST /wxa/speedupaudit {"auditid":n}: recorded; the simulator's audits
// take AuditDelay whatever.
func (s *Sandbox) apiSpeedupAudit(c *apiCall) (any, *apiError) {
	var req struct {
		AuditID int64 `json:"auditid"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, _ := s.codeAppLocked(c)
	a, e := s.auditOfLocked(owner.acct.AppID, req.AuditID)
	switch {
	case e != nil:
		return nil, e
	case a.status != AuditPending:
		return nil, errCode(CodeSpeedupNotPending)
	case a.speedup:
		return nil, errCode(CodeSpeedupAlready)
	case s.speedupQuota.usedIn(c.now) >= auditSpeedupLimit:
		return nil, errCode(CodeSpeedupQuota)
	}
	s.speedupQuota.used++
	a.speedup = true
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// GET /wxa/queryquota: the component's audit quota this month, the same
// for every mini program (any authorizer token of the component works; the
// sandbox asks for a mini program's like the other code APIs).
func (s *Sandbox) apiQueryQuota(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]any{
		"errcode": 0, "errmsg": "ok",
		"rest": s.cfg.AuditQuota - s.auditQuota.usedIn(c.now), "limit": s.cfg.AuditQuota,
		"speedup_rest": auditSpeedupLimit - s.speedupQuota.usedIn(c.now), "speedup_limit": auditSpeedupLimit,
	}, nil
}

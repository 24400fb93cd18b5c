package sandbox

import (
	"slices"
	"strconv"
	"time"
)

// Releases (发布, reference 5.2, addendum B.1): release, gray release,
// rollback, and what getversioninfo and the visit status report.

// Gray-release plan statuses (getgrayreleaseplan).
const (
	grayInitial  = 0
	grayRunning  = 1
	grayFinished = 3
	grayDeleted  = 4
)

// grayPlan is a gray release (灰度发布) of a passed audit's version.
type grayPlan struct {
	status           int
	created          time.Time
	percentage       int
	debuggerFirst    bool
	experiencerFirst bool
	audit            *audit
}

// passedLocked returns the latest passed audit if its version was not
// released yet: what release and grayrelease act on. A newer audit that is
// pending, rejected or withdrawn does not hide it. Caller holds s.mu.
func (m *miniApp) passedLocked() *audit {
	for _, a := range slices.Backward(m.audits) {
		if a.status == AuditPassed {
			if a.released {
				return nil
			}
			return a
		}
	}
	return nil
}

// goLiveLocked makes v the live version at now: it joins the history (at
// most maxHistory versions, the live one last) and the privacy settings
// under development become live. Caller holds s.mu.
func (m *miniApp) goLiveLocked(v *codeVersion, now time.Time) {
	m.history = slices.DeleteFunc(m.history, func(r released) bool { return r.v == v })
	m.history = append(m.history, released{v: v, time: now})
	if over := len(m.history) - maxHistory; over > 0 {
		m.history = slices.Delete(m.history, 0, over)
	}
	if m.privacyDev != nil {
		live := *m.privacyDev
		m.privacyLiv = &live
	}
}

// POST /wxa/release with the body {} (an empty body is 44002): releases the
// latest passed audit's version (85019 when there is none not yet
// released). A running gray release of it is finished.
func (s *Sandbox) apiRelease(c *apiCall) (any, *apiError) {
	var req struct{}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	a := m.passedLocked()
	if a == nil {
		return nil, errCode(CodeNoAuditedVersion)
	}
	a.released = true
	m.goLiveLocked(a.version, c.now)
	if m.gray != nil && m.gray.status == grayRunning {
		m.gray.status = grayFinished
	}
	m.stats.Releases++
	s.log.Info("code released", "authorizer_appid", a.appid, "auditid", a.id, "user_version", a.version.userVersion)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// POST /wxa/grayrelease {"gray_percentage":1..100,"support_debuger_first":bool,"support_experiencer_first":bool}:
// releases the passed version to a share of users. Needs a live version
// (85079) and a passed, unreleased audit (85080); the percentage must be
// 1-100, or 0 with one of the flags (85081), and higher than the running
// plan's (85082).
func (s *Sandbox) apiGrayRelease(c *apiCall) (any, *apiError) {
	var req struct {
		Percentage       int  `json:"gray_percentage"`
		DebuggerFirst    bool `json:"support_debuger_first"`
		ExperiencerFirst bool `json:"support_experiencer_first"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	a := m.passedLocked()
	running := m.gray != nil && m.gray.status == grayRunning && m.gray.audit == a
	switch {
	case m.live() == nil:
		return nil, errCode(CodeGrayNoLiveVersion)
	case a == nil:
		return nil, errCode(CodeGrayNotPassed)
	case req.Percentage < 0 || req.Percentage > 100 || req.Percentage == 0 && !req.DebuggerFirst && !req.ExperiencerFirst:
		return nil, errCode(CodeGrayPercentage)
	case running && req.Percentage <= m.gray.percentage:
		return nil, errCode(CodeGrayPercentageLower)
	}
	if running {
		m.gray.percentage, m.gray.debuggerFirst, m.gray.experiencerFirst = req.Percentage, req.DebuggerFirst, req.ExperiencerFirst
	} else {
		m.gray = &grayPlan{status: grayRunning, created: c.now, percentage: req.Percentage,
			debuggerFirst: req.DebuggerFirst, experiencerFirst: req.ExperiencerFirst, audit: a}
	}
	m.stats.GrayReleases++
	s.log.Info("gray release", "authorizer_appid", a.appid, "user_version", a.version.userVersion, "gray_percentage", req.Percentage)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// GET /wxa/getgrayreleaseplan: the last plan, or an initial (0) one.
func (s *Sandbox) apiGetGrayReleasePlan(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	g := m.gray
	if g == nil {
		g = &grayPlan{status: grayInitial}
	}
	var created int64
	if !g.created.IsZero() {
		created = g.created.Unix()
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "gray_release_plan": map[string]any{
		"status": g.status, "create_timestamp": created, "gray_percentage": g.percentage,
		"support_experiencer_first": g.experiencerFirst, "support_debuger_first": g.debuggerFirst,
	}}, nil
}

// GET /wxa/revertgrayrelease: stops the running gray release (plan status
// 4); everyone gets the live version again. Without one it changes nothing.
func (s *Sandbox) apiRevertGrayRelease(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	if m.gray != nil && m.gray.status == grayRunning {
		m.gray.status = grayDeleted
		s.log.Info("gray release reverted", "authorizer_appid", owner.acct.AppID)
	}
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// GET /wxa/revertcoderelease: ?action=get_history_version lists the
// versions it can roll back to (newest first); ?app_version=N rolls back to
// one of them; no query rolls back to the previous live version. 87011
// while a gray release runs; 87012 when there is nothing to roll back to.
func (s *Sandbox) apiRevertCodeRelease(c *apiCall) (any, *apiError) {
	q := c.r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	older := m.history[:max(0, len(m.history)-1)] // all but the live one
	if q.Get("action") == "get_history_version" {
		type item struct {
			AppVersion  int64  `json:"app_version"`
			UserVersion string `json:"user_version"`
			UserDesc    string `json:"user_desc"`
			CommitTime  int64  `json:"commit_time"`
		}
		list := []item{}
		for _, r := range slices.Backward(older) {
			list = append(list, item{r.v.appVersion, r.v.userVersion, r.v.userDesc, r.v.committed.Unix()})
		}
		return map[string]any{"errcode": 0, "errmsg": "ok", "version_list": list}, nil
	}
	if m.gray != nil && m.gray.status == grayRunning {
		return nil, errCode(CodeRevertDuringGray)
	}
	var target *codeVersion
	if v := q.Get("app_version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if i := slices.IndexFunc(older, func(r released) bool { return r.v.appVersion == n }); err == nil && i >= 0 {
			target = older[i].v
		}
	} else if len(older) > 0 {
		target = older[len(older)-1].v
	}
	if target == nil {
		return nil, errCode(CodeRevertNotAllowed)
	}
	m.goLiveLocked(target, c.now)
	s.log.Info("code release reverted", "authorizer_appid", owner.acct.AppID, "user_version", target.userVersion)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// POST /wxa/getversioninfo with {}: the 体验版 and the live version (each
// object only when there is one).
func (s *Sandbox) apiGetVersionInfo(c *apiCall) (any, *apiError) {
	var req struct{}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	resp := map[string]any{"errcode": 0, "errmsg": "ok"}
	if m.exp != nil {
		resp["exp_info"] = map[string]any{
			"exp_time": m.exp.committed.Unix(), "exp_version": m.exp.userVersion, "exp_desc": m.exp.userDesc,
		}
	}
	if l := m.live(); l != nil {
		resp["release_info"] = map[string]any{
			"release_time": l.time.Unix(), "release_version": l.v.userVersion, "release_desc": l.v.userDesc,
		}
	}
	return resp, nil
}

// POST /wxa/getvisitstatus with {}: 1 normal, 0 paused (暂停服务).
func (s *Sandbox) apiGetVisitStatus(c *apiCall) (any, *apiError) {
	var req struct{}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	status := 1
	if m.visitClose {
		status = 0
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "status": status}, nil
}

// POST /wxa/change_visitstatus {"action":"close"|"open"}
func (s *Sandbox) apiChangeVisitStatus(c *apiCall) (any, *apiError) {
	var req struct {
		Action string `json:"action"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if req.Action != "close" && req.Action != "open" {
		return nil, errCodef(CodeDataFormat, "hint: action must be close or open")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	m.visitClose = req.Action == "close"
	s.log.Info("visit status changed", "authorizer_appid", owner.acct.AppID, "action", req.Action)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

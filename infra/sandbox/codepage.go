package sandbox

import (
	"fmt"
	"time"
)

// The status page's code-management part: each mini program's 体验版, audit
// and released version, the audit quota, and the template library.

type codeView struct {
	Simulator             string
	QuotaRest, QuotaLimit int
	Apps                  []codeAppRow
	Drafts                []libraryRow
	Templates             []libraryRow
}

type codeAppRow struct {
	AppID, NickName           string
	Exp, Audit, Live, Stats   string
	AuditOK, AuditBad, Paused bool
}

type libraryRow struct {
	ID                          int64
	UserVersion, UserDesc, Time string
	Type                        string
}

var auditStatusLabels = map[int]string{
	AuditPassed: "审核通过 passed", AuditRejected: "审核被拒绝 rejected", AuditPending: "审核中 pending", AuditWithdrawn: "已撤回 withdrawn",
}

// codeViewLocked describes code management for the status page. Caller
// holds s.mu.
func (s *Sandbox) codeViewLocked(now time.Time) codeView {
	v := codeView{QuotaLimit: s.cfg.AuditQuota, QuotaRest: s.cfg.AuditQuota - s.auditQuota.usedIn(now)}
	delay := s.cfg.AuditDelay.String()
	if s.cfg.AuditDelay < 0 {
		delay = "0 (即时 at once)"
	}
	v.Simulator = fmt.Sprintf("审核时长 delay %s · 驳回率 reject rate %g%% · 事件丢失率 event loss rate %g%% · 隐私检测 privacy scan %s",
		delay, 100*s.cfg.AuditRejectRate, 100*s.cfg.AuditEventLossRate, s.cfg.PrivacyScanDuration)
	for _, acct := range s.listedAccountsLocked() {
		if !acct.IsMiniProgram() {
			continue
		}
		row := codeAppRow{AppID: acct.AppID, NickName: acct.NickName, Exp: "—", Audit: "—", Live: "—"}
		if m := s.apps[acct.AppID]; m != nil {
			if m.exp != nil {
				row.Exp = fmt.Sprintf("%s (%s)", m.exp.userVersion, m.exp.committed.Format(time.DateTime))
			}
			if a := m.latest(); a != nil {
				row.Audit = fmt.Sprintf("%s · %s · auditid %d", a.version.userVersion, auditStatusLabels[a.status], a.id)
				row.AuditOK, row.AuditBad = a.status == AuditPassed, a.status == AuditRejected
				if a.eventLost {
					row.Audit += " · 事件丢失 event lost"
				}
			}
			if l := m.live(); l != nil {
				row.Live = fmt.Sprintf("%s (%s)", l.v.userVersion, l.time.Format(time.DateTime))
			}
			if g := m.gray; g != nil && g.status == grayRunning {
				row.Live += fmt.Sprintf(" · 灰度 gray %d%% %s", g.percentage, g.audit.version.userVersion)
			}
			row.Paused = m.visitClose
			st := m.stats
			row.Stats = fmt.Sprintf("%d / %d / %d / %d / %d", st.Commits, st.Submits, st.Undos, st.Releases, st.GrayReleases)
		}
		v.Apps = append(v.Apps, row)
	}
	for _, d := range s.library.drafts {
		v.Drafts = append(v.Drafts, libraryRow{ID: d.id, UserVersion: d.userVersion, UserDesc: d.userDesc, Time: d.created.Format(time.DateTime)})
	}
	for _, t := range s.library.templates {
		kind := "普通 normal"
		if t.templateType == 1 {
			kind = "标准 standard"
		}
		v.Templates = append(v.Templates, libraryRow{ID: t.id, UserVersion: t.draft.userVersion, UserDesc: t.draft.userDesc,
			Time: t.created.Format(time.DateTime), Type: kind})
	}
	return v
}

const codeTemplates = `
{{define "code"}}
<h2>小程序代码 <span class="en">Mini-program code</span></h2>
<p>本月审核额度 <span class="en">Audit quota this month</span>: <b id="audit-quota">{{.QuotaRest}}</b> / {{.QuotaLimit}}</p>
<p class="en" id="audit-simulator">{{.Simulator}}</p>
<table>
<tr><th>小程序 Mini program</th><th>体验版 Trial version</th><th>审核 Audit</th><th>线上版本 Released</th><th>提交/提审/撤回/发布/灰度 Commits/submits/undos/releases/grays</th></tr>
{{range .Apps}}<tr id="code-{{.AppID}}"><td>{{.NickName}}<div class="meta">{{.AppID}}</div></td><td>{{.Exp}}</td>
<td class="{{if .AuditOK}}ok{{else if .AuditBad}}bad{{end}}">{{.Audit}}</td><td>{{.Live}}{{if .Paused}} <span class="bad">暂停服务 paused</span>{{end}}</td><td>{{.Stats}}</td></tr>
{{else}}<tr><td colspan="5">没有小程序 no mini programs</td></tr>{{end}}
</table>
<h2>代码模板库 <span class="en">Template library</span></h2>
<table>
<tr><th>草稿 Draft</th><th>版本 Version</th><th>描述 Description</th><th>时间 Time</th></tr>
{{range .Drafts}}<tr><td>{{.ID}}</td><td>{{.UserVersion}}</td><td>{{.UserDesc}}</td><td>{{.Time}}</td></tr>
{{else}}<tr><td colspan="4">暂无 none</td></tr>{{end}}
</table>
<table>
<tr><th>模板 Template</th><th>版本 Version</th><th>描述 Description</th><th>类型 Type</th><th>时间 Time</th></tr>
{{range .Templates}}<tr id="template-{{.ID}}"><td>{{.ID}}</td><td>{{.UserVersion}}</td><td>{{.UserDesc}}</td><td>{{.Type}}</td><td>{{.Time}}</td></tr>
{{else}}<tr><td colspan="5">暂无 none yet</td></tr>{{end}}
</table>
{{end}}
`

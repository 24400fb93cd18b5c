package sandbox

import (
	"context"
	"net/http"
	"strconv"
)

// releaseCheckPath runs RunReleaseCheck from the status page.
const releaseCheckPath = "/sandbox/release-check"

type releaseView struct {
	Group  int
	Steps  []ReleaseStep
	Passed bool
	Error  string
}

// POST /sandbox/release-check (form field group, 1-5): runs the release
// check and shows its report.
func (s *Sandbox) serveReleaseCheck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errcode": CodeRequirePOST, "errmsg": "require POST method"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	_ = r.ParseForm() // a bad form leaves group empty, which is refused below
	group, err := strconv.Atoi(r.Form.Get("group"))
	if err != nil {
		group = 0
	}
	// The check outlives a browser that gives up (the test accounts must be
	// revoked at the end); Close still stops it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	report, err := s.RunReleaseCheck(ctx, group, ReleaseCheckOptions{})
	v := releaseView{Group: group, Steps: report.Steps, Passed: report.Passed()}
	status := http.StatusOK
	if err != nil {
		v.Error = err.Error()
		if len(report.Steps) == 0 {
			status = http.StatusBadRequest
		}
	}
	s.render(w, status, "release", v)
}

const releaseTemplates = `
{{define "release"}}{{template "head" "全网发布检测 Release check · WeChat sandbox"}}
<body>
<header>微信开放平台 · 沙箱<small>WeChat Open Platform sandbox</small></header>
<main>
<p><a href="/sandbox/">← 沙箱状态 Sandbox status</a></p>
<h1>全网发布检测 <span class="en">Release check</span>{{if .Group}} · 测试组 group {{.Group}}{{end}}</h1>
{{if .Error}}<div class="error" id="release-error">{{.Error}}</div>{{end}}
{{if .Steps}}
<p id="release-result" class="{{if .Passed}}ok{{else}}bad{{end}}">{{if .Passed}}✓ 全部通过 All checks passed{{else}}✗ 未通过 Some checks failed{{end}}</p>
<table id="release-steps">
<tr><th></th><th>检测项 Step</th><th>详情 Detail</th></tr>
{{range .Steps}}<tr><td class="{{if .OK}}ok{{else}}bad{{end}}">{{if .OK}}✓{{else}}✗{{end}}</td><td>{{.Name}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
{{end}}
</main></body></html>{{end}}
`

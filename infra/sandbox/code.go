package sandbox

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"slices"
	"time"
	"unicode/utf8"
)

// Mini-program code management (reference 5, addendum B): each authorized
// mini program has a 体验版 (the last commit), audits, a released version
// with its history, a gray-release plan, domains, testers and privacy
// settings. The APIs take the mini program's authorizer access token.

// permDevelopment is the permission set 开发管理与数据分析 every /wxa/ code
// API needs.
const permDevelopment = 18

// codeVersion is one commit: what the 体验版, an audit and a release are.
type codeVersion struct {
	appVersion  int64 // revertcoderelease's app_version: the commit's number in this mini program
	templateID  int64
	userVersion string
	userDesc    string
	extJSON     string // as committed
	pages       []string
	privacy     []string // privacy keys its code uses
	committed   time.Time
}

// released is a version that went live, for revertcoderelease's history.
type released struct {
	v    *codeVersion
	time time.Time // when it (last) became the live version
}

// maxHistory is how many versions WeChat keeps for revertcoderelease.
const maxHistory = 5

// miniApp is the code-management state of one mini program.
type miniApp struct {
	commits    int64        // commits so far: the next appVersion
	exp        *codeVersion // the 体验版; nil before the first commit
	scanUntil  time.Time    // the privacy scan of the last commit runs until then
	audits     []*audit     // oldest first; the last is the latest
	history    []released   // ≤ maxHistory, oldest first; the last is live
	gray       *grayPlan    // the last gray-release plan; nil if none
	visitClose bool         // 暂停服务
	undos      []time.Time  // undocodeaudit times, for its daily and monthly limits
	domains    map[string][]string
	webview    []string
	testers    []tester
	privacyDev *privacySetting // privacy_ver 2
	privacyLiv *privacySetting // privacy_ver 1: copied from dev on release
	stats      CodeStats
}

// live is the released version, or nil.
func (m *miniApp) live() *released {
	if len(m.history) == 0 {
		return nil
	}
	return &m.history[len(m.history)-1]
}

// latest is the latest audit, or nil.
func (m *miniApp) latest() *audit {
	if len(m.audits) == 0 {
		return nil
	}
	return m.audits[len(m.audits)-1]
}

// CodeStats counts the code operations WeChat performed for one mini
// program (refused calls are not counted), and where it stands: the 体验版's
// user_version, the latest audit's status ("", "pending", "passed",
// "rejected", "withdrawn") and the released user_version.
type CodeStats struct {
	Commits, Submits, Releases, GrayReleases, Undos int
	Version, AuditStatus, ReleasedVersion           string
	ExtJSON                                         string // the 体验版's ext_json, as committed
}

// CodeStats reports appid's code operations and state; zero for an account
// that never used code management.
func (s *Sandbox) CodeStats(appid string) CodeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.apps[appid]
	if m == nil {
		return CodeStats{}
	}
	st := m.stats
	if m.exp != nil {
		st.Version, st.ExtJSON = m.exp.userVersion, m.exp.extJSON
	}
	if a := m.latest(); a != nil {
		st.AuditStatus = auditStatusNames[a.status]
	}
	if l := m.live(); l != nil {
		st.ReleasedVersion = l.v.userVersion
	}
	return st
}

// checkMiniProgram is the permission check of the code APIs. WeChat makes
// it before anything else, so an official account (it has no set 18) or a
// mini program that did not grant the set gets 61007 "api is unauthorized
// to component" whatever it sent.
func (s *Sandbox) checkMiniProgram(appid string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authorizers[appid]
	if !a.acct.IsMiniProgram() || !slices.Contains(a.funcInfo, permDevelopment) {
		return errCodef(CodeAPIUnauthorizedToComponent, "hint: needs a mini program that granted permission set %d", permDevelopment)
	}
	return nil
}

// codeAppLocked returns the mini program behind c's authorizer token
// (checked by checkMiniProgram) and its code state. Caller holds s.mu.
func (s *Sandbox) codeAppLocked(c *apiCall) (*authorizer, *miniApp) {
	a := s.authorizers[c.token.owner]
	return a, s.appLocked(a.acct.AppID)
}

// appLocked returns appid's code state, making it on first use.
func (s *Sandbox) appLocked(appid string) *miniApp {
	m := s.apps[appid]
	if m == nil {
		m = &miniApp{domains: make(map[string][]string)}
		s.apps[appid] = m
	}
	return m
}

// POST /wxa/commit {"template_id":n,"ext_json":"{...}","user_version":"","user_desc":""}.
// The 体验版 becomes this code at once; the privacy-API scan starts again.
func (s *Sandbox) apiCommit(c *apiCall) (any, *apiError) {
	var req struct {
		TemplateID  json.RawMessage `json:"template_id"`
		ExtJSON     json.RawMessage `json:"ext_json"`
		UserVersion string          `json:"user_version"`
		UserDesc    string          `json:"user_desc"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var templateID int64
	if err := json.Unmarshal(req.TemplateID, &templateID); err != nil {
		// Missing, or quoted as the legacy docs show: 85014 (addendum B.1).
		return nil, errCodef(CodeInvalidTemplateID, "hint: template_id must be a number")
	}
	var extJSON string
	if err := json.Unmarshal(req.ExtJSON, &extJSON); err != nil {
		return nil, errCodef(CodeInvalidExtJSON, "hint: ext_json must be a string holding JSON")
	}
	if utf8.RuneCountInString(req.UserVersion) > 64 {
		return nil, errCodef(CodeDataFormat, "hint: user_version longer than 64 characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, m := s.codeAppLocked(c)
	t := s.library.findTemplate(templateID)
	if t == nil {
		return nil, errCode(CodeInvalidTemplateID)
	}
	pages, e := extPages(extJSON, t.draft.pages)
	if e != nil {
		return nil, e
	}
	m.commits++
	m.exp = &codeVersion{
		appVersion: m.commits, templateID: t.id, userVersion: req.UserVersion, userDesc: req.UserDesc, extJSON: extJSON,
		pages: pages, privacy: slices.Clone(templatePrivacy), committed: c.now,
	}
	m.scanUntil = c.now.Add(s.cfg.PrivacyScanDuration)
	m.stats.Commits++
	s.log.Info("code committed", "authorizer_appid", a.acct.AppID, "template_id", t.id, "user_version", req.UserVersion)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// extPages checks ext_json, a JSON object: its "pages", if present, must be
// a non-empty subset of the template's pages (ext_json cannot add pages).
// It returns the committed code's pages.
func extPages(extJSON string, tmplPages []string) ([]string, *apiError) {
	var ext map[string]json.RawMessage
	if err := json.Unmarshal([]byte(extJSON), &ext); err != nil || ext == nil {
		return nil, errCodef(CodeInvalidExtJSON, "hint: ext_json is not a JSON object")
	}
	raw, ok := ext["pages"]
	if !ok {
		return slices.Clone(tmplPages), nil
	}
	var pages []string
	if err := json.Unmarshal(raw, &pages); err != nil {
		return nil, errCodef(CodeInvalidExtJSON, "hint: ext_json pages must be a list of paths")
	}
	if len(pages) == 0 {
		return nil, errCode(CodeExtJSONNoPages)
	}
	for _, p := range pages {
		if !slices.Contains(tmplPages, p) {
			return nil, errCodef(CodeExtJSONBadPath, "hint: %q is not a page of the template", p)
		}
	}
	return dedupe(pages), nil
}

// dedupe drops repeated strings, keeping the first of each.
func dedupe(list []string) []string {
	var out []string
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// GET /wxa/get_page: the committed code's pages.
func (s *Sandbox) apiGetPage(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	if m.exp == nil {
		return nil, errCode(CodeNoCommittedCode)
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "page_list": slices.Clone(m.exp.pages)}, nil
}

// auditCategory is a get_category entry, what submit_audit's items name.
type auditCategory struct {
	FirstClass  string `json:"first_class"`
	SecondClass string `json:"second_class"`
	FirstID     int    `json:"first_id"`
	SecondID    int    `json:"second_id"`
}

// categoriesOf lists a mini program's categories with their ids. Accounts
// configured without ids get stable ones made from the names.
func categoriesOf(acct Account) []auditCategory {
	out := make([]auditCategory, 0, len(acct.Categories))
	for _, c := range acct.Categories {
		first, second := c.FirstID, c.SecondID
		if first == 0 {
			first = nameID(c.First)
		}
		if second == 0 {
			second = nameID(c.First + "/" + c.Second)
		}
		out = append(out, auditCategory{c.First, c.Second, first, second})
	}
	return out
}

func nameID(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 1000 + int(h.Sum32()%9000)
}

// GET /wxa/get_category
func (s *Sandbox) apiGetCategory(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, _ := s.codeAppLocked(c)
	return map[string]any{"errcode": 0, "errmsg": "ok", "category_list": categoriesOf(a.acct)}, nil
}

// GET /wxa/get_qrcode[?path=]: the 体验版's QR code as a JPEG (JSON only for
// errors, which is how callers tell them apart).
func (s *Sandbox) apiGetQRCode(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	a, m := s.codeAppLocked(c)
	var seed string
	if m.exp != nil {
		seed = a.acct.AppID + "|" + m.exp.userVersion + "|" + c.r.URL.Query().Get("path")
	}
	s.mu.Unlock()
	if seed == "" {
		return nil, errCode(CodeNoCommittedCode)
	}
	return &rawAnswer{
		contentType: "image/jpeg",
		header:      map[string]string{"Content-Disposition": `attachment; filename="QRCode.jpg"`},
		body:        qrcodeJPEG(seed),
	}, nil
}

// qrcodeJPEG draws qrModules(seed) as a JPEG, 8 pixels a module.
func qrcodeJPEG(seed string) []byte {
	const cell = 8
	mods := qrModules(seed)
	n := len(mods)
	img := image.NewGray(image.Rect(0, 0, (n+2)*cell, (n+2)*cell))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, row := range mods {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range cell {
				for dx := range cell {
					img.SetGray((x+1)*cell+dx, (y+1)*cell+dy, color.Gray{})
				}
			}
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}) // a bytes.Buffer never fails
	return b.Bytes()
}

// GET /wxa/security/get_code_privacy_info: 61039 while the scan of the last
// commit runs. The sandbox's code declares everything it uses, so both
// lists are empty (61040 never happens).
func (s *Sandbox) apiGetCodePrivacyInfo(c *apiCall) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	switch {
	case m.exp == nil:
		return nil, errCode(CodeNoCommittedCode)
	case c.now.Before(m.scanUntil):
		return nil, errCode(CodePrivacyScanPending)
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "without_auth_list": []string{}, "without_conf_list": []string{}}, nil
}

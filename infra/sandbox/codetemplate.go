package sandbox

import (
	"slices"
	"strconv"
	"time"
)

// The template library (代码模板库, reference 6 and addendum B.6): drafts
// uploaded from the component's 开发小程序 with DevTools, turned into
// templates that mini programs commit from. It belongs to the component, so
// its APIs take the component access token.

// maxTemplates is the size of the library (addendum 0 #8): 85065 when full.
const maxTemplates = 200

// templatePages are the pages of every draft and template: what get_page
// lists after a commit and what ext_json "pages" may choose from.
var templatePages = []string{"pages/index/index", "pages/goods/detail", "pages/order/list"}

// templatePrivacy are the privacy keys the templates' code uses:
// getprivacysetting's privacy_list after a commit.
var templatePrivacy = []string{"UserInfo", "PhoneNumber", "Location"}

// draft is code uploaded from DevTools.
type draft struct {
	id          int64
	userVersion string
	userDesc    string
	created     time.Time
	pages       []string
}

// codeTemplate is a template in the library.
type codeTemplate struct {
	id           int64
	templateType int // 0 普通模板, 1 标准模板 (obsolete but still accepted)
	draft        *draft
	created      time.Time
}

type templateLibrary struct {
	drafts    []*draft        // oldest first
	templates []*codeTemplate // oldest first
	lastDraft int64
	lastTmpl  int64
}

// newTemplateLibrary starts with three drafts, as if the component's
// developers had uploaded versions over the last days, and no templates.
func newTemplateLibrary(now time.Time) templateLibrary {
	var l templateLibrary
	for i, d := range [][2]string{
		{"1.0.0", "首个版本：商品列表与下单"},
		{"1.1.0", "新增订单列表页"},
		{"1.2.0", "修复已知问题，优化首页加载速度"},
	} {
		l.addDraft(d[0], d[1], now.Add(time.Duration(i-3)*24*time.Hour))
	}
	return l
}

func (l *templateLibrary) addDraft(userVersion, userDesc string, now time.Time) *draft {
	l.lastDraft++
	d := &draft{id: l.lastDraft, userVersion: userVersion, userDesc: userDesc, created: now, pages: slices.Clone(templatePages)}
	l.drafts = append(l.drafts, d)
	return d
}

func (l *templateLibrary) addTemplate(d *draft, templateType int, now time.Time) *codeTemplate {
	l.lastTmpl++
	t := &codeTemplate{id: l.lastTmpl, templateType: templateType, draft: d, created: now}
	l.templates = append(l.templates, t)
	return t
}

func (l *templateLibrary) findDraft(id int64) *draft {
	i := slices.IndexFunc(l.drafts, func(d *draft) bool { return d.id == id })
	if i < 0 {
		return nil
	}
	return l.drafts[i]
}

func (l *templateLibrary) findTemplate(id int64) *codeTemplate {
	i := slices.IndexFunc(l.templates, func(t *codeTemplate) bool { return t.id == id })
	if i < 0 {
		return nil
	}
	return l.templates[i]
}

// AddDraft adds a draft to the template library, what uploading code from
// DevTools does, and returns its draft_id.
func (s *Sandbox) AddDraft(userVersion, userDesc string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.library.addDraft(userVersion, userDesc, s.now()).id
}

// AddTemplate adds a draft and turns it into a 普通模板 at once (what
// AddDraft and addtotemplate do together) and returns its template_id. It
// ignores the 200-template limit so that tests can fill the library.
func (s *Sandbox) AddTemplate(userVersion, userDesc string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	return s.library.addTemplate(s.library.addDraft(userVersion, userDesc, now), 0, now).id
}

// GET /wxa/gettemplatedraftlist
func (s *Sandbox) apiGetTemplateDraftList(*apiCall) (any, *apiError) {
	type item struct {
		CreateTime  int64  `json:"create_time"`
		UserVersion string `json:"user_version"`
		UserDesc    string `json:"user_desc"`
		DraftID     int64  `json:"draft_id"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]item, 0, len(s.library.drafts))
	for _, d := range s.library.drafts {
		list = append(list, item{d.created.Unix(), d.userVersion, d.userDesc, d.id})
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "draft_list": list}, nil
}

// POST /wxa/addtotemplate {"draft_id":n,"template_type":0}. The draft stays
// in the draft list; adding it twice makes two templates.
func (s *Sandbox) apiAddToTemplate(c *apiCall) (any, *apiError) {
	var req struct {
		DraftID      *int64 `json:"draft_id"`
		TemplateType int    `json:"template_type"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if req.TemplateType != 0 && req.TemplateType != 1 {
		return nil, errCodef(CodeDataFormat, "hint: template_type must be 0 or 1")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var d *draft
	if req.DraftID != nil {
		d = s.library.findDraft(*req.DraftID)
	}
	switch {
	case d == nil:
		return nil, errCodef(CodeTemplateNotFound, "hint: draft not found")
	case len(s.library.templates) >= maxTemplates:
		return nil, errCode(CodeTemplateLibraryFull)
	}
	t := s.library.addTemplate(d, req.TemplateType, c.now)
	s.log.Info("template added", "template_id", t.id, "draft_id", d.id)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// GET /wxa/gettemplatelist[?template_type=0|1]
func (s *Sandbox) apiGetTemplateList(c *apiCall) (any, *apiError) {
	want := -1
	if v := c.r.URL.Query().Get("template_type"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n != 1) {
			return nil, errCodef(CodeDataFormat, "hint: template_type must be 0 or 1")
		}
		want = n
	}
	type item struct {
		CreateTime   int64  `json:"create_time"`
		UserVersion  string `json:"user_version"`
		UserDesc     string `json:"user_desc"`
		TemplateID   int64  `json:"template_id"`
		TemplateType int    `json:"template_type"`
		SourceAppID  string `json:"source_miniprogram_appid"`
		Source       string `json:"source_miniprogram"`
		Developer    string `json:"developer"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]item, 0, len(s.library.templates))
	for _, t := range s.library.templates {
		if want >= 0 && t.templateType != want {
			continue
		}
		list = append(list, item{
			CreateTime: t.created.Unix(), UserVersion: t.draft.userVersion, UserDesc: t.draft.userDesc,
			TemplateID: t.id, TemplateType: t.templateType,
			SourceAppID: devMiniProgramAppID, Source: "开发小程序", Developer: "sandbox",
		})
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "template_list": list}, nil
}

// devMiniProgramAppID is the component's made-up 开发小程序, the source of
// every draft.
const devMiniProgramAppID = "wxd0000000000000de"

// POST /wxa/deletetemplate {"template_id":n}. Mini programs that committed
// it keep their code.
func (s *Sandbox) apiDeleteTemplate(c *apiCall) (any, *apiError) {
	var req struct {
		TemplateID *int64 `json:"template_id"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.TemplateID == nil || s.library.findTemplate(*req.TemplateID) == nil {
		return nil, errCode(CodeTemplateNotFound)
	}
	s.library.templates = slices.DeleteFunc(s.library.templates, func(t *codeTemplate) bool { return t.id == *req.TemplateID })
	s.log.Info("template deleted", "template_id", *req.TemplateID)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

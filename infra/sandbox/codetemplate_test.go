package sandbox

import (
	"net/url"
	"testing"
)

func TestTemplateLibrary(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	// Both token parameter names work, like the other component APIs.
	get := func(path string, q url.Values) answer {
		if q == nil {
			q = url.Values{}
		}
		q.Set("access_token", ctok)
		a := e.call(t, path, q, nil)
		wantCode(t, path, a, 0)
		return a
	}
	list := func(a answer, key string) []answer {
		var out []answer
		items, _ := a[key].([]any)
		for _, it := range items {
			out = append(out, answer(it.(map[string]any)))
		}
		return out
	}
	post := func(path string, body any) answer { return e.call(t, path, tokenQuery(ctok), body) }

	drafts := list(get("/wxa/gettemplatedraftlist", nil), "draft_list")
	if len(drafts) != 3 || drafts[0].str("user_version") != "1.0.0" || drafts[0].num("draft_id") != 1 ||
		drafts[0].num("create_time") >= e.clock.Now().Unix() {
		t.Fatalf("drafts %v", drafts)
	}
	if tl := list(get("/wxa/gettemplatelist", nil), "template_list"); len(tl) != 0 {
		t.Fatalf("the library starts empty: %v", tl)
	}
	id := e.sb.AddDraft("2.0.0", "从开发者工具上传")
	if drafts = list(get("/wxa/gettemplatedraftlist", nil), "draft_list"); len(drafts) != 4 || drafts[3].num("draft_id") != id ||
		drafts[3].str("user_desc") != "从开发者工具上传" || drafts[3].num("create_time") != e.clock.Now().Unix() {
		t.Fatalf("drafts %v", drafts)
	}

	wantCode(t, "unknown draft", post("/wxa/addtotemplate", map[string]any{"draft_id": 99, "template_type": 0}), CodeTemplateNotFound)
	wantCode(t, "no draft_id", post("/wxa/addtotemplate", map[string]any{"template_type": 0}), CodeTemplateNotFound)
	wantCode(t, "draft_id a string", post("/wxa/addtotemplate", map[string]any{"draft_id": "4"}), CodeDataFormat)
	wantCode(t, "template_type 2", post("/wxa/addtotemplate", map[string]any{"draft_id": id, "template_type": 2}), CodeDataFormat)
	wantCode(t, "addtotemplate by GET", e.call(t, "/wxa/addtotemplate", tokenQuery(ctok), nil), CodeRequirePOST)
	wantCode(t, "addtotemplate", post("/wxa/addtotemplate", map[string]any{"draft_id": id, "template_type": 0}), 0)
	wantCode(t, "a 标准模板", post("/wxa/addtotemplate", map[string]any{"draft_id": 1, "template_type": 1}), 0)

	tl := list(get("/wxa/gettemplatelist", nil), "template_list")
	if len(tl) != 2 || tl[0].str("user_version") != "2.0.0" || tl[0].num("template_type") != 0 || tl[0].num("template_id") == 0 ||
		tl[0].str("source_miniprogram_appid") == "" {
		t.Fatalf("templates %v", tl)
	}
	if only := list(get("/wxa/gettemplatelist", url.Values{"template_type": {"1"}}), "template_list"); len(only) != 1 || only[0].str("user_version") != "1.0.0" {
		t.Errorf("template_type=1: %v", only)
	}
	// The component_access_token parameter works as well.
	if a := e.call(t, "/wxa/gettemplatelist", tokenQuery(ctok), nil); a.code() != 0 {
		t.Errorf("component_access_token=: %v", a)
	}
	wantCode(t, "authorizer-style token missing", e.call(t, "/wxa/gettemplatelist", nil, nil), CodeAccessTokenMissing)

	tid := tl[0].num("template_id")
	wantCode(t, "delete unknown", post("/wxa/deletetemplate", map[string]any{"template_id": 999}), CodeTemplateNotFound)
	wantCode(t, "delete", post("/wxa/deletetemplate", map[string]any{"template_id": tid}), 0)
	wantCode(t, "delete twice", post("/wxa/deletetemplate", map[string]any{"template_id": tid}), CodeTemplateNotFound)
	if tl := list(get("/wxa/gettemplatelist", nil), "template_list"); len(tl) != 1 {
		t.Errorf("templates after delete %v", tl)
	}
	if n := len(list(get("/wxa/gettemplatedraftlist", nil), "draft_list")); n != 4 {
		t.Errorf("drafts after adding templates: %d", n)
	}
}

// A mini program commits from the library: a deleted template is 85014, the
// pages come from the template.
func TestCommitFromTheLibrary(t *testing.T) {
	ce := newCodeEnv(t)
	wantCode(t, "delete", ce.call(t, "/wxa/deletetemplate", tokenQuery(ce.ctok), map[string]any{"template_id": ce.templateID}), 0)
	wantCode(t, "commit a deleted template", ce.wxa(t, "/wxa/commit", commitBody(ce.templateID, "1.0.0")), CodeInvalidTemplateID)
	ce.templateID = ce.sb.AddTemplate("2.0.0", "新模板")
	ce.commit(t, "2.0.0")
	if pages, _ := ce.wxa(t, "/wxa/get_page", nil)["page_list"].([]any); len(pages) != len(templatePages) {
		t.Errorf("pages %v", pages)
	}
}

func TestTemplateLibraryFull(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	for range maxTemplates {
		e.sb.AddTemplate("1.0.0", "填满")
	}
	wantCode(t, "addtotemplate", e.call(t, "/wxa/addtotemplate", tokenQuery(ctok), map[string]any{"draft_id": 1, "template_type": 0}), CodeTemplateLibraryFull)
	wantCode(t, "delete one", e.call(t, "/wxa/deletetemplate", tokenQuery(ctok), map[string]any{"template_id": 7}), 0)
	wantCode(t, "addtotemplate after a delete", e.call(t, "/wxa/addtotemplate", tokenQuery(ctok), map[string]any{"draft_id": 1}), 0)
}

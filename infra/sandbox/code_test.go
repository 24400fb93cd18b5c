package sandbox

import (
	"bytes"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// codeEnv is a sandbox whose message URL is a test platform's, with mp1
// authorized: ctok is the component token, tok mp1's authorizer token.
type codeEnv struct {
	*env
	p          *platform
	ctok, tok  string
	templateID int64
}

// newCodeEnv starts it with audits decided at once unless tweak says
// otherwise, and one template in the library. Authorizer tokens last long:
// the tests move the clock by days and months.
func newCodeEnv(t *testing.T, tweak ...func(*Config)) *codeEnv {
	t.Helper()
	e, p := newPlatformEnv(t, false, append([]func(*Config){func(c *Config) {
		c.AuditDelay, c.AuthorizerTokenTTL = AuditImmediate, 90*24*time.Hour
	}}, tweak...)...)
	ctok := e.componentToken(t)
	tok := e.queryAuth(t, ctok, e.authorizeDirect(t, mp1)).str("authorizer_access_token")
	return &codeEnv{env: e, p: p, ctok: ctok, tok: tok, templateID: e.sb.AddTemplate("1.0.0", "模板")}
}

// tokenFor authorizes another account and returns its authorizer token.
func (ce *codeEnv) tokenFor(t *testing.T, appid string) string {
	t.Helper()
	return ce.queryAuth(t, ce.ctok, ce.authorizeDirect(t, appid)).str("authorizer_access_token")
}

// wxa calls a code-management API with mp1's token (body nil: GET).
func (ce *codeEnv) wxa(t *testing.T, path string, body any) answer {
	t.Helper()
	return ce.wxaAs(t, ce.tok, path, body)
}

func (ce *codeEnv) wxaAs(t *testing.T, tok, path string, body any) answer {
	t.Helper()
	return ce.call(t, path, url.Values{"access_token": {tok}}, body)
}

func commitBody(templateID int64, version string) map[string]any {
	return map[string]any{"template_id": templateID, "ext_json": `{"extAppid":"` + mp1 + `","ext":{"shop":1}}`,
		"user_version": version, "user_desc": "版本 " + version}
}

// commit commits version from the env's template and checks it worked.
func (ce *codeEnv) commit(t *testing.T, version string) {
	t.Helper()
	wantCode(t, "commit "+version, ce.wxa(t, "/wxa/commit", commitBody(ce.templateID, version)), 0)
}

// submit submits the 体验版 for audit and returns the auditid.
func (ce *codeEnv) submit(t *testing.T) int64 {
	t.Helper()
	a := ce.wxa(t, "/wxa/submit_audit", map[string]any{})
	wantCode(t, "submit_audit", a, 0)
	id, _ := a["auditid"].(float64)
	return int64(id)
}

func (a answer) num(key string) int64 { v, _ := a[key].(float64); return int64(v) }

func TestCodeAPIsNeedAMiniProgram(t *testing.T) {
	ce := newCodeEnv(t)
	oaTok := ce.tokenFor(t, oa1)
	for _, path := range []string{"/wxa/commit", "/wxa/submit_audit", "/wxa/release", "/cgi-bin/component/setprivacysetting"} {
		wantCode(t, "official account "+path, ce.wxaAs(t, oaTok, path, map[string]any{}), CodeAPIUnauthorizedToComponent)
	}
	wantCode(t, "official account get_page", ce.wxaAs(t, oaTok, "/wxa/get_page", nil), CodeAPIUnauthorizedToComponent)
	wantCode(t, "component token", ce.wxaAs(t, ce.ctok, "/wxa/get_page", nil), CodeInvalidCredential)
	wantCode(t, "no token", ce.call(t, "/wxa/get_page", nil, nil), CodeAccessTokenMissing)
	if st := withoutExt(ce.sb.CodeStats(oa1)); st != (CodeStats{}) {
		t.Errorf("official account stats %+v", st)
	}
}

func TestCommitRules(t *testing.T) {
	ce := newCodeEnv(t)
	wantCode(t, "get_page before a commit", ce.wxa(t, "/wxa/get_page", nil), CodeNoCommittedCode)
	with := func(k string, v any) map[string]any {
		b := commitBody(ce.templateID, "1.0.0")
		b[k] = v
		return b
	}
	cases := []struct {
		name string
		body any
		code int
	}{
		{"quoted template_id", with("template_id", "1"), CodeInvalidTemplateID},
		{"unknown template", with("template_id", 999), CodeInvalidTemplateID},
		{"ext_json an object", with("ext_json", map[string]any{"ext": 1}), CodeInvalidExtJSON},
		{"ext_json not JSON", with("ext_json", "{ext:1}"), CodeInvalidExtJSON},
		{"ext_json a list", with("ext_json", "[]"), CodeInvalidExtJSON},
		{"ext_json empty", with("ext_json", ""), CodeInvalidExtJSON},
		{"page not in the template", with("ext_json", `{"pages":["pages/index/index","pages/cart/index"]}`), CodeExtJSONBadPath},
		{"empty pages", with("ext_json", `{"pages":[]}`), CodeExtJSONNoPages},
		{"long user_version", with("user_version", strings.Repeat("版", 65)), CodeDataFormat},
		{"malformed body", []byte(`{"template_id":`), CodeDataFormat},
		{"empty body", []byte(``), CodeEmptyPostData},
	}
	for _, c := range cases {
		wantCode(t, c.name, ce.wxa(t, "/wxa/commit", c.body), c.code)
	}
	if st := ce.sb.CodeStats(mp1); st.Commits != 0 || st.Version != "" {
		t.Fatalf("refused commits counted: %+v", st)
	}

	wantCode(t, "commit", ce.wxa(t, "/wxa/commit", with("ext_json", `{"pages":["pages/order/list","pages/index/index"]}`)), 0)
	a := ce.wxa(t, "/wxa/get_page", nil)
	wantCode(t, "get_page", a, 0)
	if pages, _ := a["page_list"].([]any); len(pages) != 2 || pages[0] != "pages/order/list" {
		t.Errorf("page_list %v", a["page_list"])
	}
	ce.commit(t, "1.0.1") // no pages in ext_json: the template's
	if pages, _ := ce.wxa(t, "/wxa/get_page", nil)["page_list"].([]any); len(pages) != 3 || pages[0] != "pages/index/index" {
		t.Errorf("page_list %v", pages)
	}
	if st := ce.sb.CodeStats(mp1); st.Commits != 2 || st.Version != "1.0.1" || st.AuditStatus != "" {
		t.Errorf("stats %+v", st)
	}
	// Served counts every call that reached commit's logic: all but the empty body.
	if ce.sb.Calls("commit") != len(cases)+2 || ce.sb.Served("commit") != len(cases)+1 {
		t.Errorf("calls %d, served %d", ce.sb.Calls("commit"), ce.sb.Served("commit"))
	}
}

func TestPrivacyScanAfterCommit(t *testing.T) {
	ce := newCodeEnv(t, func(c *Config) { c.PrivacyScanDuration = time.Minute })
	wantCode(t, "privacy info before a commit", ce.wxa(t, "/wxa/security/get_code_privacy_info", nil), CodeNoCommittedCode)
	ce.commit(t, "1.0.0")
	wantCode(t, "privacy info while scanning", ce.wxa(t, "/wxa/security/get_code_privacy_info", nil), CodePrivacyScanPending)
	wantCode(t, "submit while scanning", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodePrivacyScanPending)

	ce.clock.Add(time.Minute)
	a := ce.wxa(t, "/wxa/security/get_code_privacy_info", nil)
	wantCode(t, "privacy info after the scan", a, 0)
	if l, ok := a["without_auth_list"].([]any); !ok || len(l) != 0 {
		t.Errorf("answer %v", a)
	}

	ce.commit(t, "1.0.1") // each commit starts the scan again
	wantCode(t, "submit after a new commit", ce.wxa(t, "/wxa/submit_audit", map[string]any{}), CodePrivacyScanPending)
	ce.clock.Add(time.Minute)
	ce.submit(t)
	if st := ce.sb.CodeStats(mp1); st.Submits != 1 || st.Commits != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestGetCategory(t *testing.T) {
	ce := newCodeEnv(t)
	a := ce.wxa(t, "/wxa/get_category", nil)
	wantCode(t, "get_category", a, 0)
	list, _ := a["category_list"].([]any)
	if len(list) != 2 {
		t.Fatalf("category_list %v", a)
	}
	first := answer(list[0].(map[string]any))
	if first.str("first_class") != "商家自营" || first.str("second_class") != "生鲜果蔬" ||
		first.num("first_id") != 304 || first.num("second_id") != 722 {
		t.Errorf("first category %v", first)
	}
	for i, acct := range append(DefaultAccounts(), GeneratedAccounts(4)...) {
		if acct.IsMiniProgram() && len(categoriesOf(acct)) != 2 {
			t.Errorf("account %d has %d categories", i, len(categoriesOf(acct)))
		}
	}
	// Accounts configured without ids get stable ones.
	got := categoriesOf(Account{Categories: []Category{{First: "工具", Second: "天气"}}})
	if again := categoriesOf(Account{Categories: []Category{{First: "工具", Second: "天气"}}}); got[0].FirstID == 0 || got[0] != again[0] {
		t.Errorf("made-up ids %v %v", got, again)
	}
}

func TestGetQRCode(t *testing.T) {
	ce := newCodeEnv(t)
	get := func() *http.Response {
		resp, err := http.Get(ce.base + "/wxa/get_qrcode?" + url.Values{"access_token": {ce.tok}, "path": {"pages/index/index?a=1"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get()
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(body), `"errcode":86001`) {
		t.Fatalf("before a commit: %s %s", resp.Header.Get("Content-Type"), body)
	}
	ce.commit(t, "1.0.0")
	resp = get()
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "QRCode.jpg") {
		t.Fatalf("HTTP %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("not a JPEG QR code: %v", err)
	}
}

func TestCodeStatusPage(t *testing.T) {
	ce := newCodeEnv(t)
	ce.sb.AddDraft("9.9.9", `<script>alert("草稿")</script>`)
	ce.commit(t, "2.0.0")
	ce.submit(t)
	wantCode(t, "release", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	ce.commit(t, "2.1.0<b>")
	status, page := ce.page(t, "/sandbox/", nil)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	if !containsAll(page, `id="code-`+mp1+`"`, "2.1.0&lt;b&gt;", "2.0.0 · 审核通过 passed", `id="audit-quota">999<`,
		"&lt;script&gt;alert(&#34;草稿&#34;)&lt;/script&gt;", `id="template-1"`, "delay 0 (即时 at once)") {
		t.Errorf("status page lacks the code section:\n%s", page)
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "2.1.0<b>") {
		t.Error("status page does not escape")
	}
}

package sandbox

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func postFan(t *testing.T, e *env, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(e.base+fanPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFanPage(t *testing.T) {
	e, p := newPlatformEnv(t, false)
	status, page := e.page(t, fanPath, nil)
	if status != http.StatusOK || !strings.Contains(page, `id="no-accounts"`) {
		t.Fatalf("no account authorized: HTTP %d", status)
	}

	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, oa1)
	tok := e.queryAuth(t, ctok, code).str("authorizer_access_token")
	// The platform answers with a passive reply and sends a customer-service
	// message too (synchronously, so the page can show it at once).
	p.set(func(_ string, msg map[string]string) string {
		if err := p.sendText(tok, msg["FromUserName"], "客服: <i>"+msg["Content"]+"</i>"); err != nil {
			p.bgError(err.Error())
		}
		return textReplyXML(msg, "收到 <b>"+msg["Content"]+"</b>")
	})

	_, page = e.page(t, fanPath, nil)
	if !containsAll(page, `<option value="`+oa1+`" selected>`, `id="fan-openid"`) || strings.Contains(page, mp1) {
		t.Fatalf("form lists the wrong accounts:\n%s", page)
	}
	openid := regexp.MustCompile(`id="fan-openid" value="([^"]+)"`).FindStringSubmatch(page)
	if openid == nil || len(openid[1]) != 28 || openid[1][0] != 'o' {
		t.Fatalf("no generated openid: %v", openid)
	}

	status, page = postFan(t, e, url.Values{"appid": {oa1}, "openid": {openid[1]}, "content": {"<hi>"}})
	if status != http.StatusOK || !containsAll(page, `id="fan-reply"`, "收到 &lt;b&gt;&lt;hi&gt;&lt;/b&gt;", "客服: &lt;i&gt;&lt;hi&gt;&lt;/i&gt;", `value="`+openid[1]+`"`) {
		t.Fatalf("after sending: HTTP %d\n%s", status, page)
	}
	if strings.Contains(page, "<hi>") || strings.Contains(page, "<b>") {
		t.Error("the page does not escape")
	}
	if errs := p.errors(); len(errs) > 0 {
		t.Fatalf("platform: %v", errs)
	}
	// Refreshing shows what the fan received since.
	_, page = e.page(t, fanPath, url.Values{"appid": {oa1}, "openid": {openid[1]}})
	if !containsAll(page, "客服: &lt;i&gt;&lt;hi&gt;&lt;/i&gt;", `id="fan-refresh"`) {
		t.Error("refreshed page lacks the customer-service message")
	}

	// Only authorized accounts; a failing platform is shown, not hidden.
	if status, _ := postFan(t, e, url.Values{"appid": {mp1}, "openid": {"o1"}, "content": {"x"}}); status != http.StatusBadRequest {
		t.Errorf("unauthorized account: HTTP %d", status)
	}
	if status, _ := postFan(t, e, url.Values{"appid": {oa1}, "openid": {"o 1"}, "content": {"x"}}); status != http.StatusBadRequest {
		t.Errorf("bad openid: HTTP %d", status)
	}
	p.set(func(string, map[string]string) string { return "<html>oops</html>" })
	status, page = postFan(t, e, url.Values{"appid": {oa1}, "openid": {"o1"}, "content": {"x"}})
	if status != http.StatusOK || !containsAll(page, `id="fan-error"`, "passive reply rejected") {
		t.Errorf("failing platform: HTTP %d\n%s", status, page)
	}
}

func TestFanPageWithoutMessageURL(t *testing.T) {
	e := newEnv(t)
	e.authorizeDirect(t, oa1)
	_, page := e.page(t, fanPath, nil)
	if !strings.Contains(page, `id="messages-off"`) || strings.Contains(page, `id="fan-send"`) {
		t.Errorf("page without MessageURL:\n%s", page)
	}
	if _, status := e.page(t, "/sandbox/", nil); !strings.Contains(status, "消息推送关闭 message pushes off") {
		t.Error("status page does not say message pushes are off")
	}
}

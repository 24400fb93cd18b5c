package authpages

import (
	"strings"
	"testing"
)

// hostile is put in every text field; it must only ever appear escaped.
const (
	hostile        = `<script>alert("x")</script>&'tenant`
	hostileEscaped = `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;tenant`
)

// Values that must never reach an href or src: only absolute http(s) URLs do.
var badURLs = []string{
	"javascript:alert(1)",
	"JavaScript:alert(document.cookie)",
	" javascript:alert(1)",
	"java\tscript:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	"//evil.example/x",
	"/relative",
	`https://ok.example/"><script>alert(1)</script>`, // valid URL, but the quote must not close the attribute
}

func TestPagesEscapeHostileValues(t *testing.T) {
	for _, bad := range badURLs {
		pages := map[string]string{
			"start": startPage(startView{
				Tenant: hostile, KindZH: hostile, KindEN: hostile, BizAppID: hostile,
				PCURL: bad, MobileURL: bad, Minutes: 20,
			}),
			"result": resultPage(resultView{
				Name: hostile, AppID: hostile, Avatar: bad, KindZH: hostile, KindEN: hostile,
				Principal: hostile, Tenant: hostile, ContinueURL: bad,
				Permissions: []permissionSet{{ID: 1, ZH: hostile, EN: hostile}},
			}),
			"error": errorPage(errorView{Status: 400, ZH: hostile, EN: hostile, RestartURL: bad, RequestID: hostile}),
		}
		for name, body := range pages {
			if strings.Contains(body, "<script") || strings.Contains(body, `"x"`) {
				t.Errorf("%s page, URL %q: unescaped markup in\n%s", name, bad, body)
			}
			if !strings.Contains(body, hostileEscaped) {
				t.Errorf("%s page: the hostile text is not shown escaped", name)
			}
			low := strings.ToLower(body)
			if strings.Contains(low, "javascript:") || strings.Contains(low, "data:text") || strings.Contains(body, "evil.example") {
				t.Errorf("%s page: URL %q reached the page", name, bad)
			}
			for _, attr := range []string{`href="`, `src="`} {
				for rest := body; ; {
					_, after, ok := strings.Cut(rest, attr)
					if !ok {
						break
					}
					val, _, _ := strings.Cut(after, `"`)
					if val != "#" && !strings.HasPrefix(val, "https://") {
						t.Errorf("%s page: %s%s\" for URL %q", name, attr, val, bad)
					}
					rest = after
				}
			}
		}
	}
}

func TestPagesKeepGoodURLs(t *testing.T) {
	const link = "https://mp.weixin.qq.com/cgi-bin/componentloginpage?a=1&b=x%2By"
	const want = `href="https://mp.weixin.qq.com/cgi-bin/componentloginpage?a=1&amp;b=x%2By"`
	start := startPage(startView{Tenant: "t", PCURL: link, MobileURL: link + "#wechat_redirect", Minutes: 20})
	if !strings.Contains(start, `id="authorize-pc" `+want) || !strings.Contains(start, `id="authorize-mobile" `+want[:len(want)-1]+`#wechat_redirect"`) {
		t.Errorf("start page links changed:\n%s", start)
	}
	result := resultPage(resultView{Name: "n", Avatar: "http://wx.qlogo.cn/a.png", ContinueURL: link})
	if !strings.Contains(result, `<img src="http://wx.qlogo.cn/a.png"`) || !strings.Contains(result, `id="continue" `+want) {
		t.Errorf("result page links changed:\n%s", result)
	}
	if e := errorPage(errorView{Status: 400, RestartURL: link}); !strings.Contains(e, `id="restart" `+want) {
		t.Errorf("error page link changed:\n%s", e)
	}
}

func TestPagesOmitEmptyOptionalParts(t *testing.T) {
	result := resultPage(resultView{Name: "n", AppID: "wx1"})
	for _, absent := range []string{"<img", `id="continue"`, "wx1 · "} {
		if strings.Contains(result, absent) {
			t.Errorf("result page without avatar, principal or return URL contains %q", absent)
		}
	}
	if !strings.Contains(result, "<li>无 None</li>") {
		t.Error("result page without permissions does not say so")
	}
	e := errorPage(errorView{Status: 404})
	if strings.Contains(e, `id="restart"`) || strings.Contains(e, "Request ID") || !strings.Contains(e, "HTTP 404</p>") {
		t.Errorf("bare error page:\n%s", e)
	}
}

package sandbox

import (
	"fmt"
	"testing"
)

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestModifyDomain(t *testing.T) {
	ce := newCodeEnv(t)
	modify := func(body map[string]any) answer { return ce.wxa(t, "/wxa/modify_domain", body) }
	a := modify(map[string]any{"action": "add",
		"requestdomain":   []string{"https://API.shop.example.com", "http://plain.example.com", "https://10.0.0.1", "https://shop.example.com/path"},
		"wsrequestdomain": []string{"wss://ws.shop.example.com:8443"},
		"udpdomain":       []string{"https://udp.example.com"}})
	wantCode(t, "add", a, 0)
	if got := strs(a["requestdomain"]); len(got) != 1 || got[0] != "https://api.shop.example.com" {
		t.Errorf("requestdomain %v", got)
	}
	if got := strs(a["invalid_requestdomain"]); len(got) != 3 {
		t.Errorf("invalid_requestdomain %v", got)
	}
	if got := strs(a["invalid_udpdomain"]); len(got) != 1 || len(strs(a["wsrequestdomain"])) != 1 {
		t.Errorf("answer %v", a)
	}
	wantCode(t, "only invalid domains", modify(map[string]any{"action": "add", "requestdomain": []string{"http://x.example.com"}}), CodeNoDomainToModify)
	wantCode(t, "no action", modify(map[string]any{"requestdomain": []string{"https://x.example.com"}}), CodeDataFormat)
	wantCode(t, "not a list", modify(map[string]any{"action": "add", "requestdomain": "https://x.example.com"}), CodeDataFormat)

	// The _directly variant keeps the same lists here.
	wantCode(t, "directly", ce.wxa(t, "/wxa/modify_domain_directly", map[string]any{"action": "add", "downloaddomain": []string{"https://cdn.example.com"}}), 0)
	got := modify(map[string]any{"action": "get"})
	if len(strs(got["requestdomain"])) != 1 || len(strs(got["downloaddomain"])) != 1 {
		t.Errorf("get %v", got)
	}
	// api_get_authorizer_info shows them.
	info := ce.call(t, "/cgi-bin/component/api_get_authorizer_info", tokenQuery(ce.ctok), map[string]string{"component_appid": testComponent, "authorizer_appid": mp1})
	if n := info.obj("authorizer_info").obj("MiniProgramInfo").obj("network"); len(strs(n["RequestDomain"])) != 1 || len(strs(n["DownloadDomain"])) != 1 {
		t.Errorf("network %v", n)
	}

	wantCode(t, "delete", modify(map[string]any{"action": "delete", "requestdomain": []string{"https://api.shop.example.com"}}), 0)
	got = modify(map[string]any{"action": "set", "uploaddomain": []string{"https://up.example.com"}})
	if len(strs(got["requestdomain"])) != 0 || len(strs(got["downloaddomain"])) != 0 || len(strs(got["uploaddomain"])) != 1 {
		t.Errorf("set %v", got)
	}
	many := make([]string, maxServerDomains+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://h%d.example.com", i)
	}
	wantCode(t, "too many", modify(map[string]any{"action": "set", "requestdomain": many}), CodeDomainLimit)
}

func TestWebviewDomain(t *testing.T) {
	ce := newCodeEnv(t)
	set := func(action string, domains ...string) answer {
		return ce.wxa(t, "/wxa/setwebviewdomain", map[string]any{"action": action, "webviewdomain": domains})
	}
	wantCode(t, "no action", ce.wxa(t, "/wxa/setwebviewdomain", map[string]any{}), CodeWebviewNotSet)
	wantCode(t, "add", set("add", "https://www.example.com", "https://m.example.com"), 0)
	wantCode(t, "add again", set("add", "https://www.example.com"), CodeWebviewUnchanged)
	for _, bad := range []string{"http://www.example.com", "https://www.example.com:8443", "https://1.2.3.4", "https://www.example.com/a"} {
		wantCode(t, bad, set("add", bad), CodeWebviewNotRegistered)
	}
	wantCode(t, "delete", set("delete", "https://m.example.com"), 0)
	g := ce.wxa(t, "/wxa/setwebviewdomain_directly", map[string]any{"action": "get"})
	if got := strs(g["webviewdomain"]); len(got) != 1 || got[0] != "https://www.example.com" {
		t.Errorf("get %v", g)
	}
	many := make([]string, maxWebviewDomains+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://h%d.example.com", i)
	}
	wantCode(t, "too many", set("set", many...), CodeWebviewLimit)
}

func TestTesters(t *testing.T) {
	ce := newCodeEnv(t)
	bind := ce.wxa(t, "/wxa/bind_tester", map[string]any{"wechatid": "tester_1"})
	wantCode(t, "bind", bind, 0)
	if bind.str("userstr") == "" {
		t.Fatalf("answer %v", bind)
	}
	wantCode(t, "bind again", ce.wxa(t, "/wxa/bind_tester", map[string]any{"wechatid": "tester_1"}), CodeTesterBound)
	wantCode(t, "no wechatid", ce.wxa(t, "/wxa/bind_tester", map[string]any{}), CodeTesterNotFound)
	wantCode(t, "bind another", ce.wxa(t, "/wxa/bind_tester", map[string]any{"wechatid": "tester_2"}), 0)
	members := func() []any {
		a := ce.wxa(t, "/wxa/memberauth", map[string]any{"action": "get_experiencer"})
		wantCode(t, "memberauth", a, 0)
		m, _ := a["members"].([]any)
		return m
	}
	if m := members(); len(m) != 2 || m[0].(map[string]any)["userstr"] != bind.str("userstr") {
		t.Errorf("members %v", m)
	}
	wantCode(t, "unbind by userstr", ce.wxa(t, "/wxa/unbind_tester", map[string]any{"userstr": bind.str("userstr")}), 0)
	wantCode(t, "unbind by wechatid", ce.wxa(t, "/wxa/unbind_tester", map[string]any{"wechatid": "tester_2"}), 0)
	wantCode(t, "unbind nobody", ce.wxa(t, "/wxa/unbind_tester", map[string]any{}), CodeDataFormat)
	wantCode(t, "memberauth bad action", ce.wxa(t, "/wxa/memberauth", map[string]any{"action": "list"}), CodeDataFormat)
	if m := members(); len(m) != 0 {
		t.Errorf("members after unbinding %v", m)
	}
}

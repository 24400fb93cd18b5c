package sandbox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func loginQuery(pre string, kv ...string) url.Values {
	q := url.Values{
		"component_appid": {testComponent}, "pre_auth_code": {pre},
		"redirect_uri": {"https://platform.example/auth/callback?state=abc"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// listed returns which accounts have an Authorize button on a page.
func listed(sb *Sandbox, body string) map[string]bool {
	out := make(map[string]bool)
	for _, a := range sb.Accounts() {
		if strings.Contains(body, `id="authorize-`+a.AppID+`"`) {
			out[a.AppID] = true
		}
	}
	return out
}

func TestLoginPageListsAccountsByAuthType(t *testing.T) {
	e := newEnv(t)
	pre := e.sb.CreatePreAuthCode()
	var mps, oas []string
	for _, a := range e.sb.Accounts() {
		if a.IsMiniProgram() {
			mps = append(mps, a.AppID)
		} else {
			oas = append(oas, a.AppID)
		}
	}
	if len(mps) < 3 || len(oas) < 3 {
		t.Fatalf("default accounts: %d mini programs, %d official accounts", len(mps), len(oas))
	}
	cases := []struct {
		name string
		kv   []string
		want []string
	}{
		{"default is both", nil, append(append([]string{}, mps...), oas...)},
		{"auth_type 1", []string{"auth_type", "1"}, oas},
		{"auth_type 2", []string{"auth_type", "2"}, mps},
		{"auth_type 3", []string{"auth_type", "3"}, append(append([]string{}, mps...), oas...)},
		{"biz_appid wins over auth_type", []string{"auth_type", "1", "biz_appid", mp2}, []string{mp2}},
	}
	for _, path := range []string{"/cgi-bin/componentloginpage", "/safe/bindcomponent"} {
		for _, c := range cases {
			q := loginQuery(pre, c.kv...)
			if path == "/safe/bindcomponent" {
				q.Set("action", "bindcomponent")
				q.Set("no_scan", "1")
			}
			status, body := e.page(t, path, q)
			if status != http.StatusOK {
				t.Fatalf("%s %s: HTTP %d", path, c.name, status)
			}
			got := listed(e.sb, body)
			if len(got) != len(c.want) {
				t.Errorf("%s %s: listed %v, want %v", path, c.name, got, c.want)
			}
			for _, appid := range c.want {
				if !got[appid] {
					t.Errorf("%s %s: %s not listed", path, c.name, appid)
				}
			}
			if !containsAll(body, "授权 Authorize", `src="/sandbox/avatar/`) || strings.Contains(body, `src="http`) || strings.Contains(body, `href="http`) {
				t.Errorf("%s %s: page lacks its content or loads external resources", path, c.name)
			}
		}
	}
	if e.sb.Calls("componentloginpage") != len(cases) || e.sb.Calls("bindcomponent") != len(cases) {
		t.Errorf("page counters %d %d", e.sb.Calls("componentloginpage"), e.sb.Calls("bindcomponent"))
	}
}

func TestLoginPageRefusesBadParameters(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	pre := e.preAuthCode(t, ctok)
	used := e.preAuthCode(t, ctok)
	e.confirm(t, mp1, used, "https://platform.example/cb")
	e.rc.next(t)
	expired := e.sb.CreatePreAuthCode()
	e.clock.Add(10 * time.Minute)
	pre = e.preAuthCode(t, ctok)

	cases := []struct {
		name string
		q    url.Values
		msg  string
	}{
		{"unknown pre_auth_code", loginQuery("preauthcode@@@nope"), "预授权码无效"},
		{"expired pre_auth_code", loginQuery(expired), "预授权码已过期"},
		{"used pre_auth_code", loginQuery(used), "预授权码已被使用"},
		{"wrong component", loginQuery(pre, "component_appid", "wx0000000000000000"), "第三方平台 appid 无效"},
		{"bad auth_type", loginQuery(pre, "auth_type", "7"), "auth_type"},
		{"missing redirect_uri", loginQuery(pre, "redirect_uri", ""), "redirect_uri"},
		{"relative redirect_uri", loginQuery(pre, "redirect_uri", "/cb"), "redirect_uri"},
		{"unknown biz_appid", loginQuery(pre, "biz_appid", "wx0000000000000000"), "biz_appid"},
	}
	for _, c := range cases {
		status, body := e.page(t, "/cgi-bin/componentloginpage", c.q)
		if status != http.StatusBadRequest || !strings.Contains(body, c.msg) || strings.Contains(body, "authorize-") {
			t.Errorf("%s: HTTP %d, body has %q: %v", c.name, status, c.msg, strings.Contains(body, c.msg))
		}
	}
	q := loginQuery(pre)
	q.Set("action", "other")
	if status, _ := e.page(t, "/safe/bindcomponent", q); status != http.StatusBadRequest {
		t.Errorf("bindcomponent without action=bindcomponent: HTTP %d", status)
	}
}

func TestConfirmRedirectsWithAuthCodeAfterPushingAuthorized(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	pre := e.preAuthCode(t, ctok)
	resp := e.confirm(t, mp1, pre, "https://platform.example/auth/callback?state=s%2F1&x=2", "auth_type", "2")

	// Push-then-redirect: the push has been received before the redirect.
	ev, ok := e.rc.pending()
	if !ok {
		t.Fatal("redirect came before the authorized push")
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("confirm: HTTP %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if loc.Host != "platform.example" || loc.Path != "/auth/callback" || q.Get("state") != "s/1" || q.Get("x") != "2" ||
		q.Get("expires_in") != "600" || !strings.HasPrefix(q.Get("auth_code"), "queryauthcode@@@") {
		t.Fatalf("redirect %s", loc)
	}
	if !strings.HasPrefix(loc.RawQuery, "state=s%2F1&x=2&") {
		t.Errorf("existing query not kept as is: %s", loc.RawQuery)
	}
	f := ev.Fields
	wantExp := strconv.FormatInt(e.clock.Now().Add(10*time.Minute).Unix(), 10)
	if f["InfoType"] != InfoAuthorized || f["AuthorizerAppid"] != mp1 || f["AuthorizationCode"] != q.Get("auth_code") ||
		f["AuthorizationCodeExpiredTime"] != wantExp || f["PreAuthCode"] != pre || f["AppId"] != testComponent {
		t.Fatalf("authorized push %v", f)
	}
	if !e.sb.IsAuthorized(mp1) {
		t.Fatal("not authorized after confirm")
	}

	// The pre_auth_code is used now.
	resp = e.confirm(t, mp2, pre, "https://platform.example/cb")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "预授权码已被使用") {
		t.Fatalf("second confirm with the same pre_auth_code: HTTP %d", resp.StatusCode)
	}
	if _, ok := e.rc.pending(); ok {
		t.Fatal("a refused confirm pushed an event")
	}

	// The auth_code is single-use.
	info := e.queryAuth(t, ctok, q.Get("auth_code"))
	if info.str("authorizer_appid") != mp1 || info.str("authorizer_access_token") == "" {
		t.Fatalf("authorization_info %v", info)
	}
	wantCode(t, "second use of auth_code", e.call(t, "/cgi-bin/component/api_query_auth", tokenQuery(ctok),
		map[string]string{"component_appid": testComponent, "authorization_code": q.Get("auth_code")}), CodeAuthCodeInvalid)
}

func TestConfirmRefusesAccountOutsideAuthType(t *testing.T) {
	e := newEnv(t)
	pre := e.sb.CreatePreAuthCode()
	resp := e.confirm(t, oa1, pre, "https://platform.example/cb", "auth_type", "2")
	if resp.StatusCode != http.StatusBadRequest || e.sb.IsAuthorized(oa1) {
		t.Fatalf("HTTP %d, authorized %v", resp.StatusCode, e.sb.IsAuthorized(oa1))
	}
	// The pre_auth_code was not consumed by the refused attempt.
	if resp := e.confirm(t, mp1, pre, "https://platform.example/cb", "auth_type", "2"); resp.StatusCode != http.StatusFound {
		t.Fatalf("valid confirm after refused one: HTTP %d", resp.StatusCode)
	}
	e.rc.next(t)
}

func TestAuthCodeExpires(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, mp1)
	e.clock.Add(10 * time.Minute)
	wantCode(t, "expired auth_code", e.call(t, "/cgi-bin/component/api_query_auth", tokenQuery(ctok),
		map[string]string{"component_appid": testComponent, "authorization_code": code}), CodeAuthCodeExpired)
	wantCode(t, "unknown auth_code", e.call(t, "/cgi-bin/component/api_query_auth", tokenQuery(ctok),
		map[string]string{"component_appid": testComponent, "authorization_code": "queryauthcode@@@nope"}), CodeAuthCodeInvalid)
}

func TestReauthorizationReplacesRefreshToken(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	code, push := e.authorize(t, ctok, oa1)
	if push.Fields["InfoType"] != InfoAuthorized {
		t.Fatalf("first push %v", push.Fields)
	}
	old := e.queryAuth(t, ctok, code).str("authorizer_refresh_token")

	code, push = e.authorize(t, ctok, oa1)
	if push.Fields["InfoType"] != InfoUpdateAuthorized || push.Fields["AuthorizationCode"] != code {
		t.Fatalf("re-authorization push %v", push.Fields)
	}
	fresh := e.queryAuth(t, ctok, code).str("authorizer_refresh_token")
	if fresh == old || fresh != e.sb.RefreshToken(oa1) {
		t.Fatalf("refresh token not replaced: old %q new %q", old, fresh)
	}
	wantCode(t, "old refresh token", e.authorizerToken(t, ctok, oa1, old), CodeRefreshTokenInvalid)
	wantCode(t, "new refresh token", e.authorizerToken(t, ctok, oa1, fresh), 0)
}

func TestRevokePushesUnauthorizedAndBlocksTheAccount(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, mp1)
	info := e.queryAuth(t, ctok, code)
	atok, refresh := info.str("authorizer_access_token"), info.str("authorizer_refresh_token")

	if err := e.sb.Revoke(context.Background(), mp1); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	ev, ok := e.rc.pending()
	if !ok || ev.Fields["InfoType"] != InfoUnauthorized || ev.Fields["AuthorizerAppid"] != mp1 {
		t.Fatalf("unauthorized push %v (received %v)", ev.Fields, ok)
	}
	if _, has := ev.Fields["AuthorizationCode"]; has {
		t.Error("unauthorized push carries an AuthorizationCode")
	}
	wantCode(t, "api_authorizer_token after revoke", e.authorizerToken(t, ctok, mp1, refresh), CodeNotAuthorized)
	wantCode(t, "api_get_authorizer_info after revoke", e.call(t, "/cgi-bin/component/api_get_authorizer_info", tokenQuery(ctok),
		map[string]string{"component_appid": testComponent, "authorizer_appid": mp1}), CodeNotAuthorized)
	wantCode(t, "authorizer token after revoke", e.basicInfo(t, atok), CodeInvalidCredential)
	if e.sb.RefreshToken(mp1) != "" || e.sb.IsAuthorized(mp1) {
		t.Error("sandbox still reports the account authorized")
	}
	if err := e.sb.Revoke(context.Background(), mp1); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("second Revoke: %v", err)
	}
	if err := e.sb.Revoke(context.Background(), "wx0000000000000000"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("Revoke unknown: %v", err)
	}

	// Authorizing again after a revocation is a fresh `authorized`.
	_, push := e.authorize(t, ctok, mp1)
	if push.Fields["InfoType"] != InfoAuthorized {
		t.Fatalf("push after re-authorizing a revoked account: %v", push.Fields)
	}
}

func TestRevokeEndpoint(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	e.authorize(t, ctok, oa1)
	post := func(appid string) answer {
		t.Helper()
		return e.call(t, "/sandbox/revoke", url.Values{"appid": {appid}}, []byte{})
	}
	a := post(oa1)
	wantCode(t, "revoke", a, 0)
	if ev := e.rc.next(t); ev.Fields["InfoType"] != InfoUnauthorized || e.sb.IsAuthorized(oa1) {
		t.Fatalf("push %v, authorized %v", ev.Fields, e.sb.IsAuthorized(oa1))
	}
	if a := post(oa1); a["_status"] != float64(http.StatusConflict) || a.code() != CodeNotAuthorized {
		t.Errorf("revoke twice: %v", a)
	}
	if a := post("wx0000000000000000"); a["_status"] != float64(http.StatusNotFound) {
		t.Errorf("revoke unknown: %v", a)
	}
	if a := e.call(t, "/sandbox/revoke", url.Values{"appid": {oa1}}, nil); a["_status"] != float64(http.StatusMethodNotAllowed) {
		t.Errorf("GET revoke: %v", a)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sb.Authorize(ctx, mp1, "preauthcode@@@nope"); !errors.Is(err, ErrUnknownPreAuthCode) {
		t.Errorf("unknown pre_auth_code: %v", err)
	}
	pre := e.sb.CreatePreAuthCode()
	if _, err := e.sb.Authorize(ctx, "wx0000000000000000", pre); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := e.sb.Authorize(ctx, mp1, pre); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	e.rc.next(t)
	if _, err := e.sb.Authorize(ctx, mp2, pre); !errors.Is(err, ErrPreAuthCodeUsed) {
		t.Errorf("used pre_auth_code: %v", err)
	}
	pre = e.sb.CreatePreAuthCode()
	e.clock.Add(10 * time.Minute)
	if _, err := e.sb.Authorize(ctx, mp2, pre); !errors.Is(err, ErrPreAuthCodeExpired) {
		t.Errorf("expired pre_auth_code: %v", err)
	}
	if e.sb.IsAuthorized(mp2) {
		t.Error("a refused Authorize authorized the account")
	}
}

func TestAuthorizeReportsFailedPushButStillAuthorizes(t *testing.T) {
	e := newEnv(t)
	e.rc.setAnswer(http.StatusOK, "fail")
	code, err := e.sb.Authorize(context.Background(), mp1, e.sb.CreatePreAuthCode())
	if !isPushError(err) || code == "" || !e.sb.IsAuthorized(mp1) {
		t.Fatalf("code %q, err %v, authorized %v", code, err, e.sb.IsAuthorized(mp1))
	}
	e.rc.next(t)
}

func TestPushDelayRedirectsBeforePushing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PushDelay = time.Millisecond })
	gate := make(chan struct{})
	e.rc.mu.Lock()
	e.rc.gate = gate // the receiver holds every push until the gate opens
	e.rc.mu.Unlock()

	resp := e.confirm(t, mp1, e.sb.CreatePreAuthCode(), "https://platform.example/cb?state=z")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("confirm: HTTP %d", resp.StatusCode)
	}
	if _, ok := e.rc.pending(); ok {
		t.Fatal("push acknowledged before the redirect")
	}
	close(gate)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	ev := e.rc.next(t)
	if ev.Fields["InfoType"] != InfoAuthorized || ev.Fields["AuthorizationCode"] != loc.Query().Get("auth_code") {
		t.Fatalf("delayed push %v", ev.Fields)
	}
}

func TestAuthDomainCheck(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AuthDomain = "platform.example" })
	pre := e.sb.CreatePreAuthCode()
	if status, body := e.page(t, "/cgi-bin/componentloginpage", loginQuery(pre)); status != http.StatusBadRequest || !strings.Contains(body, "授权入口页所在域名") {
		t.Errorf("no Referer: HTTP %d", status)
	}
	if status, _ := e.page(t, "/cgi-bin/componentloginpage", loginQuery(pre), "Referer", "https://evil.example/start"); status != http.StatusBadRequest {
		t.Errorf("foreign Referer: HTTP %d", status)
	}
	if status, _ := e.page(t, "/cgi-bin/componentloginpage", loginQuery(pre), "Referer", "https://www.platform.example/auth/start"); status != http.StatusOK {
		t.Errorf("Referer under the domain: HTTP %d", status)
	}
	q := loginQuery(pre, "redirect_uri", "https://evil.example/cb")
	if status, _ := e.page(t, "/cgi-bin/componentloginpage", q, "Referer", "https://platform.example/"); status != http.StatusBadRequest {
		t.Errorf("redirect_uri outside the domain: HTTP %d", status)
	}
}

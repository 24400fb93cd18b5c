package sandbox

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestComponentTokenRejectsWrongCredentials(t *testing.T) {
	e := newEnv(t)
	ticket := e.ticket(t)
	cases := []struct {
		name                  string
		appid, secret, ticket string
		want                  int
	}{
		{"missing appid", "", testSecret, ticket, CodeAppIDMissing},
		{"wrong appid", "wx0000000000000000", testSecret, ticket, CodeInvalidComponent},
		{"missing secret", testComponent, "", ticket, CodeAppSecretMissing},
		{"wrong secret", testComponent, "not-the-secret", ticket, CodeInvalidAppSecret},
		{"unknown ticket", testComponent, testSecret, "ticket@@@made-up", CodeTicketInvalid},
		{"missing ticket", testComponent, testSecret, "", CodeTicketInvalid},
	}
	for _, c := range cases {
		a := e.call(t, "/cgi-bin/component/api_component_token", nil, map[string]string{
			"component_appid": c.appid, "component_appsecret": c.secret, "component_verify_ticket": c.ticket,
		})
		wantCode(t, c.name, a, c.want)
		if a.str("component_access_token") != "" || !strings.Contains(a.str("errmsg"), " rid: ") {
			t.Errorf("%s: answer %v", c.name, a)
		}
		if strings.Contains(a.str("errmsg"), testSecret) {
			t.Errorf("%s: errmsg leaks the secret", c.name)
		}
	}
}

func TestComponentTokenIssueAndTicketExpiry(t *testing.T) {
	e := newEnv(t)
	ticket := e.ticket(t)
	req := map[string]string{"component_appid": testComponent, "component_appsecret": testSecret, "component_verify_ticket": ticket}

	a := e.call(t, "/cgi-bin/component/api_component_token", nil, req)
	wantCode(t, "fresh ticket", a, 0)
	if a["expires_in"] != float64(7200) || len(a.str("component_access_token")) < 60 {
		t.Fatalf("answer %v", a)
	}
	if _, ok := a["errcode"]; ok {
		t.Errorf("success answer carries errcode like an error: %v", a)
	}

	e.clock.Add(12*time.Hour - time.Second)
	wantCode(t, "ticket just under 12h old", e.call(t, "/cgi-bin/component/api_component_token", nil, req), 0)
	e.clock.Add(time.Second)
	wantCode(t, "ticket 12h old", e.call(t, "/cgi-bin/component/api_component_token", nil, req), CodeTicketExpired)

	// Any still-valid ticket may be used, not only the latest.
	older := e.ticket(t)
	e.clock.Add(time.Hour)
	_ = e.ticket(t)
	req["component_verify_ticket"] = older
	wantCode(t, "older but valid ticket", e.call(t, "/cgi-bin/component/api_component_token", nil, req), 0)
}

func TestComponentTokenExpiresAndIsChecked(t *testing.T) {
	e := newEnv(t)
	tok := e.componentToken(t)
	body := map[string]string{"component_appid": testComponent}
	path := "/cgi-bin/component/api_create_preauthcode"

	a := e.call(t, path, tokenQuery(tok), body)
	wantCode(t, "valid token", a, 0)
	if !strings.HasPrefix(a.str("pre_auth_code"), "preauthcode@@@") || a["expires_in"] != float64(600) {
		t.Fatalf("answer %v", a)
	}
	// The newer docs' access_token= parameter works too.
	wantCode(t, "access_token param", e.call(t, path, url.Values{"access_token": {tok}}, body), 0)
	wantCode(t, "no token", e.call(t, path, nil, body), CodeAccessTokenMissing)
	wantCode(t, "unknown token", e.call(t, path, tokenQuery("81_unknown"), body), CodeInvalidCredential)
	wantCode(t, "wrong component", e.call(t, path, tokenQuery(tok), map[string]string{"component_appid": "wx0000000000000000"}), CodeInvalidComponent)

	e.clock.Add(2*time.Hour - time.Second)
	wantCode(t, "token at 1h59m59s", e.call(t, path, tokenQuery(tok), body), 0)
	e.clock.Add(time.Second)
	wantCode(t, "token at 2h", e.call(t, path, tokenQuery(tok), body), CodeAccessTokenExpired)
}

func TestComponentTokenSupersededAfterGrace(t *testing.T) {
	e := newEnv(t)
	old := e.componentToken(t)
	e.clock.Add(time.Minute)
	fresh := e.componentToken(t)
	if old == fresh {
		t.Fatal("a new token equals the old one")
	}
	path, body := "/cgi-bin/component/api_create_preauthcode", map[string]string{"component_appid": testComponent}

	e.clock.Add(5*time.Minute - time.Second)
	wantCode(t, "old token within grace", e.call(t, path, tokenQuery(old), body), 0)
	e.clock.Add(time.Second)
	a := e.call(t, path, tokenQuery(old), body)
	wantCode(t, "old token after grace", a, CodeInvalidCredential)
	if !strings.Contains(a.str("errmsg"), "access_token is invalid or not latest") {
		t.Errorf("errmsg %q", a.str("errmsg"))
	}
	wantCode(t, "new token", e.call(t, path, tokenQuery(fresh), body), 0)
}

func TestTicketPushIsEncryptedAndDecryptable(t *testing.T) {
	e := newEnv(t)
	ticket, err := e.sb.PushTicket(context.Background())
	if err != nil {
		t.Fatalf("PushTicket: %v", err)
	}
	ev := e.rc.next(t)
	f := ev.Fields
	if f["AppId"] != testComponent || f["InfoType"] != InfoTicket || f["ComponentVerifyTicket"] != ticket {
		t.Fatalf("decrypted push %v", f)
	}
	if !strings.HasPrefix(ticket, "ticket@@@") {
		t.Errorf("ticket %q does not look like WeChat's", ticket)
	}
	if f["CreateTime"] != strconv.FormatInt(e.clock.Now().Unix(), 10) || ev.Query.Get("timestamp") != f["CreateTime"] {
		t.Errorf("CreateTime %q, timestamp %q", f["CreateTime"], ev.Query.Get("timestamp"))
	}
	if _, err := strconv.ParseUint(ev.Query.Get("nonce"), 10, 64); err != nil {
		t.Errorf("nonce %q is not digits", ev.Query.Get("nonce"))
	}
	pushes := e.sb.Pushes()
	if len(pushes) != 1 || pushes[0].InfoType != InfoTicket || pushes[0].Err != nil || pushes[0].Status != 200 {
		t.Fatalf("push log %+v", pushes)
	}
}

func TestFailedPushIsReportedAndLogged(t *testing.T) {
	e := newEnv(t)
	e.rc.setAnswer(http.StatusOK, "ok") // not "success"
	ticket, err := e.sb.PushTicket(context.Background())
	if !isPushError(err) {
		t.Fatalf("PushTicket error %v, want *PushError", err)
	}
	e.rc.next(t)
	if ticket == "" {
		t.Fatal("no ticket returned with the failed push")
	}
	e.rc.setAnswer(http.StatusInternalServerError, "success")
	if _, err := e.sb.PushTicket(context.Background()); !isPushError(err) {
		t.Fatalf("HTTP 500 push: error %v, want *PushError", err)
	}
	e.rc.next(t)
	p := e.sb.Pushes()
	if len(p) != 2 || p[0].Err == nil || p[1].Err == nil || p[1].Status != 500 {
		t.Fatalf("push log %+v", p)
	}
	if !strings.Contains(e.logs.String(), `"msg":"push failed"`) {
		t.Error("failed push not logged")
	}
}

func TestStartPushTicketTriggersPush(t *testing.T) {
	e := newEnv(t)
	path := "/cgi-bin/component/api_start_push_ticket"
	wantCode(t, "wrong secret", e.call(t, path, nil, map[string]string{"component_appid": testComponent, "component_secret": "nope"}), CodeInvalidAppSecret)
	a := e.call(t, path, nil, map[string]string{"component_appid": testComponent, "component_secret": testSecret})
	wantCode(t, "start push", a, 0)
	if a.str("errmsg") != "ok" {
		t.Errorf("answer %v", a)
	}
	ev := e.rc.next(t)
	if ev.Fields["InfoType"] != InfoTicket || ev.Fields["ComponentVerifyTicket"] == "" {
		t.Fatalf("push %v", ev.Fields)
	}
	// The pushed ticket works.
	wantCode(t, "pushed ticket", e.call(t, "/cgi-bin/component/api_component_token", nil, map[string]string{
		"component_appid": testComponent, "component_appsecret": testSecret, "component_verify_ticket": ev.Fields["ComponentVerifyTicket"],
	}), 0)
}

func TestTicketTimerPushesRightAfterStart(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TicketInterval = time.Hour })
	ev := e.rc.next(t)
	if ev.Fields["InfoType"] != InfoTicket {
		t.Fatalf("first push %v", ev.Fields)
	}
}

func TestAuthorizerTokenRefreshKeepsRefreshTokenAndSupersedes(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, mp1)
	info := e.queryAuth(t, ctok, code)
	first, refresh := info.str("authorizer_access_token"), info.str("authorizer_refresh_token")
	if refresh != e.sb.RefreshToken(mp1) || !strings.HasPrefix(refresh, "refreshtoken@@@") {
		t.Fatalf("refresh token %q, sandbox has %q", refresh, e.sb.RefreshToken(mp1))
	}
	wantCode(t, "first authorizer token", e.basicInfo(t, first), 0)

	e.clock.Add(time.Hour)
	a := e.authorizerToken(t, ctok, mp1, refresh)
	wantCode(t, "refresh", a, 0)
	second := a.str("authorizer_access_token")
	if a.str("authorizer_refresh_token") != refresh || a["expires_in"] != float64(7200) || second == first {
		t.Fatalf("refresh answer %v", a)
	}
	if issues := e.sb.AuthorizerTokenIssues(mp1); len(issues) != 1 || !issues[0].Equal(e.clock.Now()) {
		t.Fatalf("issues %v", issues)
	}

	e.clock.Add(5*time.Minute - time.Second)
	wantCode(t, "superseded token within grace", e.basicInfo(t, first), 0)
	e.clock.Add(time.Second)
	wantCode(t, "superseded token after grace", e.basicInfo(t, first), CodeInvalidCredential)

	b := e.basicInfo(t, second)
	wantCode(t, "current token", b, 0)
	if b.str("appid") != mp1 || b["account_type"] != float64(3) || b.str("nickname") != "鲜果时光小店" {
		t.Errorf("getaccountbasicinfo %v", b)
	}
	e.clock.Add(2 * time.Hour)
	wantCode(t, "expired authorizer token", e.basicInfo(t, second), CodeAccessTokenExpired)
	wantCode(t, "missing token", e.basicInfo(t, ""), CodeAccessTokenMissing)
	wantCode(t, "component token on authorizer API", e.basicInfo(t, ctok), CodeInvalidCredential)
}

func TestAuthorizerTokenErrors(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	wantCode(t, "never authorized", e.authorizerToken(t, ctok, mp2, "refreshtoken@@@x"), CodeNotAuthorized)
	wantCode(t, "unknown appid", e.authorizerToken(t, ctok, "wx0000000000000000", "refreshtoken@@@x"), CodeNotAuthorized)
	wantCode(t, "missing appid", e.authorizerToken(t, ctok, "", "refreshtoken@@@x"), CodeAppIDMissing)
	code, _ := e.authorize(t, ctok, mp1)
	e.queryAuth(t, ctok, code)
	wantCode(t, "unknown refresh token", e.authorizerToken(t, ctok, mp1, "refreshtoken@@@made-up"), CodeRefreshTokenInvalid)
	wantCode(t, "empty refresh token", e.authorizerToken(t, ctok, mp1, ""), CodeRefreshTokenInvalid)

	refresh := e.sb.RefreshToken(mp1)
	e.sb.InvalidateRefreshToken(mp1)
	wantCode(t, "invalidated refresh token", e.authorizerToken(t, ctok, mp1, refresh), CodeRefreshTokenInvalid)
	if e.sb.RefreshToken(mp1) != "" || !e.sb.IsAuthorized(mp1) {
		t.Errorf("after invalidation: refresh %q, authorized %v", e.sb.RefreshToken(mp1), e.sb.IsAuthorized(mp1))
	}
	if n := len(e.sb.AuthorizerTokenIssues(mp1)); n != 0 {
		t.Errorf("%d issues recorded for refused calls", n)
	}
}

func TestRotationModeIssuesNewRefreshTokenEachTime(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RotateRefreshTokens = true })
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, oa1)
	r0 := e.queryAuth(t, ctok, code).str("authorizer_refresh_token")

	a := e.authorizerToken(t, ctok, oa1, r0)
	wantCode(t, "first refresh", a, 0)
	r1 := a.str("authorizer_refresh_token")
	if r1 == r0 || r1 != e.sb.RefreshToken(oa1) {
		t.Fatalf("rotation: r0 %q r1 %q current %q", r0, r1, e.sb.RefreshToken(oa1))
	}
	wantCode(t, "old refresh token right after rotation", e.authorizerToken(t, ctok, oa1, r0), CodeRefreshTokenInvalid)
	a = e.authorizerToken(t, ctok, oa1, r1)
	wantCode(t, "second refresh", a, 0)
	if a.str("authorizer_refresh_token") == r1 {
		t.Fatal("second refresh kept the refresh token")
	}
	if n := len(e.sb.AuthorizerTokenIssues(oa1)); n != 2 {
		t.Errorf("issues %d, want 2", n)
	}
}

func TestGetAuthorizerInfo(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	path := "/cgi-bin/component/api_get_authorizer_info"
	get := func(appid string) answer {
		return e.call(t, path, tokenQuery(ctok), map[string]string{"component_appid": testComponent, "authorizer_appid": appid})
	}
	wantCode(t, "not authorized", get(mp1), CodeNotAuthorized)

	code, _ := e.authorize(t, ctok, mp1)
	e.queryAuth(t, ctok, code)
	a := get(mp1)
	wantCode(t, "mini program", a, 0)
	info, auth := a.obj("authorizer_info"), a.obj("authorization_info")
	if info.str("nick_name") != "鲜果时光小店" || info.str("user_name") != "gh_7c2e4a9b1d30" ||
		info.str("principal_name") == "" || info.obj("service_type_info")["id"] != float64(0) {
		t.Fatalf("authorizer_info %v", info)
	}
	mini := info.obj("MiniProgramInfo")
	cats, _ := mini["categories"].([]any)
	if mini.obj("network") == nil || len(cats) != 2 || cats[0].(map[string]any)["first"] != "商家自营" || len(cats[0].(map[string]any)) != 2 {
		t.Fatalf("MiniProgramInfo %v", mini)
	}
	if auth.str("authorizer_appid") != mp1 || auth.str("authorizer_refresh_token") != e.sb.RefreshToken(mp1) {
		t.Fatalf("authorization_info %v", auth)
	}
	funcs, _ := auth["func_info"].([]any)
	if len(funcs) != len(defaultMiniProgramFuncs) {
		t.Fatalf("func_info %v", funcs)
	}

	// head_img is served by the sandbox itself.
	head := info.str("head_img")
	if !strings.HasPrefix(head, e.base+"/sandbox/avatar/") {
		t.Fatalf("head_img %q", head)
	}
	resp, err := http.Get(head)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("avatar: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	code, _ = e.authorize(t, ctok, oa1)
	e.queryAuth(t, ctok, code)
	a = get(oa1)
	wantCode(t, "official account", a, 0)
	if _, ok := a.obj("authorizer_info")["MiniProgramInfo"]; ok || a.obj("authorizer_info").obj("service_type_info")["id"] != float64(2) {
		t.Errorf("official account info %v", a.obj("authorizer_info"))
	}
}

func TestGetAuthorizerList(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	e.authorize(t, ctok, mp1)
	e.authorize(t, ctok, oa1)
	path := "/cgi-bin/component/api_get_authorizer_list"
	a := e.call(t, path, tokenQuery(ctok), map[string]any{"component_appid": testComponent, "offset": 0, "count": 1})
	wantCode(t, "list", a, 0)
	list, _ := a["list"].([]any)
	if a["total_count"] != float64(2) || len(list) != 1 || list[0].(map[string]any)["authorizer_appid"] != mp1 {
		t.Fatalf("answer %v", a)
	}
	wantCode(t, "count 501", e.call(t, path, tokenQuery(ctok), map[string]any{"component_appid": testComponent, "count": 501}), CodeDataFormat)
}

package sandbox

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// customEnv is a sandbox with oa1 and mp1 authorized, their authorizer
// tokens, and a platform that answers every message push with success.
type customEnv struct {
	*env
	oaToken, mpToken string
}

func newCustomEnv(t *testing.T) *customEnv {
	t.Helper()
	// Tokens outlive the 48 h window, so moving the clock needs no refresh.
	e, _ := newPlatformEnv(t, false, func(c *Config) { c.AuthorizerTokenTTL = 100 * time.Hour })
	ctok := e.componentToken(t)
	c := &customEnv{env: e}
	oaCode, _ := e.authorize(t, ctok, oa1)
	c.oaToken = e.queryAuth(t, ctok, oaCode).str("authorizer_access_token")
	mpCode, _ := e.authorize(t, ctok, mp1)
	c.mpToken = e.queryAuth(t, ctok, mpCode).str("authorizer_access_token")
	return c
}

func (c *customEnv) send(t *testing.T, token string, body any) answer {
	t.Helper()
	return c.call(t, "/cgi-bin/message/custom/send", url.Values{"access_token": {token}}, body)
}

// fanSays pushes a message or event from openid to appid.
func (c *customEnv) fanSays(t *testing.T, appid string, plain []byte) {
	t.Helper()
	if _, err := c.sb.PushMessage(context.Background(), appid, plain); err != nil {
		t.Fatalf("PushMessage: %v", err)
	}
}

func text(to, content string) map[string]any {
	return map[string]any{"touser": to, "msgtype": "text", "text": map[string]string{"content": content}}
}

func TestCustomSendNeedsAKnownFanAndAnOpenWindow(t *testing.T) {
	c := newCustomEnv(t)
	wantCode(t, "unknown fan", c.send(t, c.oaToken, text(fan1, "hi")), CodeInvalidOpenID)
	wantCode(t, "missing touser", c.send(t, c.oaToken, map[string]any{"msgtype": "text", "text": map[string]string{"content": "x"}}), CodeInvalidOpenID)

	// The fan's system-event identity is no fan: audit events open nothing.
	c.fanSays(t, mp1, AuditEvent(mp1User, EventAuditSuccess, c.clock.Now(), "", ""))
	wantCode(t, "system openid", c.send(t, c.mpToken, text(SystemOpenID, "hi")), CodeInvalidOpenID)

	// A LOCATION report makes the fan known but opens no window.
	c.fanSays(t, oa1, locationEvent(oa1User, fan1, c.clock.Now()))
	wantCode(t, "no window", c.send(t, c.oaToken, text(fan1, "hi")), CodeOutsideWindow)

	// A message opens 5 in 48 h.
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "hello", 1, c.clock.Now()))
	for i := range 5 {
		wantCode(t, "within the allowance", c.send(t, c.oaToken, text(fan1, "reply "+string(rune('1'+i)))), 0)
	}
	wantCode(t, "sixth", c.send(t, c.oaToken, text(fan1, "six")), CodeWindowQuota)
	if msgs := c.sb.CustomMessages(oa1); len(msgs) != 5 || msgs[0].Text != "reply 1" || msgs[0].ToUser != fan1 ||
		msgs[0].MsgType != "text" || msgs[0].AppID != oa1 || string(msgs[0].Body) == "" || !msgs[0].Time.Equal(c.clock.Now()) {
		t.Fatalf("CustomMessages %+v", msgs)
	}
	if n := len(c.sb.CustomMessages(mp1)); n != 0 {
		t.Errorf("mp1 has %d messages", n)
	}

	// A new message resets the allowance; the window closes after 48 h.
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "again", 2, c.clock.Now()))
	wantCode(t, "reset", c.send(t, c.oaToken, text(fan1, "ok")), 0)
	c.clock.Add(48 * time.Hour)
	wantCode(t, "after 48 h", c.send(t, c.oaToken, text(fan1, "late")), CodeOutsideWindow)

	// Following opens 3 in a minute, and does not add to a message's 5.
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "hi", 3, c.clock.Now()))
	c.fanSays(t, oa1, EventMessage(oa1User, fan1, "subscribe", "", c.clock.Now()))
	for range 3 {
		wantCode(t, "after subscribe", c.send(t, c.oaToken, text(fan1, "welcome")), 0)
	}
	wantCode(t, "fourth after subscribe", c.send(t, c.oaToken, text(fan1, "more")), CodeWindowQuota)
	c.fanSays(t, oa1, EventMessage(oa1User, fan1, "CLICK", "MENU_1", c.clock.Now()))
	c.clock.Add(time.Minute)
	wantCode(t, "a minute after a click", c.send(t, c.oaToken, text(fan1, "late")), CodeOutsideWindow)

	// Unfollowing closes the window at once.
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "bye", 4, c.clock.Now()))
	c.fanSays(t, oa1, EventMessage(oa1User, fan1, "unsubscribe", "", c.clock.Now()))
	wantCode(t, "after unsubscribe", c.send(t, c.oaToken, text(fan1, "stay")), CodeOutsideWindow)

	// A mini program's session: 2 in a minute; subscribe means nothing there.
	c.fanSays(t, mp1, EventMessage(mp1User, fan1, "user_enter_tempsession", "", c.clock.Now()))
	wantCode(t, "mp session 1", c.send(t, c.mpToken, text(fan1, "1")), 0)
	wantCode(t, "mp session 2", c.send(t, c.mpToken, text(fan1, "2")), 0)
	wantCode(t, "mp session 3", c.send(t, c.mpToken, text(fan1, "3")), CodeWindowQuota)
	wantCode(t, "openid of another account", c.send(t, c.mpToken, text("o-only-oa1-knows-me", "x")), CodeInvalidOpenID)
}

func TestCustomSendMessageTypesPerKind(t *testing.T) {
	c := newCustomEnv(t)
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "hi", 1, c.clock.Now()))
	c.fanSays(t, mp1, TextMessage(mp1User, fan1, "hi", 1, c.clock.Now()))
	article := map[string]string{"title": "t", "description": "d", "url": "https://example.com", "picurl": "https://example.com/p.png"}
	cases := []struct {
		name  string
		token string // "oa" or "mp"
		body  map[string]any
		code  int
	}{
		{"oa image", "oa", map[string]any{"msgtype": "image", "image": map[string]string{"media_id": "m"}}, 0},
		{"oa news", "oa", map[string]any{"msgtype": "news", "news": map[string]any{"articles": []any{article}}}, 0},
		{"oa news with 2 articles", "oa", map[string]any{"msgtype": "news", "news": map[string]any{"articles": []any{article, article}}}, CodeTooManyArticles},
		{"oa news without articles", "oa", map[string]any{"msgtype": "news", "news": map[string]any{"articles": []any{}}}, CodeEmptyNews},
		{"oa link", "oa", map[string]any{"msgtype": "link", "link": map[string]string{"title": "t", "description": "d", "url": "u", "thumb_url": "t"}}, CodeInvalidMessageType},
		{"oa card without appid", "oa", map[string]any{"msgtype": "miniprogrampage", "miniprogrampage": map[string]string{"title": "t", "pagepath": "p", "thumb_media_id": "m"}}, CodeDataFormat},
		{"oa card", "oa", map[string]any{"msgtype": "miniprogrampage", "miniprogrampage": map[string]string{"title": "t", "appid": mp1, "pagepath": "p", "thumb_media_id": "m"}}, 0},
		{"oa msgmenu", "oa", map[string]any{"msgtype": "msgmenu", "msgmenu": map[string]any{"head_content": "h", "list": []any{map[string]string{"id": "1", "content": "yes"}}}}, 0},
		{"oa unknown type", "oa", map[string]any{"msgtype": "hologram", "hologram": map[string]string{}}, CodeInvalidMessageType},
		{"oa empty text", "oa", map[string]any{"msgtype": "text", "text": map[string]string{"content": ""}}, CodeEmptyContent},
		{"oa text object missing", "oa", map[string]any{"msgtype": "text"}, CodeDataFormat},
		{"oa content not a string", "oa", map[string]any{"msgtype": "text", "text": map[string]any{"content": 5}}, CodeDataFormat},
		{"mp news", "mp", map[string]any{"msgtype": "news", "news": map[string]any{"articles": []any{article}}}, CodeInvalidMessageType},
		{"mp voice", "mp", map[string]any{"msgtype": "voice", "voice": map[string]string{"media_id": "m"}}, CodeInvalidMessageType},
		{"mp link", "mp", map[string]any{"msgtype": "link", "link": map[string]string{"title": "t", "description": "d", "url": "u", "thumb_url": "t"}}, 0},
		{"mp link without thumb", "mp", map[string]any{"msgtype": "link", "link": map[string]string{"title": "t", "description": "d", "url": "u"}}, CodeDataFormat},
		{"mp card", "mp", map[string]any{"msgtype": "miniprogrampage", "miniprogrampage": map[string]string{"title": "t", "pagepath": "p", "thumb_media_id": "m"}}, 0},
		{"mp card for another app", "mp", map[string]any{"msgtype": "miniprogrampage", "miniprogrampage": map[string]string{"title": "t", "appid": mp2, "pagepath": "p", "thumb_media_id": "m"}}, CodeInvalidAppID},
	}
	for _, tc := range cases {
		// Each case from a fresh fan, so the allowance never interferes.
		fanID := newOpenID()
		appid, user, tok := oa1, oa1User, c.oaToken
		if tc.token == "mp" {
			appid, user, tok = mp1, mp1User, c.mpToken
		}
		c.fanSays(t, appid, TextMessage(user, fanID, "hi", 1, c.clock.Now()))
		tc.body["touser"] = fanID
		if a := c.send(t, tok, tc.body); a.code() != tc.code {
			t.Errorf("%s: errcode %d (%s), want %d", tc.name, a.code(), a.str("errmsg"), tc.code)
		}
	}

	wantCode(t, "malformed JSON", c.send(t, c.oaToken, []byte(`{"touser":`)), CodeDataFormat)
	wantCode(t, "empty body", c.send(t, c.oaToken, []byte(``)), CodeEmptyPostData)
	wantCode(t, "GET", c.call(t, "/cgi-bin/message/custom/send", url.Values{"access_token": {c.oaToken}}, nil), CodeRequirePOST)
	wantCode(t, "component token", c.send(t, c.componentToken(t), text(fan1, "x")), CodeInvalidCredential)
	wantCode(t, "no token", c.call(t, "/cgi-bin/message/custom/send", nil, text(fan1, "x")), CodeAccessTokenMissing)
	if c.sb.Calls("send") == 0 || c.sb.Served("send") == 0 {
		t.Error("send calls are not counted")
	}
}

func TestCustomSendNeedsThePermissionSet(t *testing.T) {
	accts := DefaultAccounts()
	accts[3].FuncInfo = []int{2, 3} // oa1 without 消息管理
	e, _ := newPlatformEnv(t, false, func(c *Config) { c.Accounts = accts })
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, oa1)
	tok := e.queryAuth(t, ctok, code).str("authorizer_access_token")
	if _, err := e.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "no permission", e.call(t, "/cgi-bin/message/custom/send", url.Values{"access_token": {tok}}, text(fan1, "x")), CodeAPIUnauthorized)
}

func TestFaultBusyFirst(t *testing.T) {
	c := newCustomEnv(t)
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "hi", 1, c.clock.Now()))
	c.sb.SetFault("send", Fault{BusyFirst: 2})
	wantCode(t, "first", c.send(t, c.oaToken, text(fan1, "a")), CodeSystemBusy)
	wantCode(t, "second", c.send(t, c.oaToken, text(fan1, "a")), CodeSystemBusy)
	wantCode(t, "third", c.send(t, c.oaToken, text(fan1, "a")), 0)
	wantCode(t, "fourth", c.send(t, c.oaToken, text(fan1, "b")), 0)
	if n := len(c.sb.CustomMessages(oa1)); n != 2 {
		t.Errorf("%d messages sent, want 2 (busy answers send nothing)", n)
	}
	if c.sb.Served("send") != 2 {
		t.Errorf("served %d", c.sb.Served("send"))
	}

	// SetFault starts the count again; each endpoint counts its own calls.
	c.sb.SetFault("*", Fault{BusyFirst: 1})
	c.sb.SetFault("send", Fault{})
	c.fanSays(t, oa1, TextMessage(oa1User, fan1, "hi", 2, c.clock.Now()))
	wantCode(t, "wildcard first send", c.send(t, c.oaToken, text(fan1, "c")), CodeSystemBusy)
	wantCode(t, "wildcard second send", c.send(t, c.oaToken, text(fan1, "c")), 0)
	wantCode(t, "wildcard first basic info", c.basicInfo(t, c.oaToken), CodeSystemBusy)
	wantCode(t, "wildcard second basic info", c.basicInfo(t, c.oaToken), 0)
	c.sb.ResetCalls()
	wantCode(t, "after ResetCalls", c.basicInfo(t, c.oaToken), CodeSystemBusy)
}

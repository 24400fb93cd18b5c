package sandbox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	oa1User = "gh_4e1c8b7a2d63" // oa1's original id
	mp1User = "gh_7c2e4a9b1d30" // mp1's original id
	fan1    = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
)

// authorizeDirect authorizes appid without the pages and consumes the push.
func (e *env) authorizeDirect(t *testing.T, appid string) (authCode string) {
	t.Helper()
	code, err := e.sb.Authorize(context.Background(), appid, e.sb.CreatePreAuthCode())
	if err != nil {
		t.Fatalf("Authorize %s: %v", appid, err)
	}
	e.rc.next(t)
	return code
}

func TestPushMessageRoundTrip(t *testing.T) {
	e, p := newPlatformEnv(t, false)
	e.authorizeDirect(t, oa1)
	p.set(func(appid string, msg map[string]string) string {
		return textReplyXML(msg, "echo: "+msg["Content"]+" to "+appid)
	})

	res, err := e.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "你好 <b>&", 7001, e.clock.Now()))
	if err != nil {
		t.Fatalf("PushMessage: %v", err)
	}
	if res.Status != http.StatusOK || res.NoReply || !strings.Contains(string(res.Body), "<MsgSignature>") {
		t.Fatalf("result %+v", res)
	}
	reply, err := plainFields(res.Reply)
	if err != nil || reply["Content"] != "echo: 你好 <b>& to "+oa1 || reply["ToUserName"] != fan1 || reply["FromUserName"] != oa1User {
		t.Fatalf("reply %v: %v", reply, err)
	}

	got := p.received()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	d := got[0]
	if d.AppID != oa1 || d.Envelope.ToUserName != oa1User || d.Query.Get("openid") != fan1 ||
		d.Msg["MsgType"] != "text" || d.Msg["MsgId"] != "7001" || d.Msg["CreateTime"] != "1740823200" {
		t.Errorf("delivery %+v", d)
	}
	for _, k := range []string{"signature", "timestamp", "nonce", "msg_signature"} {
		if d.Query.Get(k) == "" {
			t.Errorf("query lacks %s", k)
		}
	}
	pushes := e.sb.MessagePushes()
	if len(pushes) != 1 || pushes[0].AppID != oa1 || pushes[0].OpenID != fan1 || pushes[0].MsgType != "text" ||
		!pushes[0].Replied || pushes[0].Err != nil || pushes[0].Status != http.StatusOK {
		t.Errorf("MessagePushes %+v", pushes)
	}
	if errs := p.errors(); len(errs) > 0 {
		t.Errorf("platform: %v", errs)
	}
}

func TestPushMessageNoReply(t *testing.T) {
	e, p := newPlatformEnv(t, false)
	e.authorizeDirect(t, mp1)
	for _, answer := range []string{"", "success", " success\n"} {
		p.set(func(string, map[string]string) string { return answer })
		res, err := e.sb.PushMessage(context.Background(), mp1, EventMessage(mp1User, fan1, "user_enter_tempsession", "", e.clock.Now()))
		if err != nil || !res.NoReply || res.Reply != nil {
			t.Errorf("answer %q: %+v, %v", answer, res, err)
		}
	}
	if got := p.received(); len(got) != 3 || got[0].Msg["Event"] != "user_enter_tempsession" {
		t.Errorf("deliveries %+v", got)
	}
}

func TestPushMessageRejectsBadAnswers(t *testing.T) {
	e, p := newPlatformEnv(t, false)
	e.authorizeDirect(t, oa1)
	other, err := wxcrypt.New(testToken, testAESKey, "wx1111111111111111")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mangle  func(body []byte, q url.Values) []byte
		badness error  // errors.Is target
		says    string // in the error
		status  int
	}{
		"bad signature": {mangle: func(b []byte, _ url.Values) []byte {
			return []byte(strings.Replace(string(b), "<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0", 1))
		}, badness: ErrBadReply, says: "<MsgSignature> does not match", status: 200},
		"wrong nonce": {mangle: func(_ []byte, q url.Values) []byte {
			b, _ := p.crypt.Reply(wxcrypt.Key{}, []byte(`<xml><MsgType>text</MsgType></xml>`), q.Get("timestamp"), "123456789")
			return b
		}, badness: ErrBadReply, says: "<Nonce> does not echo", status: 200},
		"encrypted for another appid": {mangle: func(_ []byte, q url.Values) []byte {
			b, _ := other.Reply(wxcrypt.Key{}, []byte(`<xml><MsgType>text</MsgType></xml>`), q.Get("timestamp"), q.Get("nonce"))
			return b
		}, badness: ErrBadReply, says: "does not decrypt", status: 200},
		"plaintext reply": {mangle: func([]byte, url.Values) []byte {
			return []byte(`<xml><ToUserName>x</ToUserName><MsgType>text</MsgType><Content>hi</Content></xml>`)
		}, badness: ErrBadReply, says: "no <Encrypt>", status: 200},
		"JSON":          {mangle: func([]byte, url.Values) []byte { return []byte(`{"ok":true}`) }, badness: ErrBadReply, says: "not an <xml>", status: 200},
		"reply not XML": {mangle: nil, badness: ErrBadReply, says: "plaintext", status: 200},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.mangle == nil { // an encrypted reply whose plaintext is not XML
				p.set(func(string, map[string]string) string { return "" })
				p.setMangle(func(_ []byte, q url.Values) []byte {
					b, _ := p.crypt.Reply(wxcrypt.Key{}, []byte("not xml"), q.Get("timestamp"), q.Get("nonce"))
					return b
				})
			} else {
				p.set(func(_ string, msg map[string]string) string { return textReplyXML(msg, "x") })
				p.setMangle(c.mangle)
			}
			res, err := e.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, e.clock.Now()))
			var me *MessageError
			if !errors.As(err, &me) || !errors.Is(err, c.badness) || !strings.Contains(err.Error(), c.says) || me.AppID != oa1 || me.MsgType != "text" {
				t.Fatalf("err %v", err)
			}
			if res.Status != c.status || res.Reply != nil || res.NoReply || len(res.Body) == 0 {
				t.Errorf("result %+v", res)
			}
		})
	}
	p.setMangle(nil)

	t.Run("HTTP 500", func(t *testing.T) {
		e := newEnv(t, withMessageHandler(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}))
		e.authorizeDirect(t, oa1)
		res, err := e.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, e.clock.Now()))
		var me *MessageError
		if !errors.As(err, &me) || me.Status != http.StatusInternalServerError || res.Status != http.StatusInternalServerError || !strings.Contains(string(res.Body), "boom") {
			t.Fatalf("%+v, %v", res, err)
		}
		if pushes := e.sb.MessagePushes(); len(pushes) != 1 || pushes[0].Err == nil || pushes[0].Status != 500 {
			t.Errorf("log %+v", pushes)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.PushTimeout = 50 * time.Millisecond },
			withMessageHandler(t, func(_ http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body) // the server notices a client that gives up once the body is read
				<-r.Context().Done()
			}))
		e.authorizeDirect(t, oa1)
		res, err := e.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, e.clock.Now()))
		var me *MessageError
		if !errors.As(err, &me) || res.Status != 0 {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

// withMessageHandler points MessageURL at a server running h.
func withMessageHandler(t *testing.T, h http.HandlerFunc) func(*Config) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return func(c *Config) { c.MessageURL = srv.URL + "/wechat/$APPID$/callback" }
}

func TestPushMessageRefusals(t *testing.T) {
	e, _ := newPlatformEnv(t, false)
	now := e.clock.Now()
	if _, err := e.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, now)); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("unauthorized account: %v", err)
	}
	if _, err := e.sb.PushMessage(context.Background(), "wx0000000000000000", TextMessage(oa1User, fan1, "hi", 1, now)); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
	e.authorizeDirect(t, oa1)
	for name, plain := range map[string][]byte{
		"wrong ToUserName": TextMessage(mp1User, fan1, "hi", 1, now),
		"not XML":          []byte("hello"),
		"no MsgType":       []byte("<xml><ToUserName>" + oa1User + "</ToUserName><FromUserName>x</FromUserName></xml>"),
		"DOCTYPE":          []byte(`<!DOCTYPE xml [<!ENTITY x "y">]><xml><ToUserName>&x;</ToUserName></xml>`),
	} {
		if _, err := e.sb.PushMessage(context.Background(), oa1, plain); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := e.sb.PushMessageTimes(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, now), 0); err == nil {
		t.Error("PushMessageTimes with n = 0 accepted")
	}
	if n := len(e.sb.MessagePushes()); n != 0 {
		t.Errorf("%d refused pushes logged", n)
	}

	off := newEnv(t)
	off.authorizeDirect(t, oa1)
	if _, err := off.sb.PushMessage(context.Background(), oa1, TextMessage(oa1User, fan1, "hi", 1, now)); !errors.Is(err, ErrNoMessageURL) {
		t.Errorf("without MessageURL: %v", err)
	}
}

func TestPushMessageTimesDeliversRetries(t *testing.T) {
	e, p := newPlatformEnv(t, false)
	e.authorizeDirect(t, oa1)
	calls := 0
	p.set(func(_ string, msg map[string]string) string {
		calls++ // deliveries are sequential
		if calls == 2 {
			return "oops"
		}
		return textReplyXML(msg, "ok")
	})
	plain := TextMessage(oa1User, fan1, "hi", 42, e.clock.Now())
	results, err := e.sb.PushMessageTimes(context.Background(), oa1, plain, 3)
	if len(results) != 3 || err == nil || !errors.Is(err, ErrBadReply) || !strings.Contains(err.Error(), "delivery 2 of 3") {
		t.Fatalf("%d results, err %v", len(results), err)
	}
	if results[0].Reply == nil || results[1].Reply != nil || results[2].Reply == nil {
		t.Errorf("results %+v", results)
	}
	got := p.received()
	nonces := map[string]bool{}
	for _, d := range got {
		nonces[d.Query.Get("nonce")] = true
		if d.Msg["MsgId"] != "42" || d.Msg["Content"] != "hi" {
			t.Errorf("delivery %v", d.Msg)
		}
	}
	if len(got) != 3 || len(nonces) != 3 {
		t.Errorf("%d deliveries, %d nonces", len(got), len(nonces))
	}
	if n := len(e.sb.MessagePushes()); n != 3 {
		t.Errorf("%d logged", n)
	}
}

func TestPlaintextBuilders(t *testing.T) {
	at := time.Unix(1488856741, 0)
	cases := []struct {
		name  string
		plain []byte
		want  map[string]string
	}{
		{"text", TextMessage("gh_a", "o1", "a]]>b", 9, at), map[string]string{
			"ToUserName": "gh_a", "FromUserName": "o1", "CreateTime": "1488856741", "MsgType": "text", "Content": "a]]>b", "MsgId": "9"}},
		{"event", EventMessage("gh_a", "o1", "CLICK", "MENU_1", at), map[string]string{"MsgType": "event", "Event": "CLICK", "EventKey": "MENU_1"}},
		{"audit success", AuditEvent("gh_a", EventAuditSuccess, at, "", ""), map[string]string{
			"FromUserName": SystemOpenID, "Event": "weapp_audit_success", "SuccTime": "1488856741"}},
		{"audit fail", AuditEvent("gh_a", EventAuditFail, at, "1:<br>违规", "m1|m2"), map[string]string{
			"Event": "weapp_audit_fail", "Reason": "1:<br>违规", "FailTime": "1488856741", "ScreenShot": "m1|m2"}},
		{"audit delay", AuditEvent("gh_a", EventAuditDelay, at, "审核延后", ""), map[string]string{
			"Event": "weapp_audit_delay", "Reason": "审核延后", "DelayTime": "1488856741"}},
		{"privacy", PrivacyApplyEvent("gh_a", at, "pass"), map[string]string{"Event": "wxa_privacy_apply", "MsgType": "event"}},
	}
	for _, c := range cases {
		f, err := plainFields(c.plain)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for k, v := range c.want {
			if f[k] != v {
				t.Errorf("%s: %s = %q, want %q (%s)", c.name, k, f[k], v, c.plain)
			}
		}
	}
	if s := string(EventMessage("gh_a", "o1", "subscribe", "", at)); strings.Contains(s, "EventKey") ||
		!strings.Contains(s, "<Event><![CDATA[subscribe]]></Event>") || !strings.Contains(s, "<CreateTime>1488856741</CreateTime>") {
		t.Errorf("subscribe: %s", s)
	}
	if s := string(AuditEvent("gh_a", EventAuditSuccess, at, "", "")); strings.Contains(s, "Reason") || strings.Contains(s, "FailTime") {
		t.Errorf("success event carries failure fields: %s", s)
	}
	for result, want := range map[string]string{"pass": "<status>1</status><reason><![CDATA[]]></reason>",
		"reject": "<status>2</status>", "资料不全": "<status>2</status><reason><![CDATA[资料不全]]></reason>"} {
		s := string(PrivacyApplyEvent("gh_a", at, result))
		if !containsAll(s, "<result_info><api_name><![CDATA[wx.choosePoi]]></api_name>", "<audit_time>1488856741</audit_time>", want, "</result_info></xml>") {
			t.Errorf("privacy %s: %s", result, s)
		}
	}
}

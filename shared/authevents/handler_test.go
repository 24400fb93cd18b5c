package authevents_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	componentAppID  = testenv.ComponentAppID
	componentSecret = testenv.ComponentSecret
	msgToken        = testenv.Token
	aesKey          = testenv.EncodingAESKey
)

// stack is the ticket URL served through the API Gateway adapter, fed by the sandbox over real HTTP.
type stack struct {
	store     *tokenstore.Store
	wx        *sandbox.Sandbox
	url       string // the handler's URL (授权事件接收URL)
	component *credentials.Component
	handler   *authevents.Handler
	logs      *testenv.LogBuffer
}

func newStack(t *testing.T) *stack {
	t.Helper()
	db := testenv.DynamoDB(t)
	st := &stack{store: tokenstore.New(db, testenv.Table(t, db)), logs: &testenv.LogBuffer{}}
	crypter, err := wxcrypt.New(msgToken, aesKey, componentAppID)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &authevents.Handler{Crypter: crypter, Store: st.store, Logger: log}
	st.handler = h
	srv := httptest.NewServer(localrun.HTTPHandler(h.Handle))
	t.Cleanup(srv.Close)
	st.url = srv.URL + "/wechat/component/events"

	wx, base := testenv.Sandbox(t, func(c *sandbox.Config) {
		c.PushURL = st.url
		c.Logger = log.With("component", "sandbox")
	})
	st.wx = wx
	api := &wxapi.Client{BaseURL: base, Logger: log}
	st.component = credentials.NewComponent(st.store, api, componentAppID, componentSecret, credentials.Options{})
	h.Component = st.component
	return st
}

// push sends a push built with the given crypter (so tests can forge one) and returns the answer.
func (st *stack) push(t *testing.T, c *wxcrypt.Crypter, plain string, tamper func(q url.Values, body []byte) []byte) (int, string) {
	t.Helper()
	ts, nonce := fmt.Sprint(time.Now().Unix()), "12345"
	body, sig, err := c.PushBody([]byte(plain), "", ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "msg_signature": {sig}, "encrypt_type": {"aes"},
		"signature": {wxcrypt.Signature(msgToken, ts, nonce)}}
	if tamper != nil {
		body = tamper(q, body)
	}
	resp, err := http.Post(st.url+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ticketXML(appid, ticket string, createTime int64) string {
	return fmt.Sprintf("<xml><AppId><![CDATA[%s]]></AppId><CreateTime>%d</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[%s]]></ComponentVerifyTicket></xml>", appid, createTime, ticket)
}

func mustCrypter(t *testing.T, token, key, appid string) *wxcrypt.Crypter {
	t.Helper()
	c, err := wxcrypt.New(token, key, appid)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSandboxTicketPushIsStoredAndWarmsTheToken(t *testing.T) {
	st := newStack(t)
	ticket, err := st.wx.PushTicket(context.Background())
	if err != nil {
		t.Fatalf("push not acknowledged: %v", err)
	}
	got, err := st.store.Ticket(context.Background(), componentAppID)
	if err != nil || got.Ticket != ticket {
		t.Fatalf("stored ticket %+v, %v; want the pushed one", got, err)
	}
	cred, err := st.store.Credential(context.Background(), tokenstore.ComponentTokenKey(componentAppID))
	if err != nil || !cred.FreshUntil(time.Now().Add(time.Hour)) {
		t.Fatalf("component token not refreshed after the ticket: %+v, %v", cred, err)
	}
	if n := st.wx.Calls("api_component_token"); n != 1 {
		t.Fatalf("api_component_token calls = %d, want 1", n)
	}
	// A second ticket does not refresh a token that is still fresh.
	if _, err := st.wx.PushTicket(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := st.wx.Calls("api_component_token"); n != 1 {
		t.Fatalf("fresh token refreshed again: %d calls", n)
	}
	if logs := st.logs.String(); strings.Contains(logs, ticket) || strings.Contains(logs, cred.AccessToken) {
		t.Fatal("a ticket or token appeared in the logs")
	}
}

func TestMissingTicketIsRequestedAndArrives(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	if _, err := st.component.Token(ctx); !errors.Is(err, credentials.ErrNoTicket) {
		t.Fatalf("want ErrNoTicket on an empty store, got %v", err)
	}
	// api_start_push_ticket makes the sandbox push a ticket to our URL shortly after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := st.store.Ticket(ctx, componentAppID); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ticket arrived after api_start_push_ticket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := st.component.Token(ctx); err != nil {
		t.Fatalf("token after the requested ticket arrived: %v", err)
	}
}

func TestOlderTicketPushNeverOverwritesNewer(t *testing.T) {
	st := newStack(t)
	// Hand-made tickets are unknown to the sandbox; without warm-up it is not asked for a real one.
	st.handler.Component = nil
	good := mustCrypter(t, msgToken, aesKey, componentAppID)
	if code, body := st.push(t, good, ticketXML(componentAppID, "ticket@@@newer", 2000), nil); code != 200 || body != "success" {
		t.Fatalf("newer push: %d %q", code, body)
	}
	// The late, older push is acknowledged (WeChat must not retry it) but not stored.
	if code, body := st.push(t, good, ticketXML(componentAppID, "ticket@@@older", 1000), nil); code != 200 || body != "success" {
		t.Fatalf("older push: %d %q", code, body)
	}
	got, _ := st.store.Ticket(context.Background(), componentAppID)
	if got.Ticket != "ticket@@@newer" {
		t.Fatalf("stored %q, want the newer ticket", got.Ticket)
	}
}

func TestBadPushesGet4xxAndStoreNothing(t *testing.T) {
	st := newStack(t)
	good := mustCrypter(t, msgToken, aesKey, componentAppID)
	plain := ticketXML(componentAppID, "ticket@@@evil", 9999)
	cases := []struct {
		name   string
		c      *wxcrypt.Crypter
		tamper func(q url.Values, body []byte) []byte
		status int
	}{
		{"forged signature", good, func(q url.Values, b []byte) []byte {
			q.Set("msg_signature", strings.Repeat("0", 40))
			return b
		}, 401},
		{"re-signed with the wrong token", mustCrypter(t, "not-our-token", aesKey, componentAppID), nil, 401},
		{"encrypted for another appid", mustCrypter(t, msgToken, aesKey, "wxsomeoneelse00001"), nil, 403},
		{"encrypted with another key", mustCrypter(t, msgToken, "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj", componentAppID), nil, 400},
		{"tampered ciphertext, same signature", good, func(q url.Values, b []byte) []byte {
			return bytes.Replace(b, []byte("<Encrypt><![CDATA["), []byte("<Encrypt><![CDATA[AAAA"), 1)
		}, 401},
		{"missing msg_signature", good, func(q url.Values, b []byte) []byte { q.Del("msg_signature"); return b }, 400},
		{"malformed XML", good, func(q url.Values, b []byte) []byte { return b[:len(b)/2] }, 400},
		{"huge body", good, func(q url.Values, b []byte) []byte {
			return append(b, bytes.Repeat([]byte(" "), 1<<20)...)
		}, 413},
		{"XXE doctype", good, func(q url.Values, b []byte) []byte {
			return append([]byte(`<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>`), b...)
		}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := st.push(t, tc.c, plain, tc.tamper)
			if code != tc.status {
				t.Fatalf("status %d, want %d", code, tc.status)
			}
			if _, err := st.store.Ticket(context.Background(), componentAppID); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Fatalf("a rejected push stored a ticket (err=%v)", err)
			}
		})
	}
	// The inner AppId must match too, even inside a correctly encrypted push.
	if code, _ := st.push(t, good, ticketXML("wxsomeoneelse00001", "ticket@@@x", 1), nil); code != 403 {
		t.Fatalf("inner AppId of another component: status %d, want 403", code)
	}
	if _, err := st.store.Ticket(context.Background(), componentAppID); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatal("push with another inner AppId stored a ticket")
	}
	if n := st.wx.Calls("api_component_token"); n != 0 {
		t.Fatalf("rejected pushes caused %d token calls", n)
	}
}

func TestUnknownInfoTypeIsAcknowledged(t *testing.T) {
	st := newStack(t)
	good := mustCrypter(t, msgToken, aesKey, componentAppID)
	plain := "<xml><AppId><![CDATA[" + componentAppID + "]]></AppId><CreateTime>1</CreateTime><InfoType><![CDATA[notify_third_fasteregister]]></InfoType></xml>"
	if code, body := st.push(t, good, plain, nil); code != 200 || body != "success" {
		t.Fatalf("unknown InfoType: %d %q, want 200 success", code, body)
	}
	if !strings.Contains(st.logs.String(), "notify_third_fasteregister") {
		t.Fatal("unknown InfoType not logged")
	}
}

func TestStoreFailureIsNotAcknowledged(t *testing.T) {
	st := newStack(t)
	// Point the handler at a table that does not exist: the write fails, so WeChat must be told to retry.
	db := testenv.DynamoDB(t)
	crypter := mustCrypter(t, msgToken, aesKey, componentAppID)
	h := &authevents.Handler{Crypter: crypter, Store: tokenstore.New(db, "no-such-table"), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	srv := httptest.NewServer(localrun.HTTPHandler(h.Handle))
	defer srv.Close()
	st.url = srv.URL
	code, body := st.push(t, crypter, ticketXML(componentAppID, "ticket@@@x", 5), nil)
	if code != 500 || body == "success" {
		t.Fatalf("failed write answered %d %q; must not be success", code, body)
	}
}

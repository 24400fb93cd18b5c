package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

// platform is a component written for the tests: /events is its
// authorization-event URL (it keeps the latest ticket and answers success),
// /wechat/{appid}/callback its message URL. Each message push is checked and
// decrypted with wxcrypt, then answered with what onMessage returns: a
// plaintext starting with "<xml>" goes back as an encrypted passive reply
// (wxcrypt's Reply, echoing the nonce), anything else ("", "success") as is.
// mangle, if set, rewrites the final answer body.
type platform struct {
	t     *testing.T
	srv   *httptest.Server
	crypt *wxcrypt.Crypter

	mu         sync.Mutex
	base       string // the sandbox, for API calls
	ticket     string
	onMessage  func(appid string, msg map[string]string) string
	mangle     func(body []byte, q url.Values) []byte
	deliveries []delivery

	bg     sync.WaitGroup // work started after answering (customer-service sends)
	bgErrs []string
}

// testTime is the CreateTime of the test platform's replies.
var testTime = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// delivery is one message push as the platform received it.
type delivery struct {
	AppID    string
	Msg      map[string]string
	Query    url.Values
	Envelope wxcrypt.Envelope
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	c, err := wxcrypt.New(testToken, testAESKey, testComponent)
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, crypt: c, onMessage: func(string, map[string]string) string { return "success" }}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", p.serveEvent)
	mux.HandleFunc("POST /wechat/{appid}/callback", p.serveMessage)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		p.bg.Wait()
		p.srv.Close()
	})
	return p
}

// newPlatformEnv starts a sandbox whose MessageURL is p's (and, with
// events, its PushURL too).
func newPlatformEnv(t *testing.T, events bool, tweak ...func(*Config)) (*env, *platform) {
	t.Helper()
	p := newPlatform(t)
	e := newEnv(t, append([]func(*Config){func(c *Config) {
		c.MessageURL = p.srv.URL + "/wechat/$APPID$/callback"
		if events {
			c.PushURL = p.srv.URL + "/events"
		}
	}}, tweak...)...)
	p.mu.Lock()
	p.base = e.base
	p.mu.Unlock()
	return e, p
}

func (p *platform) set(onMessage func(appid string, msg map[string]string) string) {
	p.mu.Lock()
	p.onMessage = onMessage
	p.mu.Unlock()
}

func (p *platform) setMangle(f func(body []byte, q url.Values) []byte) {
	p.mu.Lock()
	p.mangle = f
	p.mu.Unlock()
}

func (p *platform) received() []delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]delivery(nil), p.deliveries...)
}

func (p *platform) serveEvent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	plain, _, err := p.crypt.Open(body, q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"))
	if err != nil {
		http.Error(w, "bad push", http.StatusBadRequest)
		return
	}
	f, _ := plainFields(plain)
	if f["InfoType"] == InfoTicket {
		p.mu.Lock()
		p.ticket = f["ComponentVerifyTicket"]
		p.mu.Unlock()
	}
	_, _ = io.WriteString(w, "success")
}

func (p *platform) serveMessage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	bad := func(format string, args ...any) {
		p.bgError(fmt.Sprintf(format, args...))
		http.Error(w, "bad push", http.StatusBadRequest)
	}
	if r.Header.Get("Content-Type") != "text/xml" || q.Get("encrypt_type") != "aes" || q.Get("openid") == "" {
		bad("message push: content type %q, query %v", r.Header.Get("Content-Type"), q)
		return
	}
	if !wxcrypt.VerifySignature(testToken, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
		bad("message push: bad signature")
		return
	}
	env, err := wxcrypt.ParseEnvelope(body)
	if err != nil || env.ToUserName == "" || env.AppID != "" {
		bad("message push envelope %+v: %v", env, err)
		return
	}
	plain, _, err := p.crypt.Open(body, q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"))
	if err != nil {
		bad("message push does not decrypt for the component appid: %v", err)
		return
	}
	msg, err := plainFields(plain)
	if err != nil || msg["FromUserName"] != q.Get("openid") || msg["ToUserName"] != env.ToUserName {
		bad("message plaintext %v (query openid %q, envelope %q): %v", msg, q.Get("openid"), env.ToUserName, err)
		return
	}
	appid := r.PathValue("appid")
	p.mu.Lock()
	p.deliveries = append(p.deliveries, delivery{AppID: appid, Msg: msg, Query: q, Envelope: env})
	onMessage, mangle := p.onMessage, p.mangle
	p.mu.Unlock()

	answer := []byte(onMessage(appid, msg))
	if bytes.HasPrefix(answer, []byte("<xml>")) {
		answer, err = p.crypt.Reply(wxcrypt.Key{}, answer, q.Get("timestamp"), q.Get("nonce"))
		if err != nil {
			bad("building the reply: %v", err)
			return
		}
	}
	if mangle != nil {
		answer = mangle(answer, q)
	}
	_, _ = w.Write(answer)
}

func (p *platform) bgError(msg string) {
	p.mu.Lock()
	p.bgErrs = append(p.bgErrs, msg)
	p.mu.Unlock()
}

// errors returns what went wrong in the platform's handlers and background
// work, after waiting for that work.
func (p *platform) errors() []string {
	p.bg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bgErrs...)
}

// textReply is a passive-reply plaintext: text content from the account
// (msg's ToUserName) to the fan (its FromUserName).
func textReplyXML(msg map[string]string, content string) string {
	return string(messageXML(msg["FromUserName"], msg["ToUserName"], testTime, "text", xmlField{"Content", content, false}))
}

// api calls the sandbox as the platform does (a plain HTTP client) and
// decodes the JSON answer.
func (p *platform) api(path string, query url.Values, body any) (map[string]any, error) {
	p.mu.Lock()
	base := p.base
	p.mu.Unlock()
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if code, _ := out["errcode"].(float64); code != 0 {
		return out, fmt.Errorf("%s: errcode %v %v", path, out["errcode"], out["errmsg"])
	}
	return out, nil
}

// authorizerToken does what a platform does with a query_auth_code: a
// component token from the latest ticket, then api_query_auth.
func (p *platform) authorizerToken(code string) (appid, token, refresh string, err error) {
	p.mu.Lock()
	ticket := p.ticket
	p.mu.Unlock()
	ct, err := p.api("/cgi-bin/component/api_component_token", nil, map[string]string{
		"component_appid": testComponent, "component_appsecret": testSecret, "component_verify_ticket": ticket,
	})
	if err != nil {
		return "", "", "", err
	}
	ctok, _ := ct["component_access_token"].(string)
	qa, err := p.api("/cgi-bin/component/api_query_auth", url.Values{"component_access_token": {ctok}},
		map[string]string{"component_appid": testComponent, "authorization_code": code})
	if err != nil {
		return "", "", "", err
	}
	info, _ := qa["authorization_info"].(map[string]any)
	appid, _ = info["authorizer_appid"].(string)
	token, _ = info["authorizer_access_token"].(string)
	refresh, _ = info["authorizer_refresh_token"].(string)
	// The other component APIs work for the test accounts too.
	if _, err := p.api("/cgi-bin/component/api_get_authorizer_info", url.Values{"component_access_token": {ctok}},
		map[string]string{"component_appid": testComponent, "authorizer_appid": appid}); err != nil {
		return "", "", "", err
	}
	if _, err := p.api("/cgi-bin/component/api_authorizer_token", url.Values{"component_access_token": {ctok}},
		map[string]string{"component_appid": testComponent, "authorizer_appid": appid, "authorizer_refresh_token": refresh}); err != nil {
		return "", "", "", err
	}
	return appid, token, refresh, nil
}

func (p *platform) sendText(token, openid, content string) error {
	_, err := p.api("/cgi-bin/message/custom/send", url.Values{"access_token": {token}}, map[string]any{
		"touser": openid, "msgtype": "text", "text": map[string]string{"content": content},
	})
	return err
}

// releaseBehaviour says how releaseAnswers gets the 全网发布 cases wrong.
type releaseBehaviour struct {
	textReply   string // passive reply to TESTCOMPONENT_MSG_TYPE_TEXT; default right
	swapNames   bool   // reply with ToUserName and FromUserName swapped
	noDedup     bool   // send the customer-service message on every delivery
	noCustom    bool   // never send it
	eventAnswer string // "" right; otherwise answered as is
}

// releaseAnswers is a component that passes the release check unless b
// says otherwise: it de-duplicates retries by MsgId and sends the
// customer-service message after answering.
func (p *platform) releaseAnswers(b releaseBehaviour) func(appid string, msg map[string]string) string {
	var mu sync.Mutex
	seen := map[string]bool{}
	tokens := map[string]string{} // query_auth_code -> authorizer token, for noDedup
	return func(appid string, msg map[string]string) string {
		reply := func(content string) string {
			if b.swapNames {
				return string(messageXML(msg["ToUserName"], msg["FromUserName"], testTime, "text", xmlField{"Content", content, false}))
			}
			return textReplyXML(msg, content)
		}
		switch {
		case msg["MsgType"] == "text" && msg["Content"] == "TESTCOMPONENT_MSG_TYPE_TEXT":
			if b.textReply != "" {
				return reply(b.textReply)
			}
			return reply("TESTCOMPONENT_MSG_TYPE_TEXT_callback")
		case msg["MsgType"] == "text" && strings.HasPrefix(msg["Content"], "QUERY_AUTH_CODE:"):
			code := strings.TrimPrefix(msg["Content"], "QUERY_AUTH_CODE:")
			mu.Lock()
			dup := seen[msg["MsgId"]]
			seen[msg["MsgId"]] = true
			mu.Unlock()
			if b.noCustom || (dup && !b.noDedup) {
				return ""
			}
			p.bg.Go(func() {
				mu.Lock() // one exchange per code; noDedup reuses the token
				tok := tokens[code]
				if tok == "" {
					var err error
					var got string
					got, tok, _, err = p.authorizerToken(code)
					if err != nil || got != appid {
						mu.Unlock()
						p.bgError(fmt.Sprintf("exchanging the query_auth_code for %s: %s, %v", appid, got, err))
						return
					}
					tokens[code] = tok
				}
				mu.Unlock()
				if err := p.sendText(tok, msg["FromUserName"], code+"_from_api"); err != nil {
					p.bgError(fmt.Sprintf("customer-service send for %s: %v", appid, err))
				}
			})
			return ""
		case msg["MsgType"] == "event":
			if b.eventAnswer != "" {
				return b.eventAnswer
			}
			return reply(msg["Event"] + "from_callback")
		}
		return "success"
	}
}

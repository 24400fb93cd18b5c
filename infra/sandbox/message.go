package sandbox

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

// Message pushes: what WeChat POSTs to the component's message-and-event
// URL (消息与事件接收URL, Config.MessageURL) for an authorized account, and
// how it reads the answer (protocol reference 1.3, 1.4, 4.1; addendum A.1).

// maxMessageLog bounds the message-push log kept for MessagePushes.
const maxMessageLog = 1000

// MessageResult is one delivery of a message push as WeChat saw it.
type MessageResult struct {
	Status int    // receiver's HTTP status, 0 if it did not answer
	Body   []byte // the receiver's answer as sent (at most 1 MB)
	// Reply is the decrypted passive-reply plaintext; nil when there was no
	// reply or the reply was rejected.
	Reply []byte
	// NoReply is true when the answer was empty or "success" (surrounding
	// white space ignored): nothing goes to the fan.
	NoReply bool
}

// MessagePush is one delivery in the message-push log.
type MessagePush struct {
	AppID   string // the authorizer the message was for
	OpenID  string // the plaintext's FromUserName
	MsgType string
	Event   string // for MsgType event
	Time    time.Time
	Status  int   // receiver's HTTP status, 0 if it did not answer
	Replied bool  // a valid passive reply came back
	Err     error // nil when WeChat accepted the answer
}

// MessagePushes returns the message-push log, oldest first (at most the
// last 1000 deliveries).
func (s *Sandbox) MessagePushes() []MessagePush {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]MessagePush(nil), s.messagePushes...)
}

// outMessage is a checked plaintext on its way to MessageURL.
type outMessage struct {
	appid, target      string
	toUserName, openid string
	msgType, event     string
	plain              []byte
}

// kind is how the log and errors name the message: its MsgType, or its
// Event for events.
func (m *outMessage) kind() string {
	if m.msgType == "event" && m.event != "" {
		return m.event
	}
	return m.msgType
}

// PushMessage delivers plaintext (a message or event XML such as
// TextMessage builds) for the authorized account appid to MessageURL, the
// way WeChat does: "$APPID$" replaced by appid; the query signature,
// timestamp, nonce, openid (the plaintext's FromUserName), encrypt_type=aes
// and msg_signature; the body <xml><ToUserName/><Encrypt/></xml>, encrypted
// for the component appid. It waits at most PushTimeout for the answer.
//
// An empty or "success" answer is NoReply. Anything else must be an
// encrypted passive reply (<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/>)
// whose MsgSignature is right, whose Nonce echoes the request's and which
// decrypts (component appid) to XML; its plaintext is MessageResult.Reply.
// Otherwise, and on a status other than 200 or no answer, the error is a
// *MessageError (reply problems wrap ErrBadReply) returned with the result.
//
// A message from a fan opens their customer-service window (see
// /cgi-bin/message/custom/send) before the push is sent, as the fan's
// message reaches WeChat whatever the platform answers.
func (s *Sandbox) PushMessage(ctx context.Context, appid string, plaintext []byte) (MessageResult, error) {
	m, err := s.prepareMessage(appid, plaintext)
	if err != nil {
		return MessageResult{}, err
	}
	return s.deliverMessage(ctx, m)
}

// PushMessageTimes delivers the same plaintext n times in a row, the way
// WeChat's retries reach a receiver (each delivery has its own timestamp,
// nonce and ciphertext), and returns every result. The fan's
// customer-service window is opened once: the fan sent one message. The
// error joins the failed deliveries' errors.
func (s *Sandbox) PushMessageTimes(ctx context.Context, appid string, plaintext []byte, n int) ([]MessageResult, error) {
	if n < 1 {
		return nil, fmt.Errorf("sandbox: PushMessageTimes: n is %d, must be at least 1", n)
	}
	m, err := s.prepareMessage(appid, plaintext)
	if err != nil {
		return nil, err
	}
	var results []MessageResult
	var errs []error
	for i := range n {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		r, err := s.deliverMessage(ctx, m)
		results = append(results, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("delivery %d of %d: %w", i+1, n, err))
		}
	}
	return results, errors.Join(errs...)
}

// prepareMessage checks a push and opens the fan's customer-service window.
func (s *Sandbox) prepareMessage(appid string, plaintext []byte) (*outMessage, error) {
	if s.cfg.MessageURL == "" {
		return nil, ErrNoMessageURL
	}
	f, err := plainFields(plaintext)
	if err != nil {
		return nil, fmt.Errorf("sandbox: message plaintext: %w", err)
	}
	m := &outMessage{
		appid:      appid,
		target:     strings.ReplaceAll(s.cfg.MessageURL, appIDPlaceholder, appid),
		toUserName: f["ToUserName"],
		openid:     f["FromUserName"],
		msgType:    f["MsgType"],
		event:      f["Event"],
		plain:      plaintext,
	}
	if m.toUserName == "" || m.openid == "" || m.msgType == "" {
		return nil, errors.New("sandbox: message plaintext needs ToUserName, FromUserName and MsgType")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authorizers[appid]
	switch {
	case a == nil:
		return nil, fmt.Errorf("push message to %s: %w", appid, ErrUnknownAccount)
	case !a.authorized: // WeChat pushes only for accounts authorized to the component
		return nil, fmt.Errorf("push message to %s: %w", appid, ErrNotAuthorized)
	case a.acct.UserName != "" && m.toUserName != a.acct.UserName:
		return nil, fmt.Errorf("sandbox: message ToUserName %q is not %s's original id %q", m.toUserName, appid, a.acct.UserName)
	}
	s.fanTriggerLocked(a.acct, m.openid, m.msgType, m.event, s.now())
	return m, nil
}

// deliverMessage sends one delivery, checks the answer and records it.
func (s *Sandbox) deliverMessage(ctx context.Context, m *outMessage) (MessageResult, error) {
	// Stop when the caller, WeChat's 5 s or the sandbox gives up.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PushTimeout)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()

	now := s.now()
	status, raw, nonce, err := s.postEncrypted(ctx, m.target, m.plain, m.toUserName, m.openid, now, maxBody)
	res := MessageResult{Status: status, Body: raw}
	if err == nil {
		res.Reply, res.NoReply, err = s.openReply(status, raw, nonce)
	}
	rec := MessagePush{AppID: m.appid, OpenID: m.openid, MsgType: m.msgType, Event: m.event, Time: now,
		Status: status, Replied: res.Reply != nil}
	if err != nil {
		err = &MessageError{AppID: m.appid, MsgType: m.kind(), Status: status, Body: shorten(strings.TrimSpace(string(raw))), Err: err}
		rec.Err = err
	}

	s.mu.Lock()
	s.messagePushes = append(s.messagePushes, rec)
	if over := len(s.messagePushes) - maxMessageLog; over > 0 {
		s.messagePushes = append(s.messagePushes[:0:0], s.messagePushes[over:]...)
	}
	s.mu.Unlock()

	// Contents are not logged: they can carry codes (QUERY_AUTH_CODE:...).
	switch {
	case err != nil && s.ctx.Err() != nil:
		s.log.Debug("message push abandoned: sandbox closing", "authorizer_appid", m.appid, "msg_type", m.kind())
	case err != nil:
		s.log.Warn("message push failed", "authorizer_appid", m.appid, "msg_type", m.kind(), "status", status, "err", err)
	default:
		s.log.Info("message push delivered", "authorizer_appid", m.appid, "msg_type", m.kind(), "passive_reply", res.Reply != nil)
	}
	return res, err
}

// openReply reads a message push's answer the way WeChat does: empty or
// "success" is no reply; anything else must be an encrypted passive reply
// for the component, signed over its own TimeStamp and the echoed Nonce.
func (s *Sandbox) openReply(status int, raw []byte, nonce string) (reply []byte, noReply bool, err error) {
	if status != http.StatusOK {
		return nil, false, errReceiverStatus
	}
	answer := bytes.TrimSpace(raw)
	if len(answer) == 0 || string(answer) == "success" {
		return nil, true, nil
	}
	var env struct {
		XMLName      xml.Name `xml:"xml"`
		Encrypt      string
		MsgSignature string
		TimeStamp    string
		Nonce        string
	}
	if err := xml.Unmarshal(answer, &env); err != nil {
		return nil, false, fmt.Errorf("%w: not an <xml> passive reply", ErrBadReply)
	}
	switch {
	case env.Encrypt == "":
		return nil, false, fmt.Errorf("%w: no <Encrypt> (a component's replies must be encrypted)", ErrBadReply)
	case env.MsgSignature == "" || env.TimeStamp == "" || env.Nonce == "":
		return nil, false, fmt.Errorf("%w: <MsgSignature>, <TimeStamp> or <Nonce> missing", ErrBadReply)
	case env.Nonce != nonce:
		return nil, false, fmt.Errorf("%w: <Nonce> does not echo the request's nonce", ErrBadReply)
	}
	want := wxcrypt.MsgSignature(s.cfg.Token, env.TimeStamp, env.Nonce, env.Encrypt)
	if subtle.ConstantTimeCompare([]byte(want), []byte(env.MsgSignature)) != 1 {
		return nil, false, fmt.Errorf("%w: <MsgSignature> does not match", ErrBadReply)
	}
	plain, _, err := s.crypter.Decrypt(env.MsgSignature, env.TimeStamp, env.Nonce, env.Encrypt)
	if err != nil {
		return nil, false, fmt.Errorf("%w: does not decrypt: %v", ErrBadReply, err)
	}
	f, err := plainFields(plain)
	if err != nil {
		return nil, false, fmt.Errorf("%w: plaintext: %v", ErrBadReply, err)
	}
	if f["MsgType"] == "" {
		return nil, false, fmt.Errorf("%w: plaintext has no MsgType", ErrBadReply)
	}
	return plain, false, nil
}

package sandbox

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

// Authorization-event InfoTypes (protocol reference section 2).
const (
	InfoTicket           = "component_verify_ticket"
	InfoAuthorized       = "authorized"
	InfoUnauthorized     = "unauthorized"
	InfoUpdateAuthorized = "updateauthorized"
)

// maxPushLog bounds the push log kept for Pushes and the status page.
const maxPushLog = 1000

// Push is one attempt to deliver an authorization event to PushURL.
type Push struct {
	InfoType        string
	AuthorizerAppid string // "" for tickets
	Time            time.Time
	Status          int   // receiver's HTTP status, 0 if it did not answer
	Err             error // nil when the receiver answered 200 "success"
}

// Pushes returns the push log, oldest first (at most the last 1000).
func (s *Sandbox) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// PushTicket issues a fresh component_verify_ticket and pushes it to
// PushURL, waiting for the receiver's answer. The ticket is valid whether or
// not the push succeeds; with no PushURL it is only issued.
func (s *Sandbox) PushTicket(ctx context.Context) (string, error) {
	s.firstTicketOnce.Do(func() { close(s.firstTicket) }) // starts a ManualFirstTicket timer
	now := s.now()
	t := newTicket()
	s.mu.Lock()
	s.tickets[t] = &ticket{issued: now}
	s.sweepCodesLocked(now)
	s.mu.Unlock()
	if s.cfg.PushURL == "" {
		return t, nil
	}
	if err := s.push(ctx, InfoTicket, "", xmlField{"ComponentVerifyTicket", t, false}); err != nil {
		return t, err
	}
	return t, nil
}

// xmlField is one element of a pushed event or message.
type xmlField struct {
	name, value string
	number      bool // written as plain (escaped) text, without CDATA
}

// eventXML renders a push plaintext the way WeChat does (CDATA for strings).
func eventXML(componentAppID, infoType string, created time.Time, fields []xmlField) []byte {
	all := append([]xmlField{
		{"AppId", componentAppID, false},
		{"CreateTime", strconv.FormatInt(created.Unix(), 10), true},
		{"InfoType", infoType, false},
	}, fields...)
	return xmlDoc(all)
}

// xmlDoc renders <xml> with fields as its children.
func xmlDoc(fields []xmlField) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	writeFields(&b, fields)
	b.WriteString("</xml>")
	return b.Bytes()
}

// writeFields writes each field as an element: strings in CDATA, numbers
// (and other plain values) as escaped text.
func writeFields(b *bytes.Buffer, fields []xmlField) {
	for _, f := range fields {
		b.WriteString("<" + f.name + ">")
		if f.number {
			_ = xml.EscapeText(b, []byte(f.value)) // a bytes.Buffer never fails
		} else {
			b.WriteString(cdata(f.value))
		}
		b.WriteString("</" + f.name + ">")
	}
}

// cdata wraps v in CDATA, splitting any "]]>" inside it.
func cdata(v string) string {
	return "<![CDATA[" + strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>") + "]]>"
}

// push encrypts one event and POSTs it to PushURL the way WeChat does:
// ?signature&timestamp&nonce&encrypt_type=aes&msg_signature with the
// <xml><AppId/><Encrypt/></xml> envelope. Anything but HTTP 200 with the body
// "success" is a failed push. The attempt is logged and recorded.
func (s *Sandbox) push(ctx context.Context, infoType, authorizerAppid string, fields ...xmlField) error {
	if s.cfg.PushURL == "" {
		return nil
	}
	// Stop when either the caller or the sandbox gives up.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PushTimeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	if authorizerAppid != "" {
		fields = append([]xmlField{{"AuthorizerAppid", authorizerAppid, false}}, fields...)
	}
	now := s.now()
	rec := Push{InfoType: infoType, AuthorizerAppid: authorizerAppid, Time: now}
	status, body, err := s.deliver(ctx, eventXML(s.cfg.ComponentAppID, infoType, now, fields), now)
	rec.Status = status
	if err != nil {
		err = &PushError{InfoType: infoType, Status: status, Body: body, Err: err}
		rec.Err = err
	}

	s.mu.Lock()
	s.pushes = append(s.pushes, rec)
	if over := len(s.pushes) - maxPushLog; over > 0 {
		s.pushes = append(s.pushes[:0:0], s.pushes[over:]...)
	}
	s.mu.Unlock()

	switch {
	case err != nil && s.ctx.Err() != nil:
		s.log.Debug("push abandoned: sandbox closing", "info_type", infoType, "authorizer_appid", authorizerAppid)
	case err != nil:
		s.log.Warn("push failed", "info_type", infoType, "authorizer_appid", authorizerAppid, "status", status, "err", err)
	default:
		s.log.Info("push delivered", "info_type", infoType, "authorizer_appid", authorizerAppid)
	}
	return err
}

// deliver sends one encrypted push to PushURL and reports the receiver's
// HTTP status and the start of its answer.
func (s *Sandbox) deliver(ctx context.Context, plain []byte, now time.Time) (status int, answer string, err error) {
	status, raw, _, err := s.postEncrypted(ctx, s.cfg.PushURL, plain, "", "", now, 4096)
	if err != nil {
		return status, "", err
	}
	answer = strings.TrimSpace(string(raw))
	if status != http.StatusOK || answer != "success" {
		return status, shorten(answer), errReceiverNotSuccess
	}
	return status, answer, nil
}

// shorten cuts a receiver's answer for errors and logs.
func shorten(answer string) string {
	if len(answer) > 200 {
		return strings.ToValidUTF8(answer[:200], "")
	}
	return answer
}

// postEncrypted encrypts plain and POSTs it to target the way WeChat does:
// the body <xml><AppId/><Encrypt/></xml> (<ToUserName/> instead of AppId
// when toUserName is set, for message pushes) and the query signature,
// timestamp, nonce, openid (message pushes), encrypt_type=aes and
// msg_signature. It returns the receiver's status, at most limit bytes of its
// answer and the nonce it sent (a passive reply must echo it).
func (s *Sandbox) postEncrypted(ctx context.Context, target string, plain []byte, toUserName, openid string,
	now time.Time, limit int64) (status int, answer []byte, nonce string, err error) {
	timestamp := strconv.FormatInt(now.Unix(), 10)
	nonce = newNonce()
	body, msgSig, err := s.crypter.PushBody(plain, toUserName, timestamp, nonce)
	if err != nil {
		return 0, nil, nonce, fmt.Errorf("encrypting: %w", err)
	}
	u, err := url.Parse(target)
	if err != nil {
		return 0, nil, nonce, fmt.Errorf("%w: %v", errPushRequestBuilding, err)
	}
	q := u.Query()
	q.Set("signature", wxcrypt.Signature(s.cfg.Token, timestamp, nonce))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	if openid != "" {
		q.Set("openid", openid)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", msgSig)
	u.RawQuery = q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nonce, fmt.Errorf("%w: %v", errPushRequestBuilding, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "Mozilla/4.0 (wxtpp WeChat sandbox)")
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL with its signatures: keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nonce, fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return resp.StatusCode, nil, nonce, fmt.Errorf("%w: %v", errPushBodyUnreadable, err)
	}
	return resp.StatusCode, raw, nonce, nil
}

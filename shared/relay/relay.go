// Package relay delivers an account's messages and events to its merchant's webhook: a JSON POST signed with
// the tenant's secret (X-Wxtpp-Timestamp, X-Wxtpp-Signature: sha256=HMAC(secret, timestamp + "." + body)),
// whose answer may carry the passive reply. In AWS a webhook is https and never reaches loopback, link-local
// (the metadata service) or private addresses: the address is checked where the connection is made, after
// resolution, so a name that resolves (or re-resolves) to one is refused too.
package relay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/wxtpp/platform/shared/wxapi"
)

// Headers of a delivery.
const (
	HeaderTimestamp = "X-Wxtpp-Timestamp"
	HeaderSignature = "X-Wxtpp-Signature"
	HeaderDelivery  = "X-Wxtpp-Delivery"
)

// DefaultTimeout is how long a webhook has to answer (the message path must answer WeChat within 5 s).
const DefaultTimeout = 3 * time.Second

// maxAnswer bounds what is read of a webhook's answer.
const maxAnswer = 64 << 10

// Delivery is one message or event relayed to a tenant. ID is the same on every retry of the same push, so
// the merchant can ignore a repeat.
type Delivery struct {
	ID      string         `json:"delivery_id"`
	Tenant  string         `json:"tenant"`
	AppID   string         `json:"appid"`
	Message map[string]any `json:"message"` // the decrypted fields under WeChat's own names
}

// Errors of a delivery. Every one means "not delivered": the caller retries later.
var (
	ErrRefusedAddress = errors.New("webhook address refused: loopback, link-local and private networks are not reachable")
	ErrBadURL         = errors.New("webhook URL not allowed")
)

// StatusError is a webhook's non-2xx answer.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("webhook answered HTTP %d", e.Status) }

// ReplyError is a 2xx answer whose reply the platform cannot send.
type ReplyError struct{ Reason string }

func (e *ReplyError) Error() string { return "webhook reply not usable: " + e.Reason }

// Client delivers to webhooks. Build it with New.
type Client struct {
	http       *http.Client
	allowLocal bool
	Timeout    time.Duration // per delivery; default DefaultTimeout
	Now        func() time.Time
}

// New returns a client. allowLocal lets webhooks use http and reach loopback and private addresses: for the
// local stack and tests only (WEBHOOK_ALLOW_LOCAL).
func New(allowLocal bool) *Client {
	d := &net.Dialer{Timeout: DefaultTimeout}
	if !allowLocal {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			return checkAddr(address)
		}
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would make the connection, and the address check, elsewhere
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   DefaultTimeout,
		ResponseHeaderTimeout: DefaultTimeout,
	}
	return &Client{
		http:       &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		allowLocal: allowLocal, Now: time.Now,
	}
}

// checkAddr refuses addresses a webhook must not reach.
func checkAddr(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrRefusedAddress, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !public(ip) {
		return fmt.Errorf("%w (%s)", ErrRefusedAddress, host)
	}
	return nil
}

// carrierNAT is 100.64.0.0/10, shared address space, not reachable from the internet either.
var carrierNAT = netip.MustParsePrefix("100.64.0.0/10")

func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!ip.IsUnspecified() && !carrierNAT.Contains(ip)
}

// CheckURL validates a webhook URL before it is stored: https (http too with allowLocal), an absolute URL
// without credentials, and, unless allowLocal, a host whose every address is public.
func CheckURL(ctx context.Context, raw string, allowLocal bool) error {
	u, err := parseURL(raw, allowLocal)
	if err != nil || allowLocal {
		return err
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return fmt.Errorf("%w: %s does not resolve: %v", ErrBadURL, u.Hostname(), err)
	}
	for _, a := range addrs {
		if !public(a) {
			return fmt.Errorf("%w: %s resolves to %s", ErrRefusedAddress, u.Hostname(), a)
		}
	}
	return nil
}

func parseURL(raw string, allowLocal bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "":
		return nil, fmt.Errorf("%w: not an absolute URL", ErrBadURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: no credentials in the URL", ErrBadURL)
	case u.Scheme != "https" && !(allowLocal && u.Scheme == "http"):
		return nil, fmt.Errorf("%w: the scheme must be https", ErrBadURL)
	case len(raw) > 2048:
		return nil, fmt.Errorf("%w: longer than 2048 characters", ErrBadURL)
	}
	return u, nil
}

// Sign returns the X-Wxtpp-Signature value for a body sent at timestamp (Unix seconds).
func Sign(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a merchant does with a delivery (Go): the signature must match, in constant time, and the
// timestamp be recent.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// Deliver POSTs d to webhook, signed with secret, and returns the reply the webhook asked for (nil if none).
// An answer later than Timeout, a non-2xx status or an unusable reply is an error: not delivered.
func (c *Client) Deliver(ctx context.Context, webhook, secret string, d Delivery) (*wxapi.CustomMessage, error) {
	// The address is checked by the dialer, where the connection is made.
	if _, err := parseURL(webhook, c.allowLocal); err != nil {
		return nil, err
	}
	body, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode delivery: %w", err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	ts := c.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wxtpp-relay/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	req.Header.Set(HeaderDelivery, d.ID)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error repeats the URL, which may carry the merchant's own token
		}
		return nil, fmt.Errorf("webhook not reached: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("webhook answer not read: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Status: resp.StatusCode}
	}
	return parseReply(answer)
}

// Reply types a webhook may answer with: those a passive reply can carry.
var replyTypes = map[string]bool{"text": true, "image": true, "voice": true, "video": true, "music": true, "news": true}

// parseReply reads {"reply": {...}} (customer-service message shapes); an empty answer or one without a
// reply means none.
func parseReply(answer []byte) (*wxapi.CustomMessage, error) {
	if len(answer) > maxAnswer {
		return nil, &ReplyError{"answer larger than 64 KB"}
	}
	if len(bytes.TrimSpace(answer)) == 0 {
		return nil, nil
	}
	var a struct {
		Reply *wxapi.CustomMessage `json:"reply"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		return nil, &ReplyError{"answer is not JSON"}
	}
	if a.Reply == nil {
		return nil, nil
	}
	r := a.Reply
	if !replyTypes[r.MsgType] {
		return nil, &ReplyError{fmt.Sprintf("msgtype %q cannot be a passive reply (text, image, voice, video, music, news)", r.MsgType)}
	}
	r.ToUser = "-" // the fan: filled in by the message path
	if err := r.Validate(wxapi.KindOfficialAccount); err != nil {
		return nil, &ReplyError{err.Error()}
	}
	r.ToUser = ""
	return r, nil
}

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

// Delivery is one message or event relayed to a tenant, or one of the platform's own notifications about
// the tenant's accounts. ID is the same on every retry of the same push or notification, so the merchant can
// ignore a repeat.
type Delivery struct {
	ID           string         `json:"delivery_id"`
	Tenant       string         `json:"tenant"`
	AppID        string         `json:"appid"`
	Message      map[string]any `json:"message,omitempty"`      // a WeChat push: the decrypted fields under WeChat's own names
	Notification *Notification  `json:"notification,omitempty"` // or the platform's notification
}

// Notification is a change in an account's life the platform tells its tenant about (shared/lifecycle).
type Notification struct {
	Type    string         `json:"type"` // e.g. account.authorized, campaign.app_released
	At      int64          `json:"at"`   // unix seconds
	Details map[string]any `json:"details,omitempty"`
}

// Errors of a delivery. Every one means "not delivered": the caller retries later.
var (
	ErrRefusedAddress = errors.New("webhook address refused: loopback, link-local and private networks are not reachable")
	ErrBadURL         = errors.New("webhook URL not allowed")
)

// StatusError is a webhook's non-2xx answer.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("webhook answered HTTP %d", e.Status) }

// Result is a delivery the webhook took (any 2xx answer).
type Result struct {
	// Reply is the passive reply the webhook asked for; nil if none.
	Reply *wxapi.CustomMessage
	// Problem says why a reply the webhook gave cannot be used ("" if none): the delivery still counts.
	Problem string
}

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

// notPublic are ranges a webhook must not reach besides what netip classifies (private, loopback,
// link-local, multicast, unspecified).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT, shared address space
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
	netip.MustParsePrefix("2001::/32"),      // Teredo: tunnels to any IPv4 address
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated, still routed on some networks)
	netip.MustParsePrefix("::/96"),          // IPv4-compatible ::a.b.c.d
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
}

// Ranges that carry an IPv4 address, which decides: NAT64 (the last 32 bits) and 6to4 (bits 16-48).
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return public(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return public(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
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

// Deliver POSTs d to webhook, signed with secret. Any 2xx answer within Timeout is a delivery, with the reply
// the webhook asked for if there is a usable one; anything else (later, non-2xx, unreachable, a refused
// address) is an error: not delivered.
func (c *Client) Deliver(ctx context.Context, webhook, secret string, d Delivery) (Result, error) {
	// The address is checked by the dialer, where the connection is made.
	if _, err := parseURL(webhook, c.allowLocal); err != nil {
		return Result{}, err
	}
	body, err := json.Marshal(d)
	if err != nil {
		return Result{}, fmt.Errorf("encode delivery: %w", err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrBadURL, err)
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
		return Result{}, fmt.Errorf("webhook not reached: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return Result{}, fmt.Errorf("webhook answer not read: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{}, &StatusError{Status: resp.StatusCode}
	}
	reply, problem := parseReply(answer)
	return Result{Reply: reply, Problem: problem}, nil
}

// Reply types a webhook may answer with: those a passive reply can carry (a mini program's reply goes out as a
// customer-service message, which takes text and image).
var replyTypes = map[string]bool{"text": true, "image": true, "voice": true, "video": true, "music": true, "news": true}

// parseReply reads {"reply": {...}} (customer-service message shapes). An answer that is not JSON, or has no
// reply, asks for none; a reply the platform cannot send comes back as the problem with it.
func parseReply(answer []byte) (*wxapi.CustomMessage, string) {
	if len(answer) > maxAnswer {
		return nil, "answer larger than 64 KB"
	}
	var a struct {
		Reply *wxapi.CustomMessage `json:"reply"`
	}
	if len(bytes.TrimSpace(answer)) == 0 || json.Unmarshal(answer, &a) != nil || a.Reply == nil {
		return nil, "" // "ok", "success", {} or plain text: delivered, no reply
	}
	r := a.Reply
	if !replyTypes[r.MsgType] {
		return nil, fmt.Sprintf("msgtype %q cannot be a reply (text, image, voice, video, music, news)", r.MsgType)
	}
	r.ToUser = "-" // the fan: filled in by the message path
	if err := r.Validate(wxapi.KindOfficialAccount); err != nil {
		return nil, err.Error()
	}
	r.ToUser = ""
	return r, ""
}

// Package authlink signs and verifies the authorization start links the service provider hands its merchants:
// /auth/start?tenant=T&exp=E[&auth_type=A][&biz_appid=B][&return_url=U]&sig=S. Every parameter the page acts
// on is covered by the signature (HMAC-SHA256 with the platform's link signing key, kept with the other
// secrets), so a visitor can neither start an authorization for a tenant nor change what a link asks for.
// Parameters outside the signature (WeChat appends from=singlemessage to shared links) are ignored.
package authlink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wxtpp/platform/shared/tenants"
)

// Path is where links point.
const Path = "/auth/start"

// MinKey is the shortest signing key accepted (bytes).
const MinKey = 16

// MaxTTL is the longest a link may live.
const MaxTTL = 366 * 24 * time.Hour

// Link errors. The page shows each with its own message and spends nothing on a link that fails.
var (
	ErrUnsigned  = errors.New("link is not signed")
	ErrSignature = errors.New("link signature does not match")
	ErrExpired   = errors.New("link has expired")
	ErrInvalid   = errors.New("link is malformed")
)

// Link is what a signed start link asks for.
type Link struct {
	Tenant    string
	Expires   time.Time // whole seconds
	AuthType  string    // "1" official accounts, "2" mini programs, "3" or "" both
	BizAppID  string    // one account only, optional
	ReturnURL string    // where the result page's Continue button leads, optional (checked against the allow-list)
}

var appIDRE = regexp.MustCompile(`^wx[0-9A-Za-z]{16}$`)

// maxReturnURL bounds a return URL: it travels inside the link, the state and WeChat's redirect_uri.
const maxReturnURL = 1024

// Validate reports a link that cannot be served.
func (l Link) Validate() error {
	var problems []string
	if !tenants.ValidID(l.Tenant) {
		problems = append(problems, "tenant must be 1 to 64 letters, digits, _ . or -")
	}
	if l.Expires.IsZero() {
		problems = append(problems, "expiry missing")
	}
	switch l.AuthType {
	case "", "1", "2", "3":
	default:
		problems = append(problems, "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both)")
	}
	if l.BizAppID != "" && !appIDRE.MatchString(l.BizAppID) {
		problems = append(problems, "biz_appid must be an AppID: wx followed by 16 letters or digits")
	}
	if l.ReturnURL != "" {
		u, err := url.Parse(l.ReturnURL)
		if err != nil || len(l.ReturnURL) > maxReturnURL || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, "return_url must be an absolute https URL of at most 1024 characters")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// params are the signed parameters, without the signature.
func (l Link) params() url.Values {
	q := url.Values{"tenant": {l.Tenant}, "exp": {strconv.FormatInt(l.Expires.Unix(), 10)}}
	for k, v := range map[string]string{"auth_type": l.AuthType, "biz_appid": l.BizAppID, "return_url": l.ReturnURL} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// signedNames are the parameters a signature covers, when present.
var signedNames = []string{"tenant", "exp", "auth_type", "biz_appid", "return_url"}

// sign is base64url(HMAC-SHA256(key, domain || canonical query)); url.Values.Encode sorts by name.
func sign(key []byte, q url.Values) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("wxtpp auth link v1\n"))
	m.Write([]byte(q.Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Query returns the link's query string, signature included.
func (l Link) Query(key []byte) (string, error) {
	if len(key) < MinKey {
		return "", fmt.Errorf("sign link: key shorter than %d bytes", MinKey)
	}
	if err := l.Validate(); err != nil {
		return "", err
	}
	q := l.params()
	q.Set("sig", sign(key, l.params()))
	return q.Encode(), nil
}

// URL returns the full link under the platform's public base URL.
func (l Link) URL(key []byte, baseURL string) (string, error) {
	q, err := l.Query(key)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(baseURL, "/") + Path + "?" + q, nil
}

// Parse verifies a link's query (signature first, in constant time, then expiry and content). An expired
// link comes back with ErrExpired and its content; every other error returns an empty Link.
func Parse(key []byte, q url.Values, now time.Time) (Link, error) {
	if len(key) < MinKey {
		return Link{}, fmt.Errorf("verify link: key shorter than %d bytes", MinKey)
	}
	got := q.Get("sig")
	if got == "" {
		return Link{}, ErrUnsigned
	}
	signed := url.Values{}
	for _, name := range signedNames {
		if v := q.Get(name); v != "" {
			signed.Set(name, v)
		}
	}
	gotMAC, err := base64.RawURLEncoding.Strict().DecodeString(got) // strict: one encoding per signature
	if err != nil {
		return Link{}, ErrSignature
	}
	wantMAC, _ := base64.RawURLEncoding.DecodeString(sign(key, signed))
	if !hmac.Equal(gotMAC, wantMAC) {
		return Link{}, ErrSignature
	}
	exp, err := strconv.ParseInt(signed.Get("exp"), 10, 64)
	if err != nil {
		return Link{}, fmt.Errorf("%w: exp", ErrInvalid)
	}
	l := Link{Tenant: signed.Get("tenant"), Expires: time.Unix(exp, 0), AuthType: signed.Get("auth_type"),
		BizAppID: signed.Get("biz_appid"), ReturnURL: signed.Get("return_url")}
	if err := l.Validate(); err != nil {
		return Link{}, err
	}
	if !now.Before(l.Expires) {
		return l, ErrExpired
	}
	return l, nil
}

// ParseTTL reads a link lifetime: a Go duration ("36h", "90m") or whole days ("7d").
func ParseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("ttl %q: want a duration like 7d, 36h or 90m", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("ttl %q: want a duration like 7d, 36h or 90m", s)
		}
	}
	if d <= 0 || d > MaxTTL {
		return 0, fmt.Errorf("ttl %q: must be positive and at most 366d", s)
	}
	return d, nil
}

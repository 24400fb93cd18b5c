package sandbox

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"time"
)

// Credential values look like WeChat's: long URL-safe random strings, with
// the "xxx@@@" prefixes real tickets and codes carry. The prefixes contain
// '@', so callers that forget to URL-encode them notice.

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newAccessToken looks like "91_Q0x...": a version number and ~130 characters.
func newAccessToken() string {
	return fmt.Sprintf("%d_%s", 80+mrand.IntN(20), randomB64(96))
}

func newRefreshToken() string { return "refreshtoken@@@" + randomB64(32) }
func newTicket() string       { return "ticket@@@" + randomB64(64) }
func newPreAuthCode() string  { return "preauthcode@@@" + randomB64(40) }
func newAuthCode() string     { return "queryauthcode@@@" + randomB64(64) }

// newNonce is a random string of 9 or 10 digits like WeChat's push nonces.
func newNonce() string { return fmt.Sprint(100000000 + mrand.Int64N(3900000000)) }

// accessToken is one issued access token (component or authorizer).
type accessToken struct {
	owner      string // "" for the component token, the authorizer appid otherwise
	expires    time.Time
	superseded time.Time // when a newer token replaced it; zero while current
	revoked    bool      // the authorizer revoked the authorization
}

// check answers 0 when the token may be used at now, or the WeChat code that
// rejects it. A superseded token keeps working for grace (WeChat gives five
// minutes), then it is 40001 "not latest"; an expired one is 42001.
func (t *accessToken) check(now time.Time, grace time.Duration) int {
	switch {
	case t == nil, t.revoked:
		return CodeInvalidCredential
	case !t.superseded.IsZero() && !now.Before(t.superseded.Add(grace)):
		return CodeInvalidCredential
	case !now.Before(t.expires):
		return CodeAccessTokenExpired
	}
	return 0
}

// tokenChain is the history of one credential's access tokens; only the last
// one is current. Superseded tokens past their grace period are forgotten,
// since an unknown token gets the same 40001.
type tokenChain struct {
	tokens map[string]*accessToken // shared index over all chains
	live   []string                // oldest first; the last is current
}

func (c *tokenChain) current() string {
	if len(c.live) == 0 {
		return ""
	}
	return c.live[len(c.live)-1]
}

// issue creates a new current token, superseding the previous one at now.
func (c *tokenChain) issue(owner string, now time.Time, ttl, grace time.Duration) (string, *accessToken) {
	kept := c.live[:0]
	for _, tok := range c.live {
		t := c.tokens[tok]
		if t.superseded.IsZero() {
			t.superseded = now
		}
		if now.Before(t.superseded.Add(grace)) && !t.revoked {
			kept = append(kept, tok)
		} else {
			delete(c.tokens, tok)
		}
	}
	c.live = kept
	tok := newAccessToken()
	t := &accessToken{owner: owner, expires: now.Add(ttl)}
	c.tokens[tok] = t
	c.live = append(c.live, tok)
	return tok, t
}

// revokeAll invalidates every token of the chain at once.
func (c *tokenChain) revokeAll() {
	for _, tok := range c.live {
		if t := c.tokens[tok]; t != nil {
			t.revoked = true
		}
		delete(c.tokens, tok)
	}
	c.live = nil
}

// code is a single-use, expiring code: a pre_auth_code or an auth_code.
type code struct {
	expires time.Time
	used    bool
	appid   string // auth codes: the authorizer; pre-auth codes: ""
}

// ticket is a component_verify_ticket.
type ticket struct {
	issued time.Time
}

// authorizer is the sandbox's view of one account's authorization.
type authorizer struct {
	acct         Account
	authorized   bool
	authTime     time.Time
	refreshToken string // current valid refresh token, "" if none
	funcInfo     []int
	tokens       tokenChain
	issues       []time.Time // api_authorizer_token issue times
}

package fanauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wxtpp/platform/shared/table"
)

// WeChat takes a state of at most 128 bytes, so the state carries only a nonce, its expiry and a MAC; what the
// sign-in needs afterwards (account, tenant, scope, return URL) waits in the table under the nonce.

// State errors.
var (
	ErrStateInvalid = errors.New("state is malformed or its signature does not match")
	ErrStateExpired = errors.New("state has expired")
)

// maxState is WeChat's limit on `state`.
const maxState = 128

// macContext separates these MACs from the authorization pages' states, which use the same key.
const macContext = "wxtpp fan oauth state\x00"

// newState returns a fresh nonce and its signed state, valid until exp.
func newState(key []byte, exp time.Time) (nonce, state string) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce = base64.RawURLEncoding.EncodeToString(b[:])
	body := nonce + "." + strconv.FormatInt(exp.Unix(), 36)
	return nonce, body + "." + base64.RawURLEncoding.EncodeToString(stateMAC(key, body))
}

// verifyState checks the MAC (constant time) before anything else, then the expiry, and returns the nonce.
// An expired state still returns its (genuine) nonce with ErrStateExpired.
func verifyState(key []byte, state string, now time.Time) (string, error) {
	if state == "" || len(state) > maxState {
		return "", ErrStateInvalid
	}
	parts := strings.Split(state, ".")
	if len(parts) != 3 {
		return "", ErrStateInvalid
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, stateMAC(key, parts[0]+"."+parts[1])) {
		return "", ErrStateInvalid
	}
	exp, err := strconv.ParseInt(parts[1], 36, 64)
	if err != nil {
		return "", ErrStateInvalid
	}
	if now.Unix() >= exp {
		return parts[0], ErrStateExpired
	}
	return parts[0], nil
}

// stateMAC is HMAC-SHA256 truncated to 128 bits (22 characters), which keeps the state short.
func stateMAC(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macContext))
	m.Write([]byte(body))
	return m.Sum(nil)[:16]
}

// session is what a started sign-in left in the table for its callback.
type session struct {
	AppID     string `dynamodbav:"AppID"`
	Tenant    string `dynamodbav:"Tenant"`
	Scope     string `dynamodbav:"Scope"`
	ReturnURL string `dynamodbav:"ReturnURL"`
	Exp       int64  `dynamodbav:"Exp"`     // unix seconds, as in the state
	PurgeAt   int64  `dynamodbav:"PurgeAt"` // TTL
}

func sessionKey(nonce string) table.Key { return table.Key{PK: "FANSTATE#" + nonce, SK: "FANSTATE"} }

// browserMAC is the value of the cookie that ties a sign-in to its browser.
func browserMAC(key []byte, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("wxtpp fan oauth browser\x00"))
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// newID is a random identity id (`jti`): a merchant may use it to accept each identity once.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

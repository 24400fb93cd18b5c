package authpages

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MinStateKey is the shortest state signing key accepted (bytes).
const MinStateKey = 16

// maxStateLen bounds a state token before anything is decoded: a real one is under 1 KB, 4 KB with the
// longest return URL (which it carries twice: alone and inside its link).
const maxStateLen = 6144

// State errors. Each is final: the merchant has to start the authorization again.
var (
	ErrStateMalformed = errors.New("state is malformed")
	ErrStateSignature = errors.New("state signature does not match")
	ErrStateExpired   = errors.New("state has expired")
)

// State is what the authorization link carries through WeChat and back to /auth/callback. It is signed, not
// encrypted: nothing in it is secret (the pre_auth_code is in the same link anyway).
type State struct {
	Tenant      string `json:"tenant"`
	Nonce       string `json:"nonce"` // makes each state single-use (tokenstore.UseOnce)
	Exp         int64  `json:"exp"`   // unix seconds
	Iat         int64  `json:"iat"`   // unix seconds: when its page rendered (the authorization came later)
	PreAuthCode string `json:"pre_auth_code,omitempty"`
	ReturnURL   string `json:"return_url,omitempty"`
	Link        string `json:"link,omitempty"` // the signed start link's query: a fresh start while it is valid
}

// NewNonce returns 128 random bits, base64url.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SignState encodes s as base64url(JSON) + "." + base64url(HMAC-SHA256(key, first part)).
func SignState(key []byte, s State) (string, error) {
	if len(key) < MinStateKey {
		return "", fmt.Errorf("sign state: key shorter than %d bytes", MinStateKey)
	}
	payload, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("sign state: %w", err)
	}
	body := base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(mac(key, body)), nil
}

// VerifyState checks the signature (constant time) before looking at the payload, then the expiry. An expired
// state comes back with ErrStateExpired and its (genuine) content, so the error page can offer a fresh start
// for the same tenant; every other error returns an empty State.
func VerifyState(key []byte, token string, now time.Time) (State, error) {
	if len(key) < MinStateKey {
		return State{}, fmt.Errorf("verify state: key shorter than %d bytes", MinStateKey)
	}
	if token == "" || len(token) > maxStateLen {
		return State{}, ErrStateMalformed
	}
	body, sig, ok := strings.Cut(token, ".")
	if !ok || body == "" || strings.Contains(sig, ".") {
		return State{}, ErrStateMalformed
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig) // strict: one encoding per signature
	if err != nil {
		return State{}, ErrStateSignature
	}
	if !hmac.Equal(got, mac(key, body)) {
		return State{}, ErrStateSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return State{}, ErrStateMalformed
	}
	var s State
	if err := json.Unmarshal(payload, &s); err != nil || s.Tenant == "" || s.Nonce == "" || s.Exp == 0 {
		return State{}, ErrStateMalformed
	}
	if now.Unix() >= s.Exp {
		return s, ErrStateExpired
	}
	return s, nil
}

func mac(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

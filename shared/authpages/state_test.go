package authpages

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/testenv"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

func sampleState(now time.Time) State {
	return State{Tenant: "t1", Nonce: NewNonce(), Exp: now.Add(time.Minute).Unix(), PreAuthCode: "preauthcode@@@x",
		ReturnURL: "https://shop.example.com/done"}
}

func TestStateRoundTrip(t *testing.T) {
	now := time.Now()
	want := sampleState(now)
	tok, err := SignState(testKey, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyState(testKey, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The token is URL-safe as it is, and does not contain the key.
	if strings.ContainsAny(tok, "+/=?&# ") || strings.Contains(tok, string(testKey)) {
		t.Fatalf("token %q is not URL-safe or contains the key", tok)
	}
}

func TestStateRejectsTamperingWrongKeyExpiryAndMalformed(t *testing.T) {
	now := time.Now()
	st := sampleState(now)
	tok, err := SignState(testKey, st)
	if err != nil {
		t.Fatal(err)
	}
	body, sig, _ := strings.Cut(tok, ".")

	forged := st
	forged.Tenant = "attacker"
	forgedTok, _ := SignState(otherKey, forged)
	forgedBody, _, _ := strings.Cut(forgedTok, ".")

	expired := st
	expired.Exp = now.Add(-time.Second).Unix()
	expiredTok, _ := SignState(testKey, expired)

	// Payloads validly signed with our key but missing what a state must have.
	signed := func(payload string) string {
		b := base64.RawURLEncoding.EncodeToString([]byte(payload))
		return b + "." + base64.RawURLEncoding.EncodeToString(mac(testKey, b))
	}

	flip := []byte(sig)
	if flip[0] == 'A' {
		flip[0] = 'B'
	} else {
		flip[0] = 'A'
	}
	cases := []struct {
		name string
		tok  string
		want error
	}{
		{"signed with another key", forgedTok, ErrStateSignature},
		{"payload swapped, signature kept", forgedBody + "." + sig, ErrStateSignature},
		{"signature altered", body + "." + string(flip), ErrStateSignature},
		{"signature truncated", body + "." + sig[:len(sig)-4], ErrStateSignature},
		{"signature empty", body + ".", ErrStateSignature},
		{"expired", expiredTok, ErrStateExpired},
		{"empty", "", ErrStateMalformed},
		{"no dot", body, ErrStateMalformed},
		{"two dots", tok + ".x", ErrStateMalformed},
		{"signature not base64", body + ".!!!", ErrStateSignature},
		{"huge", strings.Repeat("A", 7000) + "." + sig, ErrStateMalformed},
		{"payload not JSON", signed("not json"), ErrStateMalformed},
		{"no tenant", signed(`{"nonce":"n","exp":99999999999}`), ErrStateMalformed},
		{"no nonce", signed(`{"tenant":"t","exp":99999999999}`), ErrStateMalformed},
		{"no expiry", signed(`{"tenant":"t","nonce":"n"}`), ErrStateMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyState(testKey, tc.tok, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// The expiry is exclusive: a state is dead at its Exp second.
	if _, err := VerifyState(testKey, tok, time.Unix(st.Exp, 0)); !errors.Is(err, ErrStateExpired) {
		t.Fatalf("at Exp: got %v, want ErrStateExpired", err)
	}
	// An expired state is still genuine: it comes back with its content (for a "start again" link); a
	// forged one never does.
	if got, err := VerifyState(testKey, expiredTok, now); !errors.Is(err, ErrStateExpired) || got != expired {
		t.Fatalf("expired: got %+v, %v; want the state with ErrStateExpired", got, err)
	}
	if got, _ := VerifyState(testKey, forgedTok, now); got != (State{}) {
		t.Fatalf("forged: got %+v, want an empty state", got)
	}
}

func TestStateRefusesShortKeys(t *testing.T) {
	for _, key := range [][]byte{nil, []byte(""), []byte("fifteen-bytes!!")} {
		if _, err := SignState(key, sampleState(time.Now())); err == nil {
			t.Errorf("SignState accepted a %d-byte key", len(key))
		}
		if _, err := VerifyState(key, "a.b", time.Now()); err == nil {
			t.Errorf("VerifyState accepted a %d-byte key", len(key))
		}
	}
}

func TestNoncesDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := NewNonce()
		if seen[n] || len(n) < 22 {
			t.Fatalf("nonce %q repeated or short", n)
		}
		seen[n] = true
	}
}

func FuzzVerifyState(f *testing.F) {
	tok, _ := SignState(testKey, sampleState(time.Now()))
	f.Add(tok)
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = VerifyState(testKey, s, time.Now()) // must not panic
	})
}

func TestStateSignatureIsComparedInConstantTime(t *testing.T) {
	testenv.AssertConstantTimeComparisons(t, ".", "VerifyState")
}

package wxcrypt_test

import (
	"errors"
	"testing"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// A plain == would pass every behavioural test: what decides timing is the code, so the code is checked.
func TestSignaturesAreComparedInConstantTime(t *testing.T) {
	testenv.AssertConstantTimeComparisons(t, ".", "equalSig")
}

// Every position of the signature takes part in the comparison: a check of a prefix, or of all but the
// last characters, is caught here (the vector's first character alone proves nothing).
func TestSignatureWrongInAnyOneCharacterIsRefused(t *testing.T) {
	c := mustNew(t, v1Token, testAESKey, v1AppID)
	for i := range len(v1MsgSig) {
		if _, _, err := c.Open([]byte(v1Body), flip(v1MsgSig, i), v1Timestamp, v1Nonce); !errors.Is(err, wxcrypt.ErrInvalidSignature) {
			t.Errorf("msg_signature wrong at position %d: %v", i, err)
		}
		if wxcrypt.VerifySignature(v1Token, v1Timestamp, v1Nonce, flip(v1PlainSig, i)) {
			t.Errorf("plain signature wrong at position %d accepted", i)
		}
	}
	if _, _, err := c.Open([]byte(v1Body), v1MsgSig, v1Timestamp, v1Nonce); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

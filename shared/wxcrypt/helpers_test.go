package wxcrypt_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

func mustNew(t testing.TB, token, key, appID string, prev ...string) *wxcrypt.Crypter {
	t.Helper()
	c, err := wxcrypt.New(token, key, appID, prev...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// rawEncrypt is an independent AES-256-CBC (IV = key[:16]) encryption of a caller-built plaintext, used to
// craft malformed messages (bad padding, bad length field...) that Encrypt would never produce.
func rawEncrypt(t testing.TB, encodingAESKey string, pt []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		t.Fatalf("test key: %v (len %d)", err, len(key))
	}
	if len(pt)%aes.BlockSize != 0 {
		t.Fatalf("rawEncrypt: plaintext length %d not a multiple of 16", len(pt))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(ct, pt)
	return base64.StdEncoding.EncodeToString(ct)
}

// layout returns random ‖ BE32(lenField) ‖ msg ‖ appid, unpadded.
func layout(random string, lenField uint32, msg, appID string) []byte {
	b := []byte(random)
	b = binary.BigEndian.AppendUint32(b, lenField)
	b = append(b, msg...)
	return append(b, appID...)
}

// pad32 appends PKCS#7 padding with block size 32.
func pad32(b []byte) []byte {
	n := 32 - len(b)%32
	for range n {
		b = append(b, byte(n))
	}
	return b
}

// wantErr fails unless err matches target under errors.Is, carries code, and leaks none of secrets.
func wantErr(t *testing.T, err, target error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want errors.Is(err, %v)", err, target)
	}
	var we *wxcrypt.Error
	if errors.As(target, &we) && wxcrypt.ErrorCode(err) != we.Code {
		t.Fatalf("ErrorCode(%v) = %d, want %d", err, wxcrypt.ErrorCode(err), we.Code)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q leaks a secret", err)
		}
	}
}

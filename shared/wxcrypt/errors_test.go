package wxcrypt_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	negToken = "negtoken"
	negAppID = "wxnegappid"
	negTS    = "1700000000"
	negNonce = "987654"
	negMsg   = "secret plaintext 42"
	negRand  = "0123456789abcdef"
)

// decryptCrafted encrypts pt (already padded to a multiple of 16) with the test key, signs it correctly
// and runs Decrypt, so only the layer under test can fail.
func decryptCrafted(t *testing.T, pt []byte) error {
	t.Helper()
	c := mustNew(t, negToken, testAESKey, negAppID)
	enc := rawEncrypt(t, testAESKey, pt)
	_, _, err := c.Decrypt(wxcrypt.MsgSignature(negToken, negTS, negNonce, enc), negTS, negNonce, enc)
	return err
}

var secrets = []string{negToken, testAESKey, negMsg}

func TestCraftedControlDecrypts(t *testing.T) {
	// The crafting helpers themselves produce a valid message; the negative cases below each break one thing.
	c := mustNew(t, negToken, testAESKey, negAppID)
	enc := rawEncrypt(t, testAESKey, pad32(layout(negRand, uint32(len(negMsg)), negMsg, negAppID)))
	msg, _, err := c.Decrypt(wxcrypt.MsgSignature(negToken, negTS, negNonce, enc), negTS, negNonce, enc)
	if err != nil || string(msg) != negMsg {
		t.Fatalf("control = %q, %v", msg, err)
	}
}

func TestBadSignature(t *testing.T) {
	c := mustNew(t, v1Token, testAESKey, v1AppID)
	flipped := "6" + v1MsgSig[1:]
	cases := map[string][4]string{
		"flipped char":      {flipped, v1Timestamp, v1Nonce, ""},
		"uppercase hex":     {strings.ToUpper(v1MsgSig), v1Timestamp, v1Nonce, ""},
		"short":             {v1MsgSig[:39], v1Timestamp, v1Nonce, ""},
		"long":              {v1MsgSig + "0", v1Timestamp, v1Nonce, ""},
		"empty":             {"", v1Timestamp, v1Nonce, ""},
		"other timestamp":   {v1MsgSig, "1409735670", v1Nonce, ""},
		"other nonce":       {v1MsgSig, v1Timestamp, "1320562133", ""},
		"plain signature":   {v1PlainSig, v1Timestamp, v1Nonce, ""},
		"resigned by wrong": {wxcrypt.MsgSignature("wrongtoken", v1Timestamp, v1Nonce, "ENC"), v1Timestamp, v1Nonce, ""},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := c.Open([]byte(v1Body), a[0], a[1], a[2])
			wantErr(t, err, wxcrypt.ErrInvalidSignature, v1Token, testAESKey)
		})
	}
	// Re-signed with a wrong token: the signature is well-formed but over the wrong secret.
	env, _ := wxcrypt.ParseEnvelope([]byte(v1Body))
	sig := wxcrypt.MsgSignature("spamtesT", v1Timestamp, v1Nonce, env.Encrypt)
	_, _, err := c.Decrypt(sig, v1Timestamp, v1Nonce, env.Encrypt)
	wantErr(t, err, wxcrypt.ErrInvalidSignature, v1Token, testAESKey)
	// A tampered ciphertext under the original signature.
	tampered := "i" + env.Encrypt[1:]
	_, _, err = c.Decrypt(v1MsgSig, v1Timestamp, v1Nonce, tampered)
	wantErr(t, err, wxcrypt.ErrInvalidSignature)
}

func TestWrongAppID(t *testing.T) {
	c := mustNew(t, v1Token, testAESKey, "wx0000000000000000")
	_, _, err := c.Open([]byte(v1Body), v1MsgSig, v1Timestamp, v1Nonce)
	wantErr(t, err, wxcrypt.ErrAppIDMismatch, v1Token, testAESKey, "ToUserName")
	// Crafted: appid longer, shorter, and a prefix of the expected one.
	for _, appid := range []string{negAppID + "x", negAppID[:len(negAppID)-1], ""} {
		err := decryptCrafted(t, pad32(layout(negRand, uint32(len(negMsg)), negMsg, appid)))
		wantErr(t, err, wxcrypt.ErrAppIDMismatch, secrets...)
	}
}

func TestBadBase64(t *testing.T) {
	c := mustNew(t, negToken, testAESKey, negAppID)
	for _, enc := range []string{"not base64!!", "abc", "YWJj=", "YW Jj", "YWJjZA"} {
		sig := wxcrypt.MsgSignature(negToken, negTS, negNonce, enc)
		_, _, err := c.Decrypt(sig, negTS, negNonce, enc)
		wantErr(t, err, wxcrypt.ErrDecodeBase64, secrets...)
	}
}

func TestCiphertextLength(t *testing.T) {
	c := mustNew(t, negToken, testAESKey, negAppID)
	for _, n := range []int{0, 1, 15, 17, 20, 33} {
		enc := base64.StdEncoding.EncodeToString(make([]byte, n))
		sig := wxcrypt.MsgSignature(negToken, negTS, negNonce, enc)
		_, _, err := c.Decrypt(sig, negTS, negNonce, enc)
		wantErr(t, err, wxcrypt.ErrDecryptAES, secrets...)
	}
}

func TestBadPadding(t *testing.T) {
	base := layout(negRand, uint32(len(negMsg)), negMsg, negAppID) // 16+4+19+10 = 49 bytes
	good := pad32(base)                                            // 64 bytes, pad 15
	cases := map[string][]byte{}
	zero := append([]byte(nil), good...)
	zero[len(zero)-1] = 0
	cases["pad byte 0"] = zero
	p33 := append(append([]byte(nil), base...), make([]byte, 64+16-len(base))...) // 80 bytes
	for i := len(base); i < len(p33); i++ {
		p33[i] = 33
	}
	cases["pad byte 33"] = p33
	incons := append([]byte(nil), good...)
	incons[len(incons)-5] = 14
	cases["inconsistent pad bytes"] = incons
	big := append([]byte(nil), good...)
	big[len(big)-1] = 0xff
	cases["pad byte 255"] = big
	allPad := make([]byte, 16) // one block whose pad byte (16) would be fine but leaves nothing
	for i := range allPad {
		allPad[i] = 32
	}
	cases["pad longer than buffer"] = allPad
	for name, pt := range cases {
		t.Run(name, func(t *testing.T) {
			wantErr(t, decryptCrafted(t, pt), wxcrypt.ErrIllegalBuffer, secrets...)
		})
	}
}

func TestShortBuffer(t *testing.T) {
	// After removing the padding fewer than 20 bytes (random + length) remain.
	for _, n := range []int{0, 16, 19} {
		pt := pad32([]byte(strings.Repeat("r", n)))
		wantErr(t, decryptCrafted(t, pt), wxcrypt.ErrIllegalBuffer, secrets...)
	}
	// Exactly 20 bytes with a zero length and an empty appid is structurally fine: only the appid fails.
	wantErr(t, decryptCrafted(t, pad32(layout(negRand, 0, "", ""))), wxcrypt.ErrAppIDMismatch)
}

func TestLengthFieldTooLarge(t *testing.T) {
	for _, n := range []uint32{uint32(len(negMsg) + len(negAppID) + 1), 1 << 20, 0xffffffff} {
		pt := pad32(layout(negRand, n, negMsg, negAppID))
		wantErr(t, decryptCrafted(t, pt), wxcrypt.ErrIllegalBuffer, secrets...)
	}
	// A length field that is too small shifts bytes into the appid, which then mismatches.
	pt := pad32(layout(negRand, uint32(len(negMsg)-1), negMsg, negAppID))
	wantErr(t, decryptCrafted(t, pt), wxcrypt.ErrAppIDMismatch, secrets...)
}

func TestBadKeys(t *testing.T) {
	for name, key := range map[string]string{
		"empty":          "",
		"42 chars":       testAESKey[:42],
		"44 chars":       testAESKey + "H",
		"with '='":       testAESKey[:42] + "=",
		"url-safe '-'":   "-" + testAESKey[1:],
		"url-safe '_'":   "_" + testAESKey[1:],
		"punctuation":    "!" + testAESKey[1:],
		"newline inside": testAESKey[:20] + "\n" + testAESKey[21:],
		"non-ASCII":      "é" + testAESKey[2:],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := wxcrypt.New("token", key, "wxappid")
			wantErr(t, err, wxcrypt.ErrIllegalAESKey, key)
			_, err = wxcrypt.New("token", testAESKey, "wxappid", strings.Repeat("A", 43), key)
			wantErr(t, err, wxcrypt.ErrIllegalAESKey, key)
		})
	}
	// '+' and '/' are in the standard alphabet: accepted.
	if _, err := wxcrypt.New("token", "+/"+testAESKey[2:], "wxappid"); err != nil {
		t.Fatalf("standard-alphabet key refused: %v", err)
	}
	for _, args := range [][2]string{{"", "wxappid"}, {"token", ""}} {
		_, err := wxcrypt.New(args[0], testAESKey, args[1])
		if !errors.Is(err, wxcrypt.ErrConfig) {
			t.Fatalf("New(%q, key, %q) = %v, want ErrConfig", args[0], args[1], err)
		}
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{wxcrypt.ErrInvalidSignature, wxcrypt.ErrParseXML, wxcrypt.ErrIllegalAESKey,
		wxcrypt.ErrAppIDMismatch, wxcrypt.ErrEncryptAES, wxcrypt.ErrDecryptAES, wxcrypt.ErrIllegalBuffer,
		wxcrypt.ErrDecodeBase64, wxcrypt.ErrGenReturnXML}
	for i, a := range all {
		for j, b := range all {
			if errors.Is(a, b) != (i == j) {
				t.Fatalf("errors.Is(%v, %v) = %v", a, b, !(i == j))
			}
		}
	}
	if wxcrypt.ErrorCode(wxcrypt.ErrIllegalBuffer) != -40008 || wxcrypt.ErrorCode(errors.New("x")) != 0 {
		t.Fatal("ErrorCode")
	}
}

package wxcrypt_test

import (
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

// The benchmarks use vector V1 (a 280-byte message, 733-byte body), the case TARGETS.md anchors on.

// BenchmarkOpen: envelope scan + msg_signature check + decrypt.
func BenchmarkOpen(b *testing.B) {
	c := mustNew(b, v1Token, testAESKey, v1AppID)
	body := []byte(v1Body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := c.Open(body, v1MsgSig, v1Timestamp, v1Nonce); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt: msg_signature check + decrypt only.
func BenchmarkDecrypt(b *testing.B) {
	c := mustNew(b, v1Token, testAESKey, v1AppID)
	env, err := wxcrypt.ParseEnvelope([]byte(v1Body))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Decrypt(v1MsgSig, v1Timestamp, v1Nonce, env.Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptRotation: as BenchmarkDecrypt for a message under the previous key (current key tried first).
func BenchmarkDecryptRotation(b *testing.B) {
	c := mustNew(b, v1Token, "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut", v1AppID, testAESKey)
	env, err := wxcrypt.ParseEnvelope([]byte(v1Body))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Decrypt(v1MsgSig, v1Timestamp, v1Nonce, env.Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncrypt: encrypt + sign (returns the base64 ciphertext and msg_signature).
func BenchmarkEncrypt(b *testing.B) {
	c := mustNew(b, v1Token, testAESKey, v1AppID)
	msg := []byte(v1Msg)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Encrypt(msg, v1Timestamp, v1Nonce); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReply: encrypt + sign + passive-reply XML.
func BenchmarkReply(b *testing.B) {
	c := mustNew(b, v1Token, testAESKey, v1AppID)
	msg := []byte(v1Msg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Reply(wxcrypt.Key{}, msg, v1Timestamp, v1Nonce); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEnvelope: the envelope scan alone, producing the three strings.
func BenchmarkParseEnvelope(b *testing.B) {
	body := []byte(v1Body)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wxcrypt.ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

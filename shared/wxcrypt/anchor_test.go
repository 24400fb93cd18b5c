package wxcrypt_test

// A reimplementation of the anchor of TARGETS.md (silenceper/wechat: util/crypto.go, util/signature.go and
// the envelope struct its server unmarshals), written from its published approach so the speed targets can
// be checked as ratios within one benchmark run on a shared, noisy machine. It re-decodes the key and
// rebuilds the AES cipher on every call, parses the envelope with encoding/xml and signs through
// sort.Strings + sha1.New + fmt.Sprintf. Only the benchmarks use it; the tests check it agrees with wxcrypt.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"testing"
)

type anchorEnvelope struct {
	XMLName      struct{} `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	EncryptedMsg string   `xml:"Encrypt"`
}

func anchorSignature(params ...string) string {
	sort.Strings(params)
	h := sha1.New()
	for _, s := range params {
		_, _ = io.WriteString(h, s)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func anchorKey(encodingAESKey string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, errors.New("bad key")
	}
	return key, nil
}

func anchorDecryptMsg(appID, encrypted, encodingAESKey string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, err
	}
	key, err := anchorKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	if len(ct) < 32 || len(ct)%32 != 0 {
		return nil, errors.New("bad ciphertext length")
	}
	pt := make([]byte, len(ct))
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	cipher.NewCBCDecrypter(block, key[:16]).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > 32 {
		return nil, errors.New("bad padding")
	}
	pt = pt[:len(pt)-pad]
	n := int(binary.BigEndian.Uint32(pt[16:20]))
	if 20+n > len(pt) {
		return nil, errors.New("bad length")
	}
	if string(pt[20+n:]) != appID {
		return nil, errors.New("appid mismatch")
	}
	return pt[20 : 20+n], nil
}

func anchorEncryptMsg(random, msg []byte, appID, encodingAESKey string) ([]byte, error) {
	key, err := anchorKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	contentLen := 20 + len(msg) + len(appID)
	pad := 32 - contentLen%32
	pt := make([]byte, contentLen+pad)
	copy(pt[:16], random)
	binary.BigEndian.PutUint32(pt[16:20], uint32(len(msg)))
	copy(pt[20:], msg)
	copy(pt[20+len(msg):], appID)
	for i := contentLen; i < len(pt); i++ {
		pt[i] = byte(pad)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(pt, pt)
	return []byte(base64.StdEncoding.EncodeToString(pt)), nil
}

func anchorOpen(body []byte, msgSig, ts, nonce string) ([]byte, error) {
	var env anchorEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	return anchorDecrypt(msgSig, ts, nonce, env.EncryptedMsg)
}

func anchorDecrypt(msgSig, ts, nonce, enc string) ([]byte, error) {
	if anchorSignature(v1Token, ts, nonce, enc) != msgSig {
		return nil, errors.New("bad signature")
	}
	return anchorDecryptMsg(v1AppID, enc, testAESKey)
}

func TestAnchorAgrees(t *testing.T) {
	msg, err := anchorOpen([]byte(v1Body), v1MsgSig, v1Timestamp, v1Nonce)
	if err != nil || string(msg) != v1Msg {
		t.Fatalf("anchor Open = %q, %v", msg, err)
	}
	enc, err := anchorEncryptMsg([]byte(aRandom), []byte(aMsg2), aAppID, testAESKey)
	if err != nil || string(enc) != aEncrypt2 {
		t.Fatalf("anchor encrypt = %s, %v", enc, err)
	}
}

func BenchmarkAnchorOpen(b *testing.B) {
	body := []byte(v1Body)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := anchorOpen(body, v1MsgSig, v1Timestamp, v1Nonce); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnchorDecrypt(b *testing.B) {
	var env anchorEnvelope
	if err := xml.Unmarshal([]byte(v1Body), &env); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := anchorDecrypt(v1MsgSig, v1Timestamp, v1Nonce, env.EncryptedMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnchorEncrypt(b *testing.B) {
	msg := []byte(v1Msg)
	random := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		enc, err := anchorEncryptMsg(random, msg, v1AppID, testAESKey)
		if err != nil {
			b.Fatal(err)
		}
		_ = anchorSignature(v1Token, v1Timestamp, v1Nonce, string(enc))
	}
}

package wxcrypt_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

func TestVectorV1(t *testing.T) {
	c := mustNew(t, v1Token, testAESKey, v1AppID)
	msg, k, err := c.Open([]byte(v1Body), v1MsgSig, v1Timestamp, v1Nonce)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if string(msg) != v1Msg {
		t.Fatalf("Open msg = %q, want %q", msg, v1Msg)
	}
	if !k.IsCurrent() || k.String() != "current" {
		t.Fatalf("key = %v, want current", k)
	}
	if c.AppID() != v1AppID {
		t.Fatalf("AppID = %q", c.AppID())
	}

	env, err := wxcrypt.ParseEnvelope([]byte(v1Body))
	if err != nil {
		t.Fatalf("ParseEnvelope: %v", err)
	}
	if env.ToUserName != "gh_10f6c3c3ac5a" || env.AppID != "" {
		t.Fatalf("envelope = %+v", env)
	}
	if got := wxcrypt.MsgSignature(v1Token, v1Timestamp, v1Nonce, env.Encrypt); got != v1MsgSig {
		t.Fatalf("MsgSignature = %s, want %s", got, v1MsgSig)
	}
	msg, _, err = c.Decrypt(v1MsgSig, v1Timestamp, v1Nonce, env.Encrypt)
	if err != nil || string(msg) != v1Msg {
		t.Fatalf("Decrypt = %q, %v", msg, err)
	}
	if got := wxcrypt.Signature(v1Token, v1Timestamp, v1Nonce); got != v1PlainSig {
		t.Fatalf("Signature = %s, want %s", got, v1PlainSig)
	}
	if !wxcrypt.VerifySignature(v1Token, v1Timestamp, v1Nonce, v1PlainSig) {
		t.Fatal("VerifySignature rejected the vector")
	}
	if wxcrypt.VerifySignature(v1Token, v1Timestamp, v1Nonce+"1", v1PlainSig) {
		t.Fatal("VerifySignature accepted a wrong nonce")
	}
}

func TestVectorD(t *testing.T) {
	c := mustNew(t, v1Token, testAESKey, v1AppID)
	msg, _, err := c.Open([]byte(dBody), dMsgSig, dTimestamp, dNonce)
	if err != nil || string(msg) != dMsg {
		t.Fatalf("Open = %q, %v; want %q", msg, err, dMsg)
	}
	msg, _, err = c.Decrypt(dMsgSig, dTimestamp, dNonce, dEncrypt)
	if err != nil || string(msg) != dMsg {
		t.Fatalf("Decrypt = %q, %v", msg, err)
	}
	env, err := wxcrypt.ParseEnvelope([]byte(dBody))
	if err != nil || env.ToUserName != "toUser" || env.Encrypt != dEncrypt {
		t.Fatalf("ParseEnvelope = %+v, %v", env, err)
	}
	// The same ciphertext under the appid of another copy of the sample does not pass the appid check.
	other := mustNew(t, v1Token, testAESKey, "wx68d81e4f937bbd00")
	_, _, err = other.Decrypt(dMsgSig, dTimestamp, dNonce, dEncrypt)
	wantErr(t, err, wxcrypt.ErrAppIDMismatch)
}

func TestVectorA(t *testing.T) {
	c := mustNew(t, aToken, testAESKey, aAppID)
	wxcrypt.SetRandomPrefix(c, []byte(aRandom))
	for _, tc := range []struct{ msg, enc string }{{aMsg1, aEncrypt1}, {aMsg2, aEncrypt2}} {
		enc, sig, err := c.Encrypt([]byte(tc.msg), aTimestamp, aNonce)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		if enc != tc.enc {
			t.Fatalf("Encrypt(%.20q) = %s, want %s", tc.msg, enc, tc.enc)
		}
		if want := wxcrypt.MsgSignature(aToken, aTimestamp, aNonce, tc.enc); sig != want {
			t.Fatalf("signature = %s, want %s", sig, want)
		}
		msg, _, err := c.Decrypt(sig, aTimestamp, aNonce, enc)
		if err != nil || string(msg) != tc.msg {
			t.Fatalf("Decrypt = %q, %v", msg, err)
		}
	}
	if got := wxcrypt.MsgSignature(aToken, aTimestamp, aNonce, aEncrypt1); got != aMsgSig1 {
		t.Fatalf("MsgSignature = %s, want %s", got, aMsgSig1)
	}

	// Full envelopes, both shapes, byte-exact.
	body, sig, err := c.PushBody([]byte(aMsg1), "", aTimestamp, aNonce)
	if err != nil {
		t.Fatal(err)
	}
	wantBody := "<xml><AppId><![CDATA[" + aAppID + "]]></AppId><Encrypt><![CDATA[" + aEncrypt1 + "]]></Encrypt></xml>"
	if string(body) != wantBody || sig != aMsgSig1 {
		t.Fatalf("PushBody = %s, %s", body, sig)
	}
	env, err := wxcrypt.ParseEnvelope(body)
	if err != nil || env != (wxcrypt.Envelope{AppID: aAppID, Encrypt: aEncrypt1}) {
		t.Fatalf("ParseEnvelope = %+v, %v", env, err)
	}
	if msg, _, err := c.Open(body, aMsgSig1, aTimestamp, aNonce); err != nil || string(msg) != aMsg1 {
		t.Fatalf("Open = %q, %v", msg, err)
	}
	body, sig, err = c.PushBody([]byte(aMsg2), "gh_7f083739789a", aTimestamp, aNonce)
	if err != nil {
		t.Fatal(err)
	}
	wantBody = "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><Encrypt><![CDATA[" + aEncrypt2 + "]]></Encrypt></xml>"
	if string(body) != wantBody {
		t.Fatalf("PushBody = %s", body)
	}
	if msg, _, err := c.Open(body, sig, aTimestamp, aNonce); err != nil || string(msg) != aMsg2 {
		t.Fatalf("Open = %q, %v", msg, err)
	}

	// Passive reply, byte-exact.
	reply, err := c.Reply(wxcrypt.Key{}, []byte(aMsg1), aTimestamp, aNonce)
	if err != nil {
		t.Fatal(err)
	}
	wantReply := "<xml><Encrypt><![CDATA[" + aEncrypt1 + "]]></Encrypt><MsgSignature><![CDATA[" + aMsgSig1 +
		"]]></MsgSignature><TimeStamp>" + aTimestamp + "</TimeStamp><Nonce><![CDATA[" + aNonce + "]]></Nonce></xml>"
	if string(reply) != wantReply {
		t.Fatalf("Reply =\n%s\nwant\n%s", reply, wantReply)
	}
}

func TestVectorV2(t *testing.T) {
	c := mustNew(t, v2Token, testAESKey, v2AppID)
	msg, _, err := c.Decrypt(v2MsgSig, v2Timestamp, v2Nonce, v2Encrypt)
	if err != nil || string(msg) != v2Msg {
		t.Fatalf("Decrypt = %q, %v; want %q", msg, err, v2Msg)
	}
	// The same ciphertext in both envelope shapes a third-party platform receives.
	for _, body := range []string{
		"<xml><AppId><![CDATA[" + v2AppID + "]]></AppId><Encrypt><![CDATA[" + v2Encrypt + "]]></Encrypt></xml>",
		"<xml><ToUserName><![CDATA[gh_x]]></ToUserName>\n<Encrypt>" + v2Encrypt + "</Encrypt>\n</xml>\n",
	} {
		msg, _, err := c.Open([]byte(body), v2MsgSig, v2Timestamp, v2Nonce)
		if err != nil || string(msg) != v2Msg {
			t.Fatalf("Open(%.40q) = %q, %v", body, msg, err)
		}
	}
}

// replyFields reads a passive reply with encoding/xml (an independent parser).
func replyFields(t *testing.T, reply []byte) (enc, sig, ts, nonce string) {
	t.Helper()
	var r struct {
		Encrypt, MsgSignature, TimeStamp, Nonce string
	}
	if err := xml.Unmarshal(reply, &r); err != nil {
		t.Fatalf("reply is not XML: %v\n%s", err, reply)
	}
	return r.Encrypt, r.MsgSignature, r.TimeStamp, r.Nonce
}

func TestRoundTrip(t *testing.T) {
	const token, appID = "tok3n", "wxcomponentappid1"
	c := mustNew(t, token, testAESKey, appID)
	msgs := [][]byte{
		{},
		bytes.Repeat([]byte("a"), 31),
		bytes.Repeat([]byte("b"), 32),
		bytes.Repeat([]byte("c"), 33),
		[]byte("我是中文 ünïcödé 🙂 <xml>&amp;</xml>\n"),
		[]byte("  leading and trailing space and newline \n"),
		{0, 1, 2, 0xff, 0xfe},
		bytes.Repeat([]byte("x"), 5000),
	}
	for n := range 70 { // every padding length, 1..32, several times over
		msgs = append(msgs, bytes.Repeat([]byte{'p'}, n))
	}
	for i, m := range msgs {
		ts, nonce := fmt.Sprint(1700000000+i), fmt.Sprint(12345+i)
		enc, sig, err := c.Encrypt(m, ts, nonce)
		if err != nil {
			t.Fatalf("Encrypt(len %d): %v", len(m), err)
		}
		if raw, _ := base64.StdEncoding.DecodeString(enc); len(raw)%32 != 0 {
			t.Fatalf("ciphertext length %d is not a multiple of 32", len(raw))
		}
		if sig != wxcrypt.MsgSignature(token, ts, nonce, enc) {
			t.Fatal("Encrypt returned a signature that MsgSignature disagrees with")
		}
		got, k, err := c.Decrypt(sig, ts, nonce, enc)
		if err != nil || !bytes.Equal(got, m) || !k.IsCurrent() {
			t.Fatalf("Decrypt(len %d) = %q, %v, %v", len(m), got, k, err)
		}
		if cap(got) != len(got) {
			t.Fatalf("Decrypt result exposes %d trailing bytes through its capacity", cap(got)-len(got))
		}

		body, psig, err := c.PushBody(m, "", ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, err := c.Open(body, psig, ts, nonce); err != nil || !bytes.Equal(got, m) {
			t.Fatalf("Open(PushBody) = %q, %v", got, err)
		}

		reply, err := c.Reply(k, m, ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		renc, rsig, rts, rnonce := replyFields(t, reply)
		if rts != ts || rnonce != nonce {
			t.Fatalf("reply timestamp/nonce = %q/%q", rts, rnonce)
		}
		if got, _, err := c.Decrypt(rsig, rts, rnonce, renc); err != nil || !bytes.Equal(got, m) {
			t.Fatalf("Decrypt(Reply) = %q, %v", got, err)
		}
	}
}

func TestEncryptIsRandomised(t *testing.T) {
	c := mustNew(t, "token", testAESKey, "wxappid")
	a, _, _ := c.Encrypt([]byte("same"), "1", "2")
	b, _, _ := c.Encrypt([]byte("same"), "1", "2")
	if a == b {
		t.Fatal("two encryptions of the same message are identical: the random prefix is not random")
	}
}

func TestReplyEscapesNonce(t *testing.T) {
	c := mustNew(t, "token", testAESKey, "wxappid")
	for _, nonce := range []string{"a]]>b", "<&>", "x\r\ny", "]]]]>"} {
		ts := "1<2&3>\r4"
		reply, err := c.Reply(wxcrypt.Key{}, []byte("hi"), ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		enc, sig, rts, rnonce := replyFields(t, reply)
		if rts != ts || rnonce != nonce {
			t.Fatalf("reply carried %q/%q, want %q/%q", rts, rnonce, ts, nonce)
		}
		if msg, _, err := c.Decrypt(sig, rts, rnonce, enc); err != nil || string(msg) != "hi" {
			t.Fatalf("Decrypt(reply) = %q, %v", msg, err)
		}
	}
	_, err := c.Reply(wxcrypt.Key{}, []byte("hi"), "1", "bad\x00nonce")
	wantErr(t, err, wxcrypt.ErrGenReturnXML)
	_, _, err = c.PushBody([]byte("hi"), "bad\x01user", "1", "2")
	wantErr(t, err, wxcrypt.ErrGenReturnXML)
}

func TestKeyRotation(t *testing.T) {
	const token, appID = "token", "wxcomponent"
	oldKey := testAESKey
	newKey := strings.Repeat("A", 43) // decodes to 32 zero bytes: a legal key
	unknownKey := "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"

	oldC := mustNew(t, token, oldKey, appID)
	rotated := mustNew(t, token, newKey, appID, oldKey)
	newC := mustNew(t, token, newKey, appID)

	// A message under the previous key decrypts and reports that key.
	enc, sig, err := oldC.Encrypt([]byte("hello"), "1", "2")
	if err != nil {
		t.Fatal(err)
	}
	msg, k, err := rotated.Decrypt(sig, "1", "2", enc)
	if err != nil || string(msg) != "hello" {
		t.Fatalf("Decrypt with previous key = %q, %v", msg, err)
	}
	if k.IsCurrent() || k.String() != "previous#1" {
		t.Fatalf("key = %v, want previous#1", k)
	}
	// Replying with that Key uses the previous key: only a holder of the old key can read it.
	enc2, sig2, err := rotated.EncryptWith(k, []byte("reply"), "3", "4")
	if err != nil {
		t.Fatal(err)
	}
	if msg, _, err := oldC.Decrypt(sig2, "3", "4", enc2); err != nil || string(msg) != "reply" {
		t.Fatalf("old key holder cannot read the reply: %q, %v", msg, err)
	}
	if _, _, err := newC.Decrypt(sig2, "3", "4", enc2); err == nil {
		t.Fatal("reply under the previous key decrypted with the new key")
	}
	reply, err := rotated.Reply(k, []byte("reply2"), "5", "6")
	if err != nil {
		t.Fatal(err)
	}
	renc, rsig, rts, rnonce := replyFields(t, reply)
	if msg, _, err := oldC.Decrypt(rsig, rts, rnonce, renc); err != nil || string(msg) != "reply2" {
		t.Fatalf("Reply not under the previous key: %q, %v", msg, err)
	}

	// A message under the current key reports the current key; the zero Key is the current key.
	enc, sig, _ = newC.Encrypt([]byte("fresh"), "1", "2")
	msg, k, err = rotated.Decrypt(sig, "1", "2", enc)
	if err != nil || string(msg) != "fresh" || !k.IsCurrent() || k != (wxcrypt.Key{}) {
		t.Fatalf("Decrypt with current key = %q, %v, %v", msg, k, err)
	}

	// A message under a key the Crypter does not hold fails (the pad/length/appid checks reject it).
	unknown := mustNew(t, token, unknownKey, appID)
	enc, sig, _ = unknown.Encrypt([]byte("stranger"), "1", "2")
	_, _, err = rotated.Decrypt(sig, "1", "2", enc)
	if !errors.Is(err, wxcrypt.ErrIllegalBuffer) && !errors.Is(err, wxcrypt.ErrAppIDMismatch) {
		t.Fatalf("unknown key: got %v, want illegal buffer or appid mismatch", err)
	}

	// A Key naming a previous key the Crypter does not have is refused.
	_, _, err = newC.EncryptWith(k2(t, rotated, oldC), []byte("x"), "1", "2")
	wantErr(t, err, wxcrypt.ErrIllegalAESKey)
}

// k2 returns the Key for rotated's first previous key by decrypting a message from old.
func k2(t *testing.T, rotated, old *wxcrypt.Crypter) wxcrypt.Key {
	enc, sig, _ := old.Encrypt([]byte("k"), "1", "1")
	_, k, err := rotated.Decrypt(sig, "1", "1", enc)
	if err != nil || k.IsCurrent() {
		t.Fatalf("cannot get previous Key: %v", err)
	}
	return k
}

func TestConcurrentUse(t *testing.T) {
	c := mustNew(t, "token", testAESKey, "wxappid", strings.Repeat("A", 43))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				m := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				body, sig, err := c.PushBody(m, "", "1", "2")
				if err != nil {
					errs <- err
					return
				}
				got, _, err := c.Open(body, sig, "1", "2")
				if err != nil || !bytes.Equal(got, m) {
					errs <- fmt.Errorf("Open = %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

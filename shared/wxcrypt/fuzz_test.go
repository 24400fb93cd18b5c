package wxcrypt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

const fuzzToken, fuzzAppID = "fuzztoken", "wxfuzzappid"

// FuzzOpen feeds arbitrary bodies to the envelope scanner and, whenever it accepts one, signs the Encrypt
// field correctly so the decryption layers run on arbitrary input too. It checks that:
// nothing panics; Open fails with a parse error exactly when ParseEnvelope does; a correctly signed body
// never fails the signature check and a wrongly signed one always does; encoding/xml agrees on every
// accepted body (where the two are comparable); and anything that decrypts re-encrypts to itself.
func FuzzOpen(f *testing.F) {
	seedC := mustNew(f, fuzzToken, testAESKey, fuzzAppID)
	for _, m := range []string{"", "x", v1Msg, aMsg2} {
		body, _, err := seedC.PushBody([]byte(m), "gh_seed", "1", "2")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, "1", "2")
	}
	for _, b := range []string{v1Body, dBody,
		"<xml><AppId><![CDATA[" + v2AppID + "]]></AppId><Encrypt><![CDATA[" + v2Encrypt + "]]></Encrypt></xml>",
		"<xml><Encrypt>" + aEncrypt1 + "</Encrypt></xml>",
		"\xef\xbb\xbf<?xml version=\"1.0\"?><!--c--><xml a='1'><Encrypt>a&amp;<![CDATA[b]]>\r\n</Encrypt></xml>",
		"<!DOCTYPE x [<!ENTITY e 'v'>]><xml><Encrypt>&e;</Encrypt></xml>",
	} {
		f.Add([]byte(b), v1Timestamp, v1Nonce)
	}
	c := mustNew(f, fuzzToken, testAESKey, fuzzAppID)
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce string) {
		orig := bytes.Clone(body)
		env, perr := wxcrypt.ParseEnvelope(body)
		sig := "0000000000000000000000000000000000000000"
		if perr == nil {
			sig = wxcrypt.MsgSignature(fuzzToken, ts, nonce, env.Encrypt)
		}
		msg, k, oerr := c.Open(body, sig, ts, nonce)
		if !bytes.Equal(body, orig) {
			t.Fatal("Open modified its input")
		}
		if perr != nil {
			if !errors.Is(perr, wxcrypt.ErrParseXML) || !errors.Is(oerr, wxcrypt.ErrParseXML) {
				t.Fatalf("ParseEnvelope: %v; Open: %v", perr, oerr)
			}
			return
		}
		if env.Encrypt == "" {
			t.Fatal("accepted an envelope without Encrypt")
		}
		if errors.Is(oerr, wxcrypt.ErrParseXML) || errors.Is(oerr, wxcrypt.ErrInvalidSignature) {
			t.Fatalf("correctly signed body: %v", oerr)
		}
		if oerr == nil {
			enc, esig, err := c.EncryptWith(k, msg, ts, nonce)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := c.Decrypt(esig, ts, nonce, enc)
			if err != nil || !bytes.Equal(again, msg) {
				t.Fatalf("re-encryption round trip: %q, %v", again, err)
			}
		} else if wxcrypt.ErrorCode(oerr) == 0 {
			t.Fatalf("untyped error %v", oerr)
		}
		bad := []byte(sig)
		bad[0] ^= 1
		if _, _, err := c.Open(body, string(bad), ts, nonce); !errors.Is(err, wxcrypt.ErrInvalidSignature) {
			t.Fatalf("wrong signature: %v", err)
		}
		// encoding/xml accepts a superset of what the scanner accepts, except where the two differ by design:
		// declarations and PIs (charset handling), and prefixed names (namespace matching).
		if !bytes.Contains(body, []byte("<?")) && !bytes.Contains(body, []byte(":")) {
			std, err := stdEnvelope(body)
			if err != nil {
				t.Fatalf("scanner accepted what encoding/xml rejects (%v): %q", err, body)
			}
			if std != env {
				t.Fatalf("scanner %+v, encoding/xml %+v: %q", env, std, body)
			}
		}
	})
}

// FuzzDecrypt encrypts an arbitrary plaintext block sequence, so every padding, length and appid layout is
// reachable, and checks Decrypt against a direct reading of the format; it also round-trips data as a message.
func FuzzDecrypt(f *testing.F) {
	f.Add(pad32(layout(negRand, 3, "abc", fuzzAppID)), []byte("msg"))
	f.Add(pad32(layout(negRand, 3, "abc", "other")), []byte(""))
	f.Add(layout(negRand, 0xffffffff, "", fuzzAppID)[:16], []byte(v1Msg))
	f.Add(bytes.Repeat([]byte{32}, 32), []byte(aMsg1))
	c := mustNew(f, fuzzToken, testAESKey, fuzzAppID)
	f.Fuzz(func(t *testing.T, pt, data []byte) {
		pt = pt[:len(pt)/16*16]
		enc := rawEncrypt(t, testAESKey, pt)
		msg, _, err := c.Decrypt(wxcrypt.MsgSignature(fuzzToken, "1", "2", enc), "1", "2", enc)
		want, wantCode := refUnpack(pt)
		if wantCode != wxcrypt.ErrorCode(err) || (err == nil && !bytes.Equal(msg, want)) {
			t.Fatalf("Decrypt = %q, %v; reference %q, code %d", msg, err, want, wantCode)
		}

		enc, sig, err := c.Encrypt(data, "3", "4")
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := c.Decrypt(sig, "3", "4", enc)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip = %q, %v", got, err)
		}
	})
}

// refUnpack is a plain reading of the decrypted layout: the reference FuzzDecrypt compares against.
func refUnpack(pt []byte) ([]byte, int) {
	if len(pt) == 0 {
		return nil, wxcrypt.CodeDecryptAES
	}
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > 32 || pad > len(pt) || !bytes.Equal(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, wxcrypt.CodeIllegalBuffer
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < 20 {
		return nil, wxcrypt.CodeIllegalBuffer
	}
	n := int64(binary.BigEndian.Uint32(pt[16:20]))
	if n > int64(len(pt)-20) {
		return nil, wxcrypt.CodeIllegalBuffer
	}
	if string(pt[20+n:]) != fuzzAppID {
		return nil, wxcrypt.CodeValidateAppID
	}
	return pt[20 : 20+n], 0
}

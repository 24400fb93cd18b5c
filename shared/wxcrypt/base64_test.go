package wxcrypt_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

// checkBase64 compares the package's base64 loops with encoding/base64 on data (encoded) and on s (decoded).
func checkBase64(t *testing.T, data []byte, s string) {
	t.Helper()
	want := base64.StdEncoding.EncodeToString(data)
	got := make([]byte, len(want))
	wxcrypt.B64Encode(got, data)
	if string(got) != want {
		t.Fatalf("encode(%x) = %s, want %s", data, got, want)
	}
	for _, in := range []string{want, s} {
		wantDst := make([]byte, base64.StdEncoding.DecodedLen(len(in)))
		wantN, wantErr := base64.StdEncoding.Decode(wantDst, []byte(in))
		gotDst := make([]byte, len(wantDst))
		gotN, gotErr := wxcrypt.B64Decode(gotDst, []byte(in))
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decode(%q) error = %v, want %v", in, gotErr, wantErr)
		}
		if wantErr == nil && (gotN != wantN || !bytes.Equal(gotDst[:gotN], wantDst[:wantN])) {
			t.Fatalf("decode(%q) = %x, want %x", in, gotDst[:gotN], wantDst[:wantN])
		}
	}
}

func TestBase64MatchesStdlib(t *testing.T) {
	for n := range 70 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*151 + n)
		}
		checkBase64(t, data, "")
	}
	for _, s := range []string{
		"", "=", "==", "A", "AA==", "AAA=", "AAAA", "AAAAAAAAAAAA", "AAAAAAAAAAAA====",
		"QUJDREVGR0hJSktMTU5PUA==", "QUJDREVGR0hJSktMTU5PUA=", "QUJDREVGR0hJSktMTU5PUA",
		"QUJDREVG\nR0hJSktMTU5PUA==", "QUJDREVGR0hJSktM\r\nTU5PUA==\n", "QUJD=EVGR0hJSktMTU5PUA==",
		"QUJDREVGR0hJSktMTU5PUA==QUJD", "QUJDREVGR0hJ SktMTU5PUA==", "QUJDREVGR0hJSktMTU5PU-_",
		"QUJDREVGR0hJSktMTU5PUB==", // non-zero trailing bits: accepted, as by the standard decoder
		aEncrypt1, aEncrypt2, dEncrypt, v2Encrypt,
	} {
		checkBase64(t, []byte(s), s)
	}
}

func FuzzBase64(f *testing.F) {
	f.Add([]byte("hello, world"), aEncrypt1)
	f.Add([]byte{}, "QUJDREVG\nR0hJSktMTU5PUA==")
	f.Add([]byte{0xff, 0xfe}, "QUJD=EVGR0hJSktMTU5PUA==")
	f.Fuzz(func(t *testing.T, data []byte, s string) { checkBase64(t, data, s) })
}

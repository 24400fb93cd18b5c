package wxcrypt

// SetRandomPrefix makes c use prefix (16 bytes) as the random part of every message it encrypts,
// so tests can check ciphertexts byte-exact against published vectors.
func SetRandomPrefix(c *Crypter, prefix []byte) {
	p := append([]byte(nil), prefix...)
	c.randRead = func(b []byte) { copy(b, p) }
}

// The fast base64 loops, for the differential test against encoding/base64.
var (
	B64Encode = b64Encode
	B64Decode = b64Decode
)

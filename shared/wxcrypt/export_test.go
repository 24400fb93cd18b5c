package wxcrypt

// SetRandomPrefix makes c use prefix (16 bytes) as the random part of every message it encrypts,
// so tests can check ciphertexts byte-exact against published vectors.
func SetRandomPrefix(c *Crypter, prefix []byte) {
	p := append([]byte(nil), prefix...)
	c.randRead = func(b []byte) { copy(b, p) }
}

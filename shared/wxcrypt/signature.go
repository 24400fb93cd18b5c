package wxcrypt

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
)

// sigLen is the length of a hex SHA-1 signature.
const sigLen = 2 * sha1.Size

// Signature returns the plain 3-field signature hex(sha1(sort(token, timestamp, nonce))), as used by the
// classic URL verification. Third-party pushes must be checked with MsgSignature instead.
func Signature(token, timestamp, nonce string) string {
	sum := plainSum(token, timestamp, nonce)
	return hexSum(&sum)
}

// VerifySignature reports, in constant time, whether signature is Signature(token, timestamp, nonce).
func VerifySignature(token, timestamp, nonce, signature string) bool {
	sum := plainSum(token, timestamp, nonce)
	return equalSig(&sum, signature)
}

// MsgSignature returns hex(sha1(sort(token, timestamp, nonce, encrypt))), the msg_signature of a push or
// of an encrypted reply.
func MsgSignature(token, timestamp, nonce, encrypt string) string {
	sum := msgSum(nil, token, timestamp, nonce, encrypt)
	return hexSum(&sum)
}

func plainSum(token, timestamp, nonce string) [sha1.Size]byte {
	p := [3]string{token, timestamp, nonce}
	sort3(&p)
	buf := scratchBuf(nil, len(token)+len(timestamp)+len(nonce), make([]byte, 0, 256))
	off := 0
	for _, s := range p {
		off += copy(buf[off:], s)
	}
	return sha1.Sum(buf)
}

// msgSum computes the msg_signature digest, building its input in scratch when that is large enough.
func msgSum[E string | []byte](scratch []byte, token, timestamp, nonce string, enc E) [sha1.Size]byte {
	n := len(token) + len(timestamp) + len(nonce) + len(enc)
	buf := scratchBuf(scratch, n, make([]byte, 0, 512))
	sigInput(buf, token, timestamp, nonce, enc)
	return sha1.Sum(buf)
}

// scratchBuf returns n bytes from scratch if it has the capacity, else from small (a caller's
// non-escaping stack buffer) if that does, else from the heap.
func scratchBuf(scratch []byte, n int, small []byte) []byte {
	switch {
	case cap(scratch) >= n:
		return scratch[:n]
	case cap(small) >= n:
		return small[:n]
	}
	return make([]byte, n)
}

// sigInput writes the msg_signature input (token, timestamp, nonce and enc, sorted byte-wise and
// concatenated) into dst, which must be exactly that long, and returns the offset where enc landed.
// enc may be a string or a slice of a request body; neither is copied more than once and nothing allocates.
func sigInput[E string | []byte](dst []byte, token, timestamp, nonce string, enc E) int {
	p := [3]string{token, timestamp, nonce}
	sort3(&p)
	encPos := len(p) // enc's rank among the four
	for i := range p {
		if string(enc) < p[i] {
			encPos = i
			break
		}
	}
	off := 0
	for _, s := range p[:encPos] {
		off += copy(dst[off:], s)
	}
	encOff := off
	off += copy(dst[off:], enc)
	for _, s := range p[encPos:] {
		off += copy(dst[off:], s)
	}
	return encOff
}

func hexSum(sum *[sha1.Size]byte) string {
	var h [sigLen]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// equalSig compares a computed sum with a lowercase hex signature in constant time (the length is not
// secret and is checked first).
func equalSig(sum *[sha1.Size]byte, sig string) bool {
	if len(sig) != sigLen {
		return false
	}
	var want, got [sigLen]byte
	hex.Encode(want[:], sum[:])
	copy(got[:], sig)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// sort3 is a sorting network: plain byte-wise string order, no allocation.
func sort3(p *[3]string) {
	if p[1] < p[0] {
		p[0], p[1] = p[1], p[0]
	}
	if p[2] < p[1] {
		p[1], p[2] = p[2], p[1]
	}
	if p[1] < p[0] {
		p[0], p[1] = p[1], p[0]
	}
}

package wxcrypt

import (
	"encoding/base64"
	"encoding/binary"
)

// Base64 on the hot paths. encoding/base64 handles one character per table lookup; these loops handle
// 8 characters per step (two 4-character groups on decode, four 12-bit pairs on encode), which is about
// twice as fast. Each loop covers only the plain middle of the input and leaves the rest — the last
// group with its padding, and anything unusual such as '\n' or a bad byte — to encoding/base64, so
// results and errors are exactly the standard decoder's (checked by the tests and FuzzBase64).

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// b64Invalid marks a byte outside the alphabet in the decode tables.
const b64Invalid = 1 << 31

var (
	b64Pairs [1 << 12]uint16 // 12 bits -> two characters
	b64Dec   [4][256]uint32  // character -> its 6 bits, pre-shifted for each position in a group
)

func init() {
	for i := range b64Pairs {
		b64Pairs[i] = uint16(b64Alphabet[i>>6])<<8 | uint16(b64Alphabet[i&63])
	}
	for pos := range b64Dec {
		for c := range b64Dec[pos] {
			b64Dec[pos][c] = b64Invalid
		}
	}
	for v := range len(b64Alphabet) {
		c := b64Alphabet[v]
		b64Dec[0][c] = uint32(v) << 18
		b64Dec[1][c] = uint32(v) << 12
		b64Dec[2][c] = uint32(v) << 6
		b64Dec[3][c] = uint32(v)
	}
}

// b64Encode is base64.StdEncoding.Encode.
func b64Encode(dst, src []byte) {
	// 8 source bytes are read, 6 encoded into 8 characters.
	for len(src) >= 8 && len(dst) >= 8 {
		v := binary.BigEndian.Uint64(src)
		binary.BigEndian.PutUint64(dst, uint64(b64Pairs[v>>52])<<48|uint64(b64Pairs[v>>40&0xfff])<<32|
			uint64(b64Pairs[v>>28&0xfff])<<16|uint64(b64Pairs[v>>16&0xfff]))
		src, dst = src[6:], dst[8:]
	}
	for len(src) >= 3 && len(dst) >= 4 {
		v := uint(src[0])<<16 | uint(src[1])<<8 | uint(src[2])
		binary.BigEndian.PutUint32(dst, uint32(b64Pairs[v>>12])<<16|uint32(b64Pairs[v&0xfff]))
		src, dst = src[3:], dst[4:]
	}
	base64.StdEncoding.Encode(dst, src)
}

// b64Decode is base64.StdEncoding.Decode: dst must hold DecodedLen(len(src)) bytes.
func b64Decode(dst, src []byte) (int, error) {
	n := 0
	// Groups of 8 characters while at least 4 more follow (the last group may be padded). Decoded
	// groups are whole, so the standard decoder resumes from exactly the state it would have reached.
	for len(src) >= 12 && len(dst)-n >= 8 {
		v := b64Dec[0][src[0]] | b64Dec[1][src[1]] | b64Dec[2][src[2]] | b64Dec[3][src[3]]
		w := b64Dec[0][src[4]] | b64Dec[1][src[5]] | b64Dec[2][src[6]] | b64Dec[3][src[7]]
		if (v|w)&b64Invalid != 0 {
			break
		}
		// Writes 8 bytes, the last 2 of which the next step overwrites (or lie beyond the result).
		binary.BigEndian.PutUint64(dst[n:], uint64(v)<<40|uint64(w)<<16)
		n += 6
		src = src[8:]
	}
	m, err := base64.StdEncoding.Decode(dst[n:], src)
	return n + m, err
}

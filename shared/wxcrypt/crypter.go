package wxcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
)

const (
	encodingAESKeyLen = 43
	padBlock          = 32 // PKCS#7 block size of the scheme (not AES's 16)
	randomLen         = 16
	headerLen         = randomLen + 4 // random ‖ BE32(len(msg))
)

// Crypter encrypts and decrypts messages for one token, appid and set of EncodingAESKeys.
// It is safe for concurrent use.
type Crypter struct {
	token string
	appID string
	keys  []aesKey // keys[0] is current, the rest are previous keys in the order given

	// randRead fills the 16-byte random prefix; nil means crypto/rand. Tests inject a fixed prefix.
	randRead func([]byte)
}

type aesKey struct {
	block cipher.Block
	iv    [aes.BlockSize]byte // AESKey[:16]
}

// Key names one of a Crypter's EncodingAESKeys without exposing it. The zero value is the current key.
// A Key is meaningful only for the Crypter (or one built with the same keys in the same order) that returned it.
type Key struct{ idx int }

// IsCurrent reports whether k is the current key (as opposed to a previous one kept for rotation).
func (k Key) IsCurrent() bool { return k.idx == 0 }

// String returns "current" or "previous#N" (N counting from 1 in the order given to New); safe to log.
func (k Key) String() string {
	if k.idx == 0 {
		return "current"
	}
	return "previous#" + strconv.Itoa(k.idx)
}

// New builds a Crypter. encodingAESKey must be 43 chars decoding (with "=" appended, std base64) to 32 bytes.
// previousKeys: older EncodingAESKeys still accepted for decryption during rotation (try current first).
func New(token, encodingAESKey, appID string, previousKeys ...string) (*Crypter, error) {
	if token == "" {
		return nil, errConfig("empty token")
	}
	if appID == "" {
		return nil, errConfig("empty appid")
	}
	c := &Crypter{token: token, appID: appID, keys: make([]aesKey, 0, 1+len(previousKeys))}
	for i, s := range append([]string{encodingAESKey}, previousKeys...) {
		k, err := parseKey(s)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			return nil, newErr(CodeIllegalAESKey, "previous key #"+strconv.Itoa(i)+": "+err.(*Error).Msg)
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

func errConfig(what string) error { return &configError{what} }

type configError struct{ what string }

func (e *configError) Error() string        { return ErrConfig.Error() + ": " + e.what }
func (e *configError) Is(target error) bool { return target == ErrConfig }

// parseKey decodes an EncodingAESKey and builds its block cipher once, so calls never rebuild it.
func parseKey(s string) (aesKey, error) {
	if len(s) != encodingAESKeyLen {
		return aesKey{}, newErr(CodeIllegalAESKey, "illegal AES key: EncodingAESKey must be 43 characters")
	}
	for i := 0; i < len(s); i++ {
		if !isBase64Char(s[i]) {
			// Base64 decoding would silently skip '\r' and '\n'; reject every non-alphabet byte.
			return aesKey{}, newErr(CodeIllegalAESKey, "illegal AES key: EncodingAESKey has a non-base64 character")
		}
	}
	var raw [33]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(s+"="))
	if err != nil || n != 32 {
		return aesKey{}, newErr(CodeIllegalAESKey, "illegal AES key: EncodingAESKey does not decode to 32 bytes")
	}
	block, err := aes.NewCipher(raw[:32])
	if err != nil {
		return aesKey{}, newErr(CodeIllegalAESKey, "illegal AES key")
	}
	k := aesKey{block: block}
	copy(k.iv[:], raw[:aes.BlockSize])
	clear(raw[:])
	return k, nil
}

func isBase64Char(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '+' || b == '/'
}

// AppID returns the appid checked in (and appended to) every message.
func (c *Crypter) AppID() string { return c.appID }

// Decrypt verifies msg_signature (constant-time compare) over (token,timestamp,nonce,encrypt), decrypts, checks
// the trailing appid, and returns the message plaintext plus the Key that worked (current or previous).
func (c *Crypter) Decrypt(msgSignature, timestamp, nonce, encrypt string) ([]byte, Key, error) {
	return decrypt(c, msgSignature, timestamp, nonce, encrypt)
}

// decrypt is Decrypt for an Encrypt held as a string or, from Open, as a slice of the body (saving a copy).
func decrypt[E string | []byte](c *Crypter, msgSignature, timestamp, nonce string, enc E) ([]byte, Key, error) {
	if len(msgSignature) != sigLen {
		return nil, Key{}, ErrInvalidSignature
	}
	sigInLen := len(c.token) + len(timestamp) + len(nonce) + len(enc)
	maxCT := base64.StdEncoding.DecodedLen(len(enc))
	spare := 0
	if len(c.keys) > 1 {
		spare = maxCT // decrypt out of place so each key sees the original ciphertext
	}
	// One allocation: [signature input | ciphertext | spare]. The message returned aliases it.
	buf := make([]byte, sigInLen+maxCT+spare)
	encOff := sigInput(buf[:sigInLen], c.token, timestamp, nonce, enc)
	sum := sha1.Sum(buf[:sigInLen])
	if !equalSig(&sum, msgSignature) {
		return nil, Key{}, ErrInvalidSignature
	}
	ct := buf[sigInLen : sigInLen+maxCT]
	// Decode from the copy already in buf: base64 wants a []byte source and enc may be a string.
	n, err := b64Decode(ct, buf[encOff:encOff+len(enc)])
	clear(buf[:sigInLen]) // drop the token copy from the array the result aliases
	if err != nil {
		return nil, Key{}, newErr(CodeDecodeBase64, "base64 decode error: invalid Encrypt")
	}
	return c.open(ct[:n], buf[sigInLen+maxCT:])
}

// open decrypts ct with each key in turn (in place when there is a single key, else into spare).
func (c *Crypter) open(ct, spare []byte) ([]byte, Key, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, Key{}, newErr(CodeDecryptAES, "AES decrypt error: ciphertext is not a non-empty multiple of the block size")
	}
	var firstErr error
	for i := range c.keys {
		k := &c.keys[i]
		pt := ct
		if len(c.keys) > 1 {
			pt = spare[:len(ct)]
		}
		k.cbcDecrypt(pt, ct)
		msg, err := c.unpack(pt)
		if err == nil {
			return msg, Key{idx: i}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, Key{}, firstErr
}

// unpack strips the padding and checks random ‖ BE32(len) ‖ msg ‖ appid. The message is not trimmed.
func (c *Crypter) unpack(pt []byte) ([]byte, error) {
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > padBlock || pad > len(pt) {
		return nil, newErr(CodeIllegalBuffer, "illegal buffer: bad padding")
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, newErr(CodeIllegalBuffer, "illegal buffer: bad padding")
		}
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < headerLen {
		return nil, newErr(CodeIllegalBuffer, "illegal buffer: too short")
	}
	n := uint64(binary.BigEndian.Uint32(pt[randomLen:headerLen]))
	if n > uint64(len(pt)-headerLen) {
		return nil, newErr(CodeIllegalBuffer, "illegal buffer: length field exceeds buffer")
	}
	end := headerLen + int(n)
	if string(pt[end:]) != c.appID {
		return nil, newErr(CodeValidateAppID, "appid mismatch")
	}
	return pt[headerLen:end:end], nil
}

// Encrypt encrypts msg with the current key and random 16-byte prefix, returns base64 ciphertext and its msg_signature.
func (c *Crypter) Encrypt(msg []byte, timestamp, nonce string) (encrypt, msgSignature string, err error) {
	return c.EncryptWith(Key{}, msg, timestamp, nonce)
}

// EncryptWith does the same with a given key (reply with the key that decrypted the request).
func (c *Crypter) EncryptWith(k Key, msg []byte, timestamp, nonce string) (encrypt, msgSignature string, err error) {
	sigExtra := len(c.token) + len(timestamp) + len(nonce)
	buf, ct, err := c.seal(k, msg, sigExtra)
	if err != nil {
		return "", "", err
	}
	b64 := buf[len(ct) : len(ct)+base64.StdEncoding.EncodedLen(len(ct))]
	b64Encode(b64, ct)
	encrypt = string(b64)
	// The ciphertext and base64 in buf are spent: reuse it for the signature input.
	sum := msgSum(buf, c.token, timestamp, nonce, encrypt)
	return encrypt, hexSum(&sum), nil
}

// seal builds, pads and encrypts the plaintext into ct, at the start of buf; buf has room after ct for its
// base64 text and is also long enough for that text plus sigExtra bytes (the signature input).
func (c *Crypter) seal(k Key, msg []byte, sigExtra int) (buf, ct []byte, err error) {
	if k.idx < 0 || k.idx >= len(c.keys) {
		return nil, nil, newErr(CodeIllegalAESKey, "illegal AES key: unknown Key")
	}
	if uint64(len(msg)) > math.MaxUint32 {
		return nil, nil, newErr(CodeEncryptAES, "AES encrypt error: message too long")
	}
	key := &c.keys[k.idx]
	ptLen := headerLen + len(msg) + len(c.appID)
	pad := padBlock - ptLen%padBlock
	ctLen := ptLen + pad
	b64Len := base64.StdEncoding.EncodedLen(ctLen)
	buf = make([]byte, b64Len+max(ctLen, sigExtra))
	ct = buf[:ctLen]
	if c.randRead != nil {
		c.randRead(ct[:randomLen])
	} else {
		rand.Read(ct[:randomLen]) // never fails (crypto/rand, Go 1.24+)
	}
	binary.BigEndian.PutUint32(ct[randomLen:headerLen], uint32(len(msg)))
	copy(ct[headerLen:], msg)
	copy(ct[headerLen+len(msg):], c.appID)
	for i := ptLen; i < ctLen; i++ {
		ct[i] = byte(pad)
	}
	key.cbcEncrypt(ct)
	return buf, ct, nil
}

// CBC is done here block by block rather than with cipher.NewCBC*: those copy the whole expanded key
// (about 500 bytes) into a fresh heap object on every call, and on amd64 they run the same per-block loop.

// cbcDecrypt decrypts src into dst (equal lengths, a multiple of the block size; dst may be src).
func (k *aesKey) cbcDecrypt(dst, src []byte) {
	// Backwards, so that in place each block's predecessor is still ciphertext when it is needed.
	for i := len(src) - aes.BlockSize; i >= 0; i -= aes.BlockSize {
		prev := k.iv[:]
		if i > 0 {
			prev = src[i-aes.BlockSize : i]
		}
		blk := dst[i : i+aes.BlockSize]
		k.block.Decrypt(blk, src[i:i+aes.BlockSize])
		xor16(blk, prev)
	}
}

// cbcEncrypt encrypts b in place (a multiple of the block size).
func (k *aesKey) cbcEncrypt(b []byte) {
	prev := k.iv[:]
	for i := 0; i < len(b); i += aes.BlockSize {
		blk := b[i : i+aes.BlockSize]
		xor16(blk, prev)
		k.block.Encrypt(blk, blk)
		prev = blk
	}
}

func xor16(dst, src []byte) {
	_, _ = dst[15], src[15]
	le := binary.LittleEndian
	le.PutUint64(dst, le.Uint64(dst)^le.Uint64(src))
	le.PutUint64(dst[8:], le.Uint64(dst[8:])^le.Uint64(src[8:]))
}

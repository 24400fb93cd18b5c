// Package wxcrypt implements WeChat's message encryption (WXBizMsgCrypt, 消息加解密) as used by a
// third-party platform (第三方平台): every push to the authorization-event URL and the message callback URL
// is encrypted, and passive replies must be encrypted the same way.
//
// The scheme, byte-identical across 公众平台, 开放平台 and 企业微信:
//
//   - AESKey = base64(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = AESKey[:16].
//   - Plaintext = random(16) ‖ BE32(len(msg)) ‖ msg ‖ appid, PKCS#7-padded to a multiple of 32 (not 16).
//   - Encrypt = standard base64 of the ciphertext.
//   - msg_signature = hex(sha1(concat(sort(token, timestamp, nonce, Encrypt)))).
//
// For a third-party platform the trailing appid is the component appid on both URLs.
//
// A Crypter holds the token, the appid and the AES state for the current EncodingAESKey plus any previous
// keys still accepted during rotation (the official advice is to try the current key, then the previous
// one, and to reply with whichever worked: Decrypt returns that Key and EncryptWith/Reply take it).
//
// Signatures are compared in constant time as lowercase hex, the form WeChat sends.
//
// The hot paths are built to be cheap (see TARGETS.md and the benchmarks): the envelope is scanned by
// hand rather than with encoding/xml (DOCTYPE/ENTITY declarations are rejected, so there is no XXE
// surface), the AES block cipher of each key is built once in New, and a Decrypt makes one allocation
// holding the signature input and the ciphertext, which is base64-decoded and CBC-decrypted in place.
// The returned message aliases that buffer (its capacity is cut to its length).
//
// Failures are *Error values carrying the official sample's -400xx code; compare them with errors.Is
// against the Err* sentinels. No error text ever contains the token, a key or plaintext.
package wxcrypt

package wxcrypt

import (
	"encoding/base64"
	"encoding/hex"
	"unicode/utf8"
)

// Reply builds the full encrypted passive-reply XML (<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>) using key k.
// timestamp is the reply's own; nonce is normally echoed from the request. They are escaped as XML
// needs (values WeChat sends never need it); characters XML cannot carry give ErrGenReturnXML.
// An empty or "success" answer means "no reply" and must not go through Reply.
func (c *Crypter) Reply(k Key, msg []byte, timestamp, nonce string) ([]byte, error) {
	if !xmlSafe(timestamp) || !xmlSafe(nonce) {
		return nil, newErr(CodeGenReturnXML, "cannot build XML: timestamp or nonce has characters XML cannot carry")
	}
	sigExtra := len(c.token) + len(timestamp) + len(nonce)
	buf, ct, err := c.seal(k, msg, sigExtra)
	if err != nil {
		return nil, err
	}
	// The base64 text goes straight into the reply and is signed from there: two allocations in all.
	const (
		open1 = "<xml><Encrypt><![CDATA["
		open2 = "]]></Encrypt><MsgSignature><![CDATA["
		open3 = "]]></MsgSignature><TimeStamp>"
		open4 = "</TimeStamp><Nonce><![CDATA["
		open5 = "]]></Nonce></xml>"
	)
	b64Len := base64.StdEncoding.EncodedLen(len(ct))
	out := make([]byte, 0, len(open1)+b64Len+len(open2)+sigLen+len(open3)+len(open4)+len(open5)+
		len(timestamp)+len(nonce)) // escaping, never needed for WeChat's values, would just grow it
	out = append(out, open1...)
	out = out[:len(out)+b64Len]
	enc := out[len(open1):]
	b64Encode(enc, ct)
	sum := msgSum(buf, c.token, timestamp, nonce, enc)
	out = append(out, open2...)
	out = out[:len(out)+sigLen]
	hex.Encode(out[len(out)-sigLen:], sum[:])
	out = append(out, open3...)
	out = appendText(out, timestamp)
	out = append(out, open4...)
	out = appendCDATA(out, nonce)
	out = append(out, open5...)
	return out, nil
}

// PushBody builds an encrypted push body like WeChat sends (used by the sandbox and tests):
// returns the body <xml><AppId>appid</AppId><Encrypt>..</Encrypt></xml> (or ToUserName instead of AppId when
// toUserName != "") and the msg_signature for the given timestamp/nonce.
// It encrypts with the current key.
func (c *Crypter) PushBody(msg []byte, toUserName, timestamp, nonce string) (body []byte, msgSignature string, err error) {
	tag, val := "AppId", c.appID
	if toUserName != "" {
		tag, val = "ToUserName", toUserName
	}
	if !xmlSafe(val) {
		return nil, "", newErr(CodeGenReturnXML, "cannot build XML: "+tag+" has characters XML cannot carry")
	}
	enc, sig, err := c.Encrypt(msg, timestamp, nonce)
	if err != nil {
		return nil, "", err
	}
	body = make([]byte, 0, 64+2*len(tag)+len(val)+len(enc))
	body = append(body, "<xml><"...)
	body = append(body, tag...)
	body = append(body, "><![CDATA["...)
	body = appendCDATA(body, val)
	body = append(body, "]]></"...)
	body = append(body, tag...)
	body = append(body, "><Encrypt><![CDATA["...)
	body = append(body, enc...)
	body = append(body, "]]></Encrypt></xml>"...)
	return body, sig, nil
}

// xmlSafe reports whether s is valid UTF-8 made of characters XML can carry.
func xmlSafe(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !isXMLChar(r) {
			// RuneError also stands for invalid UTF-8; a literal U+FFFD is rejected too, which is harmless here.
			return false
		}
	}
	return true
}

// appendCDATA writes s as CDATA content, splitting any "]]>" across two sections.
// '\r' would be normalised away by the reader, so it goes out as a character reference outside CDATA.
func appendCDATA(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == ']' && len(s)-i >= 3 && s[i:i+3] == "]]>":
			dst = append(dst, "]]]]><![CDATA[>"...)
			i += 2
		case s[i] == '\r':
			dst = append(dst, "]]>&#xD;<![CDATA["...)
		default:
			dst = append(dst, s[i])
		}
	}
	return dst
}

// appendText writes s as escaped character data.
func appendText(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '\r':
			dst = append(dst, "&#xD;"...)
		default:
			dst = append(dst, s[i])
		}
	}
	return dst
}

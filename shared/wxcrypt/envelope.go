package wxcrypt

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// Envelope is the outer XML of a push: <xml><ToUserName|AppId>..</..><Encrypt>..</Encrypt></xml>.
// Only Encrypt is covered by msg_signature; the other fields are unauthenticated hints.
type Envelope struct{ ToUserName, AppID, Encrypt string }

// ParseEnvelope extracts the fields from a push body; rejects DOCTYPE/ENTITY (XXE), missing Encrypt, malformed XML.
//
// The body must be well-formed UTF-8 XML. Fields are the text content of the direct children of the root
// element named ToUserName, AppId and Encrypt (CDATA and plain text, entity references decoded, line
// ends normalised as XML requires, nothing trimmed). Other children, attributes, comments and processing
// instructions are skipped; a repeated field, a child element inside a field, any "<!" declaration and
// any content after the root element are errors. An empty Encrypt counts as missing.
func ParseEnvelope(body []byte) (Envelope, error) {
	var s envScan
	if err := s.scan(body); err != nil {
		return Envelope{}, err
	}
	var env Envelope
	for i, dst := range [...]*string{&env.ToUserName, &env.AppID, &env.Encrypt} {
		v, err := s.fields[i].value(body)
		if err != nil {
			return Envelope{}, err
		}
		*dst = string(v)
	}
	return env, nil
}

// Open = ParseEnvelope + Decrypt of its Encrypt field (the hot inbound path).
func (c *Crypter) Open(body []byte, msgSignature, timestamp, nonce string) ([]byte, Key, error) {
	var s envScan
	if err := s.scan(body); err != nil {
		return nil, Key{}, err
	}
	enc, err := s.fields[fieldEncrypt].value(body)
	if err != nil {
		return nil, Key{}, err
	}
	return decrypt(c, msgSignature, timestamp, nonce, enc)
}

const (
	fieldToUserName = iota
	fieldAppID
	fieldEncrypt
	numFields
)

// maxDepth bounds element nesting; pushes are two levels deep.
const maxDepth = 32

type field struct {
	seen bool
	// start, end delimit the raw content between the start and end tags.
	start, end int
	// items counts text runs and CDATA sections; complex is set when the content needs decoding
	// (entities, '\r', comments or PIs). With at most one item and no decoding, the value is b[vs:ve].
	items   int
	complex bool
	vs, ve  int
}

type envScan struct {
	fields [numFields]field
}

func xmlErr(msg string) error { return newErr(CodeParseXML, "xml parse error: "+msg) }

var (
	msgTruncated = "truncated or unclosed markup"
	bom          = []byte("\xef\xbb\xbf")
	cdataOpen    = []byte("<![CDATA[")
	cdataClose   = []byte("]]>")
	commentOpen  = []byte("<!--")
	commentClose = []byte("-->")
	piClose      = []byte("?>")
)

// scan checks the whole body and records where the fields are.
func (s *envScan) scan(b []byte) error {
	if err := checkChars(b); err != nil {
		return err
	}
	p := 0
	if bytes.HasPrefix(b, bom) {
		p = len(bom)
	}
	// Prolog: whitespace, the XML declaration, comments and PIs; DOCTYPE is refused.
	for {
		p = skipSpace(b, p)
		if p >= len(b) {
			return xmlErr("no root element")
		}
		if b[p] != '<' {
			return xmlErr("text before the root element")
		}
		q, ok, err := skipMisc(b, p)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		p = q
	}
	var stack [maxDepth][]byte
	name, p, selfClose, err := startTag(b, p)
	if err != nil {
		return err
	}
	depth := 0
	if !selfClose {
		stack[0] = name
		depth = 1
	}
	cur := -1 // field whose content is being read (always at depth 2)
	for depth > 0 {
		lt := bytes.IndexByte(b[p:], '<')
		if lt < 0 {
			return xmlErr(msgTruncated)
		}
		if lt > 0 {
			text := b[p : p+lt]
			if bytes.Contains(text, cdataClose) {
				return xmlErr("']]>' in text")
			}
			hasAmp := bytes.IndexByte(text, '&') >= 0
			if hasAmp {
				if _, err := unescape(nil, text, false); err != nil {
					return err
				}
			}
			if cur >= 0 {
				f := &s.fields[cur]
				f.items++
				f.vs, f.ve = p, p+lt
				if hasAmp || bytes.IndexByte(text, '\r') >= 0 {
					f.complex = true
				}
			}
		}
		p += lt
		rest := b[p:]
		switch {
		case bytes.HasPrefix(rest, cdataOpen):
			i := bytes.Index(rest[len(cdataOpen):], cdataClose)
			if i < 0 {
				return xmlErr(msgTruncated)
			}
			if cur >= 0 {
				f := &s.fields[cur]
				f.items++
				f.vs, f.ve = p+len(cdataOpen), p+len(cdataOpen)+i
				if bytes.IndexByte(b[f.vs:f.ve], '\r') >= 0 {
					f.complex = true
				}
			}
			p += len(cdataOpen) + i + len(cdataClose)
		case len(rest) > 1 && (rest[1] == '!' || rest[1] == '?'):
			q, _, err := skipMisc(b, p)
			if err != nil {
				return err
			}
			if cur >= 0 {
				s.fields[cur].complex = true
			}
			p = q
		case len(rest) > 1 && rest[1] == '/':
			name, q, err := endTag(b, p)
			if err != nil {
				return err
			}
			if !bytes.Equal(name, stack[depth-1]) {
				return xmlErr("mismatched end tag")
			}
			depth--
			if cur >= 0 {
				s.fields[cur].end = p
				cur = -1
			}
			p = q
		default:
			if cur >= 0 {
				return xmlErr("element inside a field")
			}
			name, q, selfClose, err := startTag(b, p)
			if err != nil {
				return err
			}
			if depth == 1 {
				if i := fieldIndex(name); i >= 0 {
					f := &s.fields[i]
					if f.seen {
						return xmlErr("repeated <" + string(name) + ">")
					}
					f.seen = true
					f.start, f.end, f.vs, f.ve = q, q, q, q
					if !selfClose {
						cur = i
					}
				}
			}
			if !selfClose {
				if depth == maxDepth {
					return xmlErr("elements nested too deeply")
				}
				stack[depth] = name
				depth++
			}
			p = q
		}
	}
	// Epilog: only whitespace, comments and PIs.
	for {
		p = skipSpace(b, p)
		if p >= len(b) {
			break
		}
		if b[p] != '<' {
			return xmlErr("content after the root element")
		}
		q, ok, err := skipMisc(b, p)
		if err != nil {
			return err
		}
		if !ok {
			return xmlErr("content after the root element")
		}
		p = q
	}
	if f := &s.fields[fieldEncrypt]; !f.seen || f.start == f.end {
		return xmlErr("missing Encrypt")
	}
	return nil
}

func fieldIndex(name []byte) int {
	switch string(name) {
	case "ToUserName":
		return fieldToUserName
	case "AppId":
		return fieldAppID
	case "Encrypt":
		return fieldEncrypt
	}
	return -1
}

// value returns the field's text: a slice of b when no decoding is needed, else a decoded copy.
func (f *field) value(b []byte) ([]byte, error) {
	if !f.complex && f.items <= 1 {
		if f.items == 0 {
			return nil, nil
		}
		return b[f.vs:f.ve], nil
	}
	raw := b[f.start:f.end]
	out := make([]byte, 0, len(raw))
	for len(raw) > 0 {
		switch {
		case bytes.HasPrefix(raw, cdataOpen):
			i := bytes.Index(raw, cdataClose) // present: checked by scan
			out = appendNormalized(out, raw[len(cdataOpen):i])
			raw = raw[i+len(cdataClose):]
		case bytes.HasPrefix(raw, commentOpen):
			raw = raw[len(commentOpen)+bytes.Index(raw[len(commentOpen):], commentClose)+len(commentClose):]
		case raw[0] == '<': // processing instruction
			raw = raw[2+bytes.Index(raw[2:], piClose)+len(piClose):]
		default:
			i := bytes.IndexByte(raw, '<')
			if i < 0 {
				i = len(raw)
			}
			var err error
			if out, err = unescape(out, raw[:i], true); err != nil {
				return nil, err
			}
			raw = raw[i:]
		}
	}
	return out, nil
}

// appendNormalized appends s with "\r\n" and lone '\r' turned into '\n' (XML end-of-line handling).
func appendNormalized(dst, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '\r')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, '\n')
		s = s[i+1:]
		if len(s) > 0 && s[0] == '\n' {
			s = s[1:]
		}
	}
}

// unescape validates the entity references in text and, if write is set, appends the decoded,
// newline-normalised text to dst.
func unescape(dst, text []byte, write bool) ([]byte, error) {
	for {
		i := bytes.IndexByte(text, '&')
		if i < 0 {
			if write {
				dst = appendNormalized(dst, text)
			}
			return dst, nil
		}
		if write {
			dst = appendNormalized(dst, text[:i])
		}
		text = text[i+1:]
		semi := bytes.IndexByte(text, ';')
		if semi < 0 {
			return nil, xmlErr("bad entity reference")
		}
		r, ok := entity(text[:semi])
		if !ok {
			return nil, xmlErr("bad entity reference")
		}
		if write {
			dst = utf8.AppendRune(dst, r)
		}
		text = text[semi+1:]
	}
}

// entity resolves the name of a reference: the five predefined entities and character references.
func entity(name []byte) (rune, bool) {
	switch string(name) {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "apos":
		return '\'', true
	case "quot":
		return '"', true
	}
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 {
		return 0, false
	}
	var r rune
	for _, c := range digits {
		var d rune
		switch {
		case '0' <= c && c <= '9':
			d = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + d
		if r > utf8.MaxRune {
			return 0, false
		}
	}
	return r, isXMLChar(r)
}

// isXMLChar reports whether r is allowed in an XML 1.0 document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= utf8.MaxRune
}

// checkChars rejects invalid UTF-8 and characters XML forbids. Plain ASCII is checked eight bytes at a time.
func checkChars(b []byte) error {
	const hi, lo = 0x8080808080808080, 0x2020202020202020
	for i := 0; i < len(b); {
		if i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			// No byte >= 0x80 and none < 0x20: the whole word is fine.
			if w&hi == 0 && (w-lo)&^w&hi == 0 {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return xmlErr("control character")
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return xmlErr("invalid UTF-8")
		}
		if !isXMLChar(r) {
			return xmlErr("character not allowed in XML")
		}
		i += size
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, p int) int {
	for p < len(b) && isSpace(b[p]) {
		p++
	}
	return p
}

// skipMisc skips a comment or processing instruction starting at b[p] == '<'. It reports ok=false
// (without error) when the markup is an element tag, and rejects every other "<!" construct: DOCTYPE
// and ENTITY declarations (the XXE vector) and CDATA outside an element.
func skipMisc(b []byte, p int) (next int, ok bool, err error) {
	rest := b[p:]
	switch {
	case bytes.HasPrefix(rest, commentOpen):
		i := bytes.Index(rest[len(commentOpen):], commentClose)
		if i < 0 {
			return 0, false, xmlErr(msgTruncated)
		}
		return p + len(commentOpen) + i + len(commentClose), true, nil
	case len(rest) > 1 && rest[1] == '?':
		i := bytes.Index(rest[2:], piClose)
		if i < 0 {
			return 0, false, xmlErr(msgTruncated)
		}
		return p + 2 + i + len(piClose), true, nil
	case len(rest) > 1 && rest[1] == '!':
		switch {
		case bytes.HasPrefix(rest, []byte("<!DOCTYPE")):
			return 0, false, xmlErr("DOCTYPE not allowed")
		case bytes.HasPrefix(rest, []byte("<!ENTITY")):
			return 0, false, xmlErr("ENTITY not allowed")
		}
		return 0, false, xmlErr("markup declaration not allowed")
	}
	return p, false, nil
}

// Names are restricted to ASCII, which is all WeChat uses.
func isNameStart(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':'
}

func isNameChar(c byte) bool {
	return isNameStart(c) || '0' <= c && c <= '9' || c == '-' || c == '.'
}

func scanName(b []byte, p int) (int, error) {
	if p >= len(b) {
		return 0, xmlErr(msgTruncated)
	}
	if !isNameStart(b[p]) {
		return 0, xmlErr("bad name")
	}
	p++
	for p < len(b) && isNameChar(b[p]) {
		p++
	}
	return p, nil
}

// startTag parses "<name attr='v' ...>" or ".../>" at b[p] == '<'.
func startTag(b []byte, p int) (name []byte, next int, selfClose bool, err error) {
	ne, err := scanName(b, p+1)
	if err != nil {
		return nil, 0, false, err
	}
	name = b[p+1 : ne]
	i := ne
	for {
		j := skipSpace(b, i)
		if j >= len(b) {
			return nil, 0, false, xmlErr(msgTruncated)
		}
		switch b[j] {
		case '>':
			return name, j + 1, false, nil
		case '/':
			if j+1 < len(b) && b[j+1] == '>' {
				return name, j + 2, true, nil
			}
			if j+1 >= len(b) {
				return nil, 0, false, xmlErr(msgTruncated)
			}
			return nil, 0, false, xmlErr("bad tag")
		}
		if j == i {
			return nil, 0, false, xmlErr("bad tag")
		}
		// Attribute: name = "value" | 'value'. Values are checked, not kept.
		if i, err = scanName(b, j); err != nil {
			return nil, 0, false, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, 0, false, xmlErr(msgTruncated)
		}
		if b[i] != '=' {
			return nil, 0, false, xmlErr("bad attribute")
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return nil, 0, false, xmlErr(msgTruncated)
		}
		q := b[i]
		if q != '"' && q != '\'' {
			return nil, 0, false, xmlErr("unquoted attribute value")
		}
		end := bytes.IndexByte(b[i+1:], q)
		if end < 0 {
			return nil, 0, false, xmlErr(msgTruncated)
		}
		val := b[i+1 : i+1+end]
		if bytes.IndexByte(val, '<') >= 0 {
			return nil, 0, false, xmlErr("'<' in attribute value")
		}
		if bytes.IndexByte(val, '&') >= 0 {
			if _, err := unescape(nil, val, false); err != nil {
				return nil, 0, false, err
			}
		}
		i += 1 + end + 1
	}
}

// endTag parses "</name >" at b[p] == '<'.
func endTag(b []byte, p int) (name []byte, next int, err error) {
	ne, err := scanName(b, p+2)
	if err != nil {
		return nil, 0, err
	}
	i := skipSpace(b, ne)
	if i >= len(b) {
		return nil, 0, xmlErr(msgTruncated)
	}
	if b[i] != '>' {
		return nil, 0, xmlErr("bad end tag")
	}
	return b[p+2 : ne], i + 1, nil
}

package wxcrypt_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/wxcrypt"
)

// stdEnvelope parses with encoding/xml, the reference the hand scanner must agree with when both accept.
func stdEnvelope(body []byte) (wxcrypt.Envelope, error) {
	var v struct {
		ToUserName string
		AppID      string `xml:"AppId"`
		Encrypt    string
	}
	err := xml.Unmarshal(body, &v)
	return wxcrypt.Envelope{ToUserName: v.ToUserName, AppID: v.AppID, Encrypt: v.Encrypt}, err
}

func TestParseEnvelopeAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       wxcrypt.Envelope
	}{
		{"message URL", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>`,
			wxcrypt.Envelope{ToUserName: "gh_1", Encrypt: "abc="}},
		{"auth event URL", `<xml><AppId><![CDATA[wxc]]></AppId><Encrypt><![CDATA[a+/b]]></Encrypt></xml>`,
			wxcrypt.Envelope{AppID: "wxc", Encrypt: "a+/b"}},
		{"plain text", `<xml><ToUserName>gh_1</ToUserName><Encrypt>abc</Encrypt></xml>`,
			wxcrypt.Envelope{ToUserName: "gh_1", Encrypt: "abc"}},
		{"entities", `<xml><ToUserName>a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;&#x4e2d;</ToUserName><Encrypt>a&#43;b&#x2F;c</Encrypt></xml>`,
			wxcrypt.Envelope{ToUserName: `a&b<>"'AB中`, Encrypt: "a+b/c"}},
		{"CDATA with markup inside", `<xml><ToUserName><![CDATA[<a>&amp;]]></ToUserName><Encrypt><![CDATA[x]]></Encrypt></xml>`,
			wxcrypt.Envelope{ToUserName: "<a>&amp;", Encrypt: "x"}},
		{"mixed CDATA and text", `<xml><Encrypt>ab<![CDATA[cd]]>e&amp;<!-- c --><![CDATA[]]>f</Encrypt></xml>`,
			wxcrypt.Envelope{Encrypt: "abcde&f"}},
		{"whitespace kept", "<xml>\n  <Encrypt>\n<![CDATA[abc]]>\n</Encrypt>\n</xml>",
			wxcrypt.Envelope{Encrypt: "\nabc\n"}},
		{"CRLF normalised", "<xml><Encrypt>a\r\nb\rc<![CDATA[d\r\ne]]>&#13;</Encrypt></xml>",
			wxcrypt.Envelope{Encrypt: "a\nb\ncd\ne\r"}},
		{"prolog and epilog", "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->\n<xml><Encrypt>e</Encrypt></xml>\n<!-- bye --><?pi x?>\n",
			wxcrypt.Envelope{Encrypt: "e"}},
		{"attributes", `<xml a="1" b = '2>' c="&amp;"><Encrypt x="y">e</Encrypt><AppId/></xml>`,
			wxcrypt.Envelope{Encrypt: "e"}},
		{"other fields skipped (compat mode)", `<xml><ToUserName>u</ToUserName><MsgType><![CDATA[text]]></MsgType><Video><MediaId>m</MediaId><Title/></Video><Encrypt>e</Encrypt><Content>t &amp; u</Content></xml>`,
			wxcrypt.Envelope{ToUserName: "u", Encrypt: "e"}},
		{"nested Encrypt is not the field", `<xml><Video><Encrypt>inner</Encrypt></Video><Encrypt>outer</Encrypt></xml>`,
			wxcrypt.Envelope{Encrypt: "outer"}},
		{"comment and PI inside a field", `<xml><Encrypt>a<!-- x --><?pi y?>b</Encrypt></xml>`, wxcrypt.Envelope{Encrypt: "ab"}},
		{"end tag with space", `<xml><Encrypt >e</Encrypt ></xml >`, wxcrypt.Envelope{Encrypt: "e"}},
		{"other root name", `<root><Encrypt>e</Encrypt></root>`, wxcrypt.Envelope{Encrypt: "e"}},
		{"V1 body", v1Body, wxcrypt.Envelope{ToUserName: "gh_10f6c3c3ac5a", Encrypt: v1Body[strings.Index(v1Body, "<Encrypt><![CDATA[")+18 : strings.Index(v1Body, "]]></Encrypt>")]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wxcrypt.ParseEnvelope([]byte(tc.body))
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if !strings.Contains(tc.body, "<?") && !strings.Contains(tc.name, "nested") {
				std, err := stdEnvelope([]byte(tc.body))
				if err != nil || std != got {
					t.Fatalf("encoding/xml disagrees: %+v, %v", std, err)
				}
			}
		})
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	const enc = `<Encrypt>e</Encrypt>`
	for name, body := range map[string]string{
		"DOCTYPE":                  `<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml>` + enc + `<ToUserName>&x;</ToUserName></xml>`,
		"DOCTYPE after decl":       `<?xml version="1.0"?><!DOCTYPE xml><xml>` + enc + `</xml>`,
		"ENTITY in content":        `<xml><!ENTITY x "y">` + enc + `</xml>`,
		"DOCTYPE in content":       `<xml>` + enc + `<!DOCTYPE x></xml>`,
		"undefined entity":         `<xml><Encrypt>&x;</Encrypt></xml>`,
		"undefined entity (other)": `<xml>` + enc + `<Content>&nbsp;</Content></xml>`,
		"bad char ref":             `<xml><Encrypt>&#0;</Encrypt></xml>`,
		"huge char ref":            `<xml><Encrypt>&#x110000;</Encrypt></xml>`,
		"unterminated entity":      `<xml><Encrypt>a&amp</Encrypt></xml>`,
		"missing Encrypt":          `<xml><ToUserName>u</ToUserName></xml>`,
		"empty Encrypt":            `<xml><Encrypt></Encrypt></xml>`,
		"self-closed Encrypt":      `<xml><Encrypt/></xml>`,
		"empty root":               `<xml/>`,
		"repeated Encrypt":         `<xml>` + enc + enc + `</xml>`,
		"repeated ToUserName":      `<xml><ToUserName>a</ToUserName>` + enc + `<ToUserName>b</ToUserName></xml>`,
		"element inside Encrypt":   `<xml><Encrypt>a<b/>c</Encrypt></xml>`,
		"mismatched end":           `<xml><Encrypt>e</Encrypt></xm>`,
		"mismatched inner":         `<xml><Encrypt>e</AppId></xml>`,
		"content after root":       `<xml>` + enc + `</xml>x`,
		"second root":              `<xml>` + enc + `</xml><xml/>`,
		"text before root":         `x<xml>` + enc + `</xml>`,
		"empty body":               ``,
		"whitespace only":          " \n",
		"not XML":                  `{"Encrypt":"e"}`,
		"CDATA outside root":       `<![CDATA[x]]><xml>` + enc + `</xml>`,
		"unterminated CDATA":       `<xml><Encrypt><![CDATA[e</Encrypt></xml>`,
		"unterminated comment":     `<xml>` + enc + `<!-- </xml>`,
		"unterminated PI":          `<?xml version="1.0"<xml>` + enc + `</xml>`,
		"unquoted attribute":       `<xml a=1>` + enc + `</xml>`,
		"attribute without value":  `<xml a>` + enc + `</xml>`,
		"'<' in attribute":         `<xml a="<">` + enc + `</xml>`,
		"bad name":                 `<xml><1a>x</1a>` + enc + `</xml>`,
		"control character":        "<xml><Encrypt>e\x01</Encrypt></xml>",
		"NUL":                      "<xml>" + enc + "\x00</xml>",
		"invalid UTF-8":            "<xml><Encrypt>e\xff</Encrypt></xml>",
		"U+FFFE":                   "<xml><Encrypt>e\uFFFE</Encrypt></xml>",
		"too deep":                 strings.Repeat("<a>", 40) + enc + strings.Repeat("</a>", 40),
		"lone <":                   `<xml>` + enc + `<</xml>`,
		"]]> in text":              `<xml><Content>]]></Content>` + enc + `</xml>`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := wxcrypt.ParseEnvelope([]byte(body))
			wantErr(t, err, wxcrypt.ErrParseXML)
			c := mustNew(t, "token", testAESKey, "wxappid")
			_, _, err = c.Open([]byte(body), strings.Repeat("0", 40), "1", "2")
			wantErr(t, err, wxcrypt.ErrParseXML)
		})
	}
}

func TestParseEnvelopeTruncated(t *testing.T) {
	// Every proper prefix of a real push is malformed (the root is never closed).
	c := mustNew(t, v1Token, testAESKey, v1AppID)
	for n := range len(v1Body) {
		body := []byte(v1Body[:n])
		if _, err := wxcrypt.ParseEnvelope(body); !isParseErr(err) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
		if _, _, err := c.Open(body, v1MsgSig, v1Timestamp, v1Nonce); !isParseErr(err) {
			t.Fatalf("Open(prefix of %d bytes): %v", n, err)
		}
	}
}

func isParseErr(err error) bool { return wxcrypt.ErrorCode(err) == wxcrypt.CodeParseXML }

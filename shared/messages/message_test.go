package messages

import (
	"strings"
	"testing"
)

func TestParseKeepsEveryFieldUnderItsOwnName(t *testing.T) {
	m, err := Parse([]byte(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[ofan]]></FromUserName>
<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event>
<EventKey><![CDATA[k]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[r]]></ScanResult></ScanCodeInfo>
<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo></xml>`))
	if err != nil {
		t.Fatal(err)
	}
	if m.ToUserName != "gh_1" || m.FromUserName != "ofan" || m.CreateTime != 1700000000 || m.Event != "scancode_waitmsg" || m.EventKey != "k" || !m.IsEvent() {
		t.Fatalf("parsed %+v", m)
	}
	scan := m.Fields["ScanCodeInfo"].(map[string]any)
	if scan["ScanType"] != "qrcode" {
		t.Fatalf("nested %+v", scan)
	}
	items := m.Fields["SendPicsInfo"].(map[string]any)["PicList"].(map[string]any)["item"].([]any)
	if len(items) != 2 || items[1].(map[string]any)["PicMd5Sum"] != "b" {
		t.Fatalf("repeated %+v", items)
	}
}

func TestParseRefusesWhatIsNotAMessage(t *testing.T) {
	for name, in := range map[string]string{
		"doctype":       `<!DOCTYPE xml [<!ENTITY x "y">]><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType></xml>`,
		"entity":        `<xml><ToUserName>&x;</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType></xml>`,
		"truncated":     `<xml><ToUserName>a</ToUserName><FromUserName>b</From`,
		"no MsgType":    `<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName></xml>`,
		"event no name": `<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>event</MsgType></xml>`,
		"bad time":      `<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType><CreateTime>x</CreateTime></xml>`,
		"two roots":     `<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType></xml><xml/>`,
		"empty":         ``,
		"deep":          `<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType>` + strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20) + `</xml>`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestKeyFollowsTheAddendumsDeDuplicationRules(t *testing.T) {
	msg := func(from, id string) Message {
		return Message{MsgType: "text", FromUserName: from, MsgID: id, CreateTime: 1}
	}
	ev := func(from string, ct int64, event, key string) Message {
		return Message{MsgType: "event", FromUserName: from, CreateTime: ct, Event: event, EventKey: key, Fields: map[string]any{}}
	}
	same := [][2]string{
		{Key("wxa", msg("f1", "100")), Key("wxa", msg("f1", "100"))},
		{Key("wxa", ev("f1", 5, "CLICK", "k")), Key("wxa", ev("f1", 5, "CLICK", "k"))},
	}
	for _, p := range same {
		if p[0] != p[1] {
			t.Error("a repeat got another key")
		}
	}
	different := [][2]string{
		{Key("wxa", msg("f1", "100")), Key("wxb", msg("f1", "100"))},                     // another account
		{Key("wxa", msg("f1", "100")), Key("wxa", msg("f2", "100"))},                     // MsgIds collide across fans
		{Key("wxa", ev("f1", 5, "CLICK", "k")), Key("wxa", ev("f1", 5, "LOCATION", ""))}, // same second, another event
		{Key("wxa", ev("f1", 5, "CLICK", "k1")), Key("wxa", ev("f1", 5, "CLICK", "k2"))}, // another key
		{Key("wxa", ev("f1", 5, "CLICK", "k")), Key("wxa", ev("f1", 6, "CLICK", "k"))},
	}
	for i, p := range different {
		if p[0] == p[1] {
			t.Errorf("case %d: two pushes share a key", i)
		}
	}
}

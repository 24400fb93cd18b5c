package sandbox

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Plaintexts of message pushes (protocol reference 4.1, 5.4; addendum A.4),
// written the way WeChat writes them: strings in CDATA, numbers bare. Pass
// them to PushMessage.

// SystemOpenID is the FromUserName of system events such as the audit
// results (the openid in WeChat's own documentation example).
const SystemOpenID = "od1P50M-fNQI5Gcq-trm4a7apsU8"

// Audit-result events (reference 5.4) and the privacy-interface result.
const (
	EventAuditSuccess = "weapp_audit_success"
	EventAuditFail    = "weapp_audit_fail"
	EventAuditDelay   = "weapp_audit_delay"
	EventPrivacyApply = "wxa_privacy_apply"
)

// messageXML renders a message or event plaintext: the common header
// (ToUserName, FromUserName, CreateTime, MsgType) and then fields.
func messageXML(toUserName, fromUserName string, created time.Time, msgType string, fields ...xmlField) []byte {
	return xmlDoc(append([]xmlField{
		{"ToUserName", toUserName, false},
		{"FromUserName", fromUserName, false},
		{"CreateTime", unix(created), true},
		{"MsgType", msgType, false},
	}, fields...))
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// TextMessage is a fan's text message to an account: toUserName is the
// account's original id (gh_...), fromOpenID the fan.
func TextMessage(toUserName, fromOpenID, content string, msgID int64, created time.Time) []byte {
	return messageXML(toUserName, fromOpenID, created, "text",
		xmlField{"Content", content, false},
		xmlField{"MsgId", strconv.FormatInt(msgID, 10), true})
}

// EventMessage is an event a fan triggers (subscribe, unsubscribe, SCAN,
// CLICK, VIEW, user_enter_tempsession, ...). EventKey is written only when
// eventKey is not empty (a plain subscribe has none).
func EventMessage(toUserName, fromOpenID, event, eventKey string, created time.Time) []byte {
	fields := []xmlField{{"Event", event, false}}
	if eventKey != "" {
		fields = append(fields, xmlField{"EventKey", eventKey, false})
	}
	return messageXML(toUserName, fromOpenID, created, "event", fields...)
}

// locationEvent is the LOCATION event an official account gets when a fan
// reports their position.
func locationEvent(toUserName, fromOpenID string, created time.Time) []byte {
	return messageXML(toUserName, fromOpenID, created, "event",
		xmlField{"Event", "LOCATION", false},
		xmlField{"Latitude", "23.137466", true},
		xmlField{"Longitude", "113.352425", true},
		xmlField{"Precision", "119.385040", true})
}

// AuditEvent is a mini program's code-audit result, from SystemOpenID to
// toUserName (the mini program's gh_ id): weapp_audit_success carries
// SuccTime; weapp_audit_fail Reason, FailTime and ScreenShot (media ids
// separated by "|", bare text as in WeChat's example); weapp_audit_delay
// Reason and DelayTime. The times are created. Any other event gets the
// header and Reason (if not empty) only.
func AuditEvent(toUserName, event string, created time.Time, reason, screenshot string) []byte {
	fields := []xmlField{{"Event", event, false}}
	switch event {
	case EventAuditSuccess:
		fields = append(fields, xmlField{"SuccTime", unix(created), true})
	case EventAuditFail:
		fields = append(fields,
			xmlField{"Reason", reason, false},
			xmlField{"FailTime", unix(created), true},
			xmlField{"ScreenShot", screenshot, true})
	case EventAuditDelay:
		fields = append(fields,
			xmlField{"Reason", reason, false},
			xmlField{"DelayTime", unix(created), true})
	default:
		if reason != "" {
			fields = append(fields, xmlField{"Reason", reason, false})
		}
	}
	return messageXML(toUserName, SystemOpenID, created, "event", fields...)
}

// PrivacyApplyEvent is the wxa_privacy_apply event: the result of a mini
// program's application for a privacy interface (wx.choosePoi here). result
// "pass" (or "") gives status 1; "reject" status 2 with a stock reason; any
// other text status 2 with that text as the reason.
//
// The shape follows community reports (addendum A.4), not an official
// example: a nested <result_info> with api_name, apply_time, audit_id,
// audit_time, status and reason. The exact names, the status values and
// whether WeChat really wraps values in double quotes (its example shows
// "wx.choosePoi" quoted; the sandbox does not) are unverified.
func PrivacyApplyEvent(toUserName string, created time.Time, result string) []byte {
	status, reason := "1", ""
	switch result {
	case "", "pass":
	case "reject":
		status, reason = "2", "申请理由与小程序实际使用场景不符"
	default:
		status, reason = "2", result
	}
	var info bytes.Buffer
	writeFields(&info, []xmlField{
		{"api_name", "wx.choosePoi", false},
		{"apply_time", unix(created.Add(-time.Hour)), true},
		{"audit_id", strconv.FormatInt(4e8+mrand.Int64N(1e8), 10), true},
		{"audit_time", unix(created), true},
		{"status", status, true},
		{"reason", reason, false},
	})
	doc := messageXML(toUserName, SystemOpenID, created, "event", xmlField{"Event", EventPrivacyApply, false})
	nested := "<result_info>" + info.String() + "</result_info></xml>"
	return append(doc[:len(doc)-len("</xml>")], nested...)
}

// newOpenID makes up a fan's openid: 28 characters starting with "o", like
// WeChat's.
func newOpenID() string { return "o" + randomB64(21)[:27] }

// plainFields reads the direct children of a plaintext's <xml> root as
// name -> text (nested elements such as result_info are skipped). It is
// how the sandbox reads what it pushes and the passive replies it gets.
func plainFields(plain []byte) (map[string]string, error) {
	d := xml.NewDecoder(bytes.NewReader(plain))
	out := make(map[string]string)
	depth, name := 0, ""
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local != "xml":
				return nil, fmt.Errorf("root element is <%s>, not <xml>", t.Name.Local)
			case depth == 2:
				name = t.Name.Local
				text.Reset()
			}
		case xml.EndElement:
			if depth == 2 {
				out[name] = text.String()
			}
			depth--
		case xml.CharData:
			if depth == 2 {
				text.Write(t)
			}
		case xml.Directive:
			return nil, errors.New("DOCTYPE or other directive")
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty <xml>")
	}
	return out, nil
}

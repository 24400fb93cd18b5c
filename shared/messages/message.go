package messages

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Message is a decrypted push: every field under WeChat's own name (nested elements become objects, repeated
// ones arrays), and the fields the platform routes on.
type Message struct {
	Fields       map[string]any
	ToUserName   string // the account's original id, gh_…
	FromUserName string // the fan's openid (a system openid for audit events)
	CreateTime   int64
	MsgType      string
	MsgID        string // messages only
	Content      string // text messages
	Event        string // events only
	EventKey     string
}

// Limits on a decrypted message: WeChat's are a few KB with a handful of levels.
const (
	maxDepth    = 8
	maxElements = 512
)

var errNotMessage = errors.New("decrypted push is not a message")

// Parse reads a decrypted push. Directives (DOCTYPE, and with it entity definitions) are refused.
func Parse(plain []byte) (Message, error) {
	d := xml.NewDecoder(bytes.NewReader(plain))
	d.Strict = true
	elements := 0
	var parse func(depth int) (any, error)
	// parse reads an element's content after its start tag: text, or children as an object.
	parse = func(depth int) (any, error) {
		if depth > maxDepth {
			return nil, fmt.Errorf("%w: nested deeper than %d", errNotMessage, maxDepth)
		}
		var text strings.Builder
		var obj map[string]any
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errNotMessage, err)
			}
			switch t := tok.(type) {
			case xml.StartElement:
				if elements++; elements > maxElements {
					return nil, fmt.Errorf("%w: more than %d elements", errNotMessage, maxElements)
				}
				v, err := parse(depth + 1)
				if err != nil {
					return nil, err
				}
				if obj == nil {
					obj = map[string]any{}
				}
				name := t.Name.Local
				switch prev := obj[name].(type) {
				case nil:
					obj[name] = v
				case []any:
					obj[name] = append(prev, v)
				default:
					obj[name] = []any{prev, v}
				}
			case xml.CharData:
				text.Write(t)
			case xml.Directive:
				return nil, fmt.Errorf("%w: directives (DOCTYPE, ENTITY) are not allowed", errNotMessage)
			case xml.EndElement:
				if obj != nil {
					return obj, nil
				}
				return text.String(), nil
			}
		}
	}
	var root map[string]any
	for root == nil {
		tok, err := d.Token()
		if err == io.EOF {
			return Message{}, fmt.Errorf("%w: empty", errNotMessage)
		}
		if err != nil {
			return Message{}, fmt.Errorf("%w: %v", errNotMessage, err)
		}
		switch tok.(type) {
		case xml.Directive:
			return Message{}, fmt.Errorf("%w: directives (DOCTYPE, ENTITY) are not allowed", errNotMessage)
		case xml.StartElement:
			v, err := parse(1)
			if err != nil {
				return Message{}, err
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return Message{}, fmt.Errorf("%w: no fields", errNotMessage)
			}
			root = obj
		}
	}
	// Nothing but white space may follow the root element.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Message{}, fmt.Errorf("%w: %v", errNotMessage, err)
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) > 0 {
			return Message{}, fmt.Errorf("%w: content after the root element", errNotMessage)
		}
	}
	m := Message{Fields: root}
	str := func(name string) string { s, _ := root[name].(string); return strings.TrimSpace(s) }
	m.ToUserName, m.FromUserName, m.MsgType = str("ToUserName"), str("FromUserName"), str("MsgType")
	m.MsgID, m.Event, m.EventKey = str("MsgId"), str("Event"), str("EventKey")
	m.Content, _ = root["Content"].(string) // as sent: a fan's text is not trimmed
	if ct := str("CreateTime"); ct != "" {
		n, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return Message{}, fmt.Errorf("%w: CreateTime %q", errNotMessage, ct)
		}
		m.CreateTime = n
	}
	if m.ToUserName == "" || m.FromUserName == "" || m.MsgType == "" {
		return Message{}, fmt.Errorf("%w: ToUserName, FromUserName and MsgType are required", errNotMessage)
	}
	if m.MsgType == "event" && m.Event == "" {
		return Message{}, fmt.Errorf("%w: an event without Event", errNotMessage)
	}
	return m, nil
}

// IsEvent reports whether m is an event rather than a fan's message.
func (m Message) IsEvent() bool { return m.MsgType == "event" }

package sandbox

import (
	"encoding/json"
	"slices"
	"time"
)

// Customer-service messages (客服消息, protocol reference 8; addendum D):
// POST /cgi-bin/message/custom/send with an authorizer access token. A fan
// can only be messaged inside the window their last trigger opened.

// maxCustomLog bounds the customer-service messages kept per account.
const maxCustomLog = 1000

// CustomMessage is one customer-service message WeChat accepted.
type CustomMessage struct {
	AppID   string // the sending account
	ToUser  string // the fan's openid
	MsgType string
	Text    string          // text.content for text messages, "" otherwise
	Body    json.RawMessage // the request body as sent
	Time    time.Time       // sandbox clock
}

// CustomMessages returns the customer-service messages appid has sent,
// oldest first (at most the last 1000).
func (s *Sandbox) CustomMessages(appid string) []CustomMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.custom[appid])
	for i := range out {
		out[i].Body = slices.Clone(out[i].Body)
	}
	return out
}

// fan is what WeChat knows of one user of one account: that the openid
// exists for it, and the customer-service window their last trigger opened.
type fan struct {
	until time.Time // the window closes at until; zero: no window
	left  int       // messages the window still allows
}

// Windows (addendum D.2): a message from the fan allows 5 messages in 48 h;
// following, scanning a QR code or clicking certain menus allows 3 in a
// minute; a mini program's user entering the 客服 session 2 in a minute.
const (
	messageWindow, messageWindowCount = 48 * time.Hour, 5
	eventWindow, eventWindowCount     = time.Minute, 3
	sessionWindow, sessionWindowCount = time.Minute, 2
)

// officialWindowEvents are the official-account events that open a window.
var officialWindowEvents = map[string]bool{
	"subscribe": true, "SCAN": true, "CLICK": true, "scancode_push": true, "scancode_waitmsg": true,
}

// fanTriggerLocked records that openid reached acct with a message or event
// and opens (or closes) their window. Each trigger replaces the window and
// its allowance: "可发送客服消息条数不累加". Caller holds s.mu.
func (s *Sandbox) fanTriggerLocked(acct Account, openid, msgType, event string, now time.Time) {
	if openid == SystemOpenID {
		return // system events come from no fan
	}
	fans := s.fans[acct.AppID]
	if fans == nil {
		fans = make(map[string]*fan)
		s.fans[acct.AppID] = fans
	}
	f := fans[openid]
	if f == nil {
		f = &fan{}
		fans[openid] = f
	}
	switch {
	case msgType != "event":
		f.until, f.left = now.Add(messageWindow), messageWindowCount
	case acct.IsMiniProgram() && event == "user_enter_tempsession":
		f.until, f.left = now.Add(sessionWindow), sessionWindowCount
	case !acct.IsMiniProgram() && officialWindowEvents[event]:
		f.until, f.left = now.Add(eventWindow), eventWindowCount
	case event == "unsubscribe": // 45015 also means "the fan unfollowed"
		f.until, f.left = time.Time{}, 0
	}
}

// customFuncs are the permission sets that grant the send API (addendum
// D.1): 消息管理 1, 客服 6 and 19, and 59, 100, 101.
var customFuncs = []int{1, 6, 19, 59, 100, 101}

// customTypes lists, per account kind, the message types it may send and
// the string fields each type's object requires (addendum D.1). news and
// msgmenu have their lists checked by checkCustomObject.
var customTypes = map[string]map[string][]string{
	KindOfficialAccount: {
		"text":            {"content"},
		"image":           {"media_id"},
		"voice":           {"media_id"},
		"video":           {"media_id"},
		"music":           {"musicurl", "hqmusicurl", "thumb_media_id"},
		"news":            nil,
		"mpnews":          {"media_id"},
		"mpnewsarticle":   {"article_id"},
		"msgmenu":         nil,
		"wxcard":          {"card_id"},
		"miniprogrampage": {"title", "appid", "pagepath", "thumb_media_id"},
	},
	KindMiniProgram: {
		"text":            {"content"},
		"image":           {"media_id"},
		"link":            {"title", "description", "url", "thumb_url"},
		"miniprogrampage": {"title", "pagepath", "thumb_media_id"},
	},
}

// POST /cgi-bin/message/custom/send?access_token=AUTHORIZER_ACCESS_TOKEN.
// Checks in this order: JSON (47001), permission (48001), touser (40003),
// msgtype for the account's kind (45162) and its object, the window
// (45015) and its allowance (45047).
func (s *Sandbox) apiCustomSend(c *apiCall) (any, *apiError) {
	var req struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var objects map[string]json.RawMessage
	if e := c.decode(&objects); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authorizers[c.token.owner]
	acct := a.acct
	if !slices.ContainsFunc(customFuncs, func(id int) bool { return slices.Contains(a.funcInfo, id) }) {
		return nil, errCodef(CodeAPIUnauthorized, "hint: the customer-service permission set is not authorized")
	}
	f := s.fans[acct.AppID][req.ToUser]
	if f == nil {
		return nil, errCodef(CodeInvalidOpenID, "hint: touser is not a user of this account")
	}
	required, ok := customTypes[acct.Kind][req.MsgType]
	if !ok {
		return nil, errCode(CodeInvalidMessageType)
	}
	text, e := checkCustomObject(acct, req.MsgType, objects[req.MsgType], required)
	if e != nil {
		return nil, e
	}
	switch {
	case !c.now.Before(f.until):
		return nil, errCode(CodeOutsideWindow)
	case f.left <= 0:
		return nil, errCode(CodeWindowQuota)
	}
	f.left--
	msgs := append(s.custom[acct.AppID], CustomMessage{
		AppID: acct.AppID, ToUser: req.ToUser, MsgType: req.MsgType, Text: text,
		Body: slices.Clone(c.body), Time: c.now,
	})
	if over := len(msgs) - maxCustomLog; over > 0 {
		msgs = append(msgs[:0:0], msgs[over:]...)
	}
	s.custom[acct.AppID] = msgs
	s.log.Info("customer-service message sent", "authorizer_appid", acct.AppID, "msg_type", req.MsgType, "window_left", f.left)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// checkCustomObject checks the object named by msgtype: it must be there
// with every required field a non-empty string; news carries exactly one
// article, msgmenu a list; a mini program's card opens itself (no other
// appid). It returns text.content for text messages.
func checkCustomObject(acct Account, msgType string, raw json.RawMessage, required []string) (string, *apiError) {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil || obj == nil {
		return "", errCodef(CodeDataFormat, "hint: %s object missing or not an object", msgType)
	}
	values := make(map[string]string)
	for _, name := range required {
		var v string
		if r, ok := obj[name]; ok && json.Unmarshal(r, &v) != nil {
			return "", errCodef(CodeDataFormat, "hint: field %s.%s has the wrong type", msgType, name)
		}
		switch {
		case v == "" && msgType == "text":
			return "", errCode(CodeEmptyContent)
		case v == "":
			return "", errCodef(CodeDataFormat, "hint: %s.%s missing", msgType, name)
		}
		values[name] = v
	}
	switch msgType {
	case "news":
		var articles []map[string]json.RawMessage
		if json.Unmarshal(obj["articles"], &articles) != nil {
			return "", errCodef(CodeDataFormat, "hint: news.articles missing or not a list of objects")
		}
		switch {
		case len(articles) == 0:
			return "", errCode(CodeEmptyNews)
		case len(articles) > 1: // one article since 2018-10-12
			return "", errCode(CodeTooManyArticles)
		}
	case "msgmenu":
		var list []struct {
			ID      string `json:"id"`
			Content string `json:"content"`
		}
		if json.Unmarshal(obj["list"], &list) != nil || len(list) == 0 {
			return "", errCodef(CodeDataFormat, "hint: msgmenu.list missing or empty")
		}
	case "miniprogrampage":
		var appid string
		_ = json.Unmarshal(obj["appid"], &appid) // checked as required for official accounts
		if acct.IsMiniProgram() && appid != "" && appid != acct.AppID {
			return "", errCodef(CodeInvalidAppID, "hint: a mini program's card opens the mini program itself (no appid)")
		}
	}
	return values["content"], nil
}

package wxapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// Customer-service messages (客服消息): POST /cgi-bin/message/custom/send with an authorizer access token, the
// same endpoint for official accounts and mini programs, which accept different message types (addendum D.1).

// Customer-service errors, matched with errors.Is on the *Error WeChat returned.
var (
	// ErrOutsideWindow (45015): the fan's window is closed (no message from them in 48 h, or they unfollowed).
	ErrOutsideWindow = &Error{Code: 45015}
	// ErrWindowQuota (45047): the messages the current window allows are used up.
	ErrWindowQuota = &Error{Code: 45047}
	// ErrMessageType (45162): this kind of account cannot send this type of message.
	ErrMessageType = &Error{Code: 45162}
)

// ErrInvalidMessage: a message Validate refuses; it is never sent, and sending it again cannot help.
var ErrInvalidMessage = errors.New("invalid customer-service message")

// Is makes errors.Is(err, ErrOutsideWindow) and the like match any API's error with that errcode.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.API == "" && t.Code != 0 && t.Code == e.Code
}

// Account kinds, as customer-service messages tell them apart.
const (
	KindOfficialAccount = "officialaccount"
	KindMiniProgram     = "miniprogram"
)

// CustomMessage is one customer-service message: ToUser and exactly one of the typed bodies, which sets the
// msgtype. Build it with the constructors (Text, Image, ...) and check it with Validate.
type CustomMessage struct {
	ToUser          string               `json:"touser"`
	MsgType         string               `json:"msgtype"`
	Text            *TextBody            `json:"text,omitempty"`
	Image           *MediaBody           `json:"image,omitempty"`
	Voice           *MediaBody           `json:"voice,omitempty"`
	Video           *VideoBody           `json:"video,omitempty"`
	Music           *MusicBody           `json:"music,omitempty"`
	News            *NewsBody            `json:"news,omitempty"`
	MPNews          *MediaBody           `json:"mpnews,omitempty"`
	MPNewsArticle   *ArticleIDBody       `json:"mpnewsarticle,omitempty"`
	MsgMenu         *MsgMenuBody         `json:"msgmenu,omitempty"`
	WXCard          *WXCardBody          `json:"wxcard,omitempty"`
	Link            *LinkBody            `json:"link,omitempty"`
	MiniProgramPage *MiniProgramPageBody `json:"miniprogrampage,omitempty"`
	CustomService   *CustomServiceBody   `json:"customservice,omitempty"`
}

// Message bodies, under WeChat's field names.
type (
	TextBody struct {
		Content string `json:"content"`
	}
	MediaBody struct {
		MediaID string `json:"media_id"`
	}
	VideoBody struct {
		MediaID      string `json:"media_id"`
		ThumbMediaID string `json:"thumb_media_id,omitempty"`
		Title        string `json:"title,omitempty"`
		Description  string `json:"description,omitempty"`
	}
	MusicBody struct {
		Title        string `json:"title,omitempty"`
		Description  string `json:"description,omitempty"`
		MusicURL     string `json:"musicurl"`
		HQMusicURL   string `json:"hqmusicurl"`
		ThumbMediaID string `json:"thumb_media_id"`
	}
	NewsBody struct {
		Articles []Article `json:"articles"`
	}
	Article struct {
		Title       string `json:"title"`
		Description string `json:"description,omitempty"`
		URL         string `json:"url"`
		PicURL      string `json:"picurl,omitempty"`
	}
	ArticleIDBody struct {
		ArticleID string `json:"article_id"`
	}
	MsgMenuBody struct {
		HeadContent string         `json:"head_content,omitempty"`
		List        []MsgMenuEntry `json:"list"`
		TailContent string         `json:"tail_content,omitempty"`
	}
	MsgMenuEntry struct {
		ID      string `json:"id"`
		Content string `json:"content"`
	}
	WXCardBody struct {
		CardID string `json:"card_id"`
	}
	LinkBody struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		URL         string `json:"url"`
		ThumbURL    string `json:"thumb_url"`
	}
	MiniProgramPageBody struct {
		Title        string `json:"title"`
		AppID        string `json:"appid,omitempty"` // official accounts: a mini program linked to the account; mini programs: none
		PagePath     string `json:"pagepath"`
		ThumbMediaID string `json:"thumb_media_id"`
	}
	CustomServiceBody struct {
		KFAccount string `json:"kf_account"`
	}
)

// Text is a text message to a fan.
func Text(toUser, content string) CustomMessage {
	return CustomMessage{ToUser: toUser, MsgType: "text", Text: &TextBody{Content: content}}
}

// allowed lists, per account kind, the message types it can send (addendum D.1).
var allowed = map[string]map[string]bool{
	KindOfficialAccount: {"text": true, "image": true, "voice": true, "video": true, "music": true, "news": true,
		"mpnews": true, "mpnewsarticle": true, "msgmenu": true, "wxcard": true, "miniprogrampage": true},
	KindMiniProgram: {"text": true, "image": true, "link": true, "miniprogrampage": true},
}

// body returns the typed body msgtype names, and how many bodies are set.
func (m CustomMessage) body() (any, int) {
	bodies := map[string]any{}
	add := func(name string, set bool, v any) {
		if set {
			bodies[name] = v
		}
	}
	add("text", m.Text != nil, m.Text)
	add("image", m.Image != nil, m.Image)
	add("voice", m.Voice != nil, m.Voice)
	add("video", m.Video != nil, m.Video)
	add("music", m.Music != nil, m.Music)
	add("news", m.News != nil, m.News)
	add("mpnews", m.MPNews != nil, m.MPNews)
	add("mpnewsarticle", m.MPNewsArticle != nil, m.MPNewsArticle)
	add("msgmenu", m.MsgMenu != nil, m.MsgMenu)
	add("wxcard", m.WXCard != nil, m.WXCard)
	add("link", m.Link != nil, m.Link)
	add("miniprogrampage", m.MiniProgramPage != nil, m.MiniProgramPage)
	return bodies[m.MsgType], len(bodies)
}

// Validate checks m before it is sent by an account of kind: a recipient, exactly the body its msgtype names,
// a type this kind of account can send (otherwise the error is ErrMessageType, as WeChat would answer), one
// article for news, and the appid rule of miniprogrampage.
func (m CustomMessage) Validate(kind string) error {
	types, ok := allowed[kind]
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown account kind %q", ErrInvalidMessage, kind)
	case m.ToUser == "":
		return fmt.Errorf("%w: no recipient (touser)", ErrInvalidMessage)
	}
	body, n := m.body()
	if body == nil || n != 1 {
		return fmt.Errorf("%w: msgtype %q needs exactly its own body", ErrInvalidMessage, m.MsgType)
	}
	if !types[m.MsgType] {
		return fmt.Errorf("%w: a %s cannot send %s: %w", ErrInvalidMessage, kind, m.MsgType, &Error{API: "custom_send", Code: 45162, Msg: "invalid message type (checked before sending)"})
	}
	if m.News != nil && len(m.News.Articles) != 1 {
		return fmt.Errorf("%w: news carries exactly one article, not %d", ErrInvalidMessage, len(m.News.Articles))
	}
	if m.MiniProgramPage != nil && (kind == KindMiniProgram) != (m.MiniProgramPage.AppID == "") {
		return fmt.Errorf("%w: miniprogrampage has an appid from official accounts only (the linked mini program)", ErrInvalidMessage)
	}
	if m.Text != nil && m.Text.Content == "" {
		return fmt.Errorf("%w: empty text", ErrInvalidMessage)
	}
	return nil
}

// SendCustomMessage sends m with an authorizer access token of an account of kind. It is sent once, without
// retries: a retry after a timeout WeChat did act on would message the fan twice; the caller decides (the
// platform retries through its job queue). 45015, 45047 and 45162 come back as errors matching ErrOutsideWindow,
// ErrWindowQuota and ErrMessageType.
func (c *Client) SendCustomMessage(ctx context.Context, authorizerToken, kind string, m CustomMessage) error {
	if err := m.Validate(kind); err != nil {
		return err
	}
	once := *c
	once.MaxAttempts = 1
	return once.Call(ctx, "custom_send", "POST", "/cgi-bin/message/custom/send",
		url.Values{"access_token": {authorizerToken}}, m, nil)
}

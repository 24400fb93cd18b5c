package messages

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxtpp/platform/shared/wxapi"
)

// passiveReply is the plaintext of a passive reply from the account to the fan, from a message in the
// customer-service shapes (text, image, voice, video, music, news) a merchant's webhook answers with.
func passiveReply(fan, account string, now time.Time, m wxapi.CustomMessage) ([]byte, error) {
	var b strings.Builder
	b.WriteString("<xml>")
	el(&b, "ToUserName", fan)
	el(&b, "FromUserName", account)
	b.WriteString("<CreateTime>" + strconv.FormatInt(now.Unix(), 10) + "</CreateTime>")
	el(&b, "MsgType", m.MsgType)
	switch {
	case m.MsgType == "text" && m.Text != nil:
		el(&b, "Content", m.Text.Content)
	case m.MsgType == "image" && m.Image != nil:
		nest(&b, "Image", "MediaId", m.Image.MediaID)
	case m.MsgType == "voice" && m.Voice != nil:
		nest(&b, "Voice", "MediaId", m.Voice.MediaID)
	case m.MsgType == "video" && m.Video != nil:
		nest(&b, "Video", "MediaId", m.Video.MediaID, "Title", m.Video.Title, "Description", m.Video.Description)
	case m.MsgType == "music" && m.Music != nil:
		nest(&b, "Music", "Title", m.Music.Title, "Description", m.Music.Description, "MusicUrl", m.Music.MusicURL,
			"HQMusicUrl", m.Music.HQMusicURL, "ThumbMediaId", m.Music.ThumbMediaID)
	case m.MsgType == "news" && m.News != nil && len(m.News.Articles) == 1:
		a := m.News.Articles[0]
		b.WriteString("<ArticleCount>1</ArticleCount><Articles>")
		nest(&b, "item", "Title", a.Title, "Description", a.Description, "PicUrl", a.PicURL, "Url", a.URL)
		b.WriteString("</Articles>")
	default:
		return nil, errors.New("passive reply: unsupported message " + m.MsgType)
	}
	b.WriteString("</xml>")
	out := b.String()
	if !xmlText(out) {
		return nil, errors.New("passive reply: characters XML cannot carry")
	}
	return []byte(out), nil
}

// textReply is a passive text reply.
func textReply(fan, account string, now time.Time, content string) ([]byte, error) {
	return passiveReply(fan, account, now, wxapi.CustomMessage{MsgType: "text", Text: &wxapi.TextBody{Content: content}})
}

func el(b *strings.Builder, name, value string) {
	b.WriteString("<" + name + "><![CDATA[")
	b.WriteString(strings.ReplaceAll(value, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]></" + name + ">")
}

// nest writes <outer> with name/value children.
func nest(b *strings.Builder, outer string, kv ...string) {
	b.WriteString("<" + outer + ">")
	for i := 0; i+1 < len(kv); i += 2 {
		el(b, kv[i], kv[i+1])
	}
	b.WriteString("</" + outer + ">")
}

// xmlText reports whether s is valid UTF-8 made of characters XML 1.0 allows.
func xmlText(s string) bool {
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return false
		case r == '\t', r == '\n', r == '\r', r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

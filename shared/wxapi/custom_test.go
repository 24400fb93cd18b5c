package wxapi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/wxtpp/platform/shared/wxapi"
)

func TestCustomMessageTypesPerAccountKind(t *testing.T) {
	text := wxapi.Text("ofan", "hi")
	image := wxapi.CustomMessage{ToUser: "ofan", MsgType: "image", Image: &wxapi.MediaBody{MediaID: "m"}}
	link := wxapi.CustomMessage{ToUser: "ofan", MsgType: "link", Link: &wxapi.LinkBody{Title: "t", Description: "d", URL: "u", ThumbURL: "x"}}
	news := wxapi.CustomMessage{ToUser: "ofan", MsgType: "news", News: &wxapi.NewsBody{Articles: []wxapi.Article{{Title: "a", URL: "u"}}}}
	voice := wxapi.CustomMessage{ToUser: "ofan", MsgType: "voice", Voice: &wxapi.MediaBody{MediaID: "m"}}
	pageOA := wxapi.CustomMessage{ToUser: "ofan", MsgType: "miniprogrampage", MiniProgramPage: &wxapi.MiniProgramPageBody{Title: "t", AppID: "wxlinked", PagePath: "p", ThumbMediaID: "m"}}
	pageMP := wxapi.CustomMessage{ToUser: "ofan", MsgType: "miniprogrampage", MiniProgramPage: &wxapi.MiniProgramPageBody{Title: "t", PagePath: "p", ThumbMediaID: "m"}}
	for _, tc := range []struct {
		m        wxapi.CustomMessage
		kind     string
		ok       bool
		typeFail bool // refused as WeChat's 45162 would
	}{
		{text, wxapi.KindOfficialAccount, true, false}, {text, wxapi.KindMiniProgram, true, false},
		{image, wxapi.KindMiniProgram, true, false}, {link, wxapi.KindMiniProgram, true, false},
		{link, wxapi.KindOfficialAccount, false, true}, {news, wxapi.KindMiniProgram, false, true},
		{voice, wxapi.KindMiniProgram, false, true}, {news, wxapi.KindOfficialAccount, true, false},
		{pageOA, wxapi.KindOfficialAccount, true, false}, {pageMP, wxapi.KindMiniProgram, true, false},
		{pageOA, wxapi.KindMiniProgram, false, false}, {pageMP, wxapi.KindOfficialAccount, false, false},
	} {
		err := tc.m.Validate(tc.kind)
		if (err == nil) != tc.ok || errors.Is(err, wxapi.ErrMessageType) != tc.typeFail {
			t.Errorf("%s from %s: %v", tc.m.MsgType, tc.kind, err)
		}
	}
	two := news
	two.News = &wxapi.NewsBody{Articles: []wxapi.Article{{Title: "a", URL: "u"}, {Title: "b", URL: "v"}}}
	both := text
	both.Image = &wxapi.MediaBody{MediaID: "m"}
	for name, m := range map[string]wxapi.CustomMessage{"two articles": two, "two bodies": both, "no recipient": wxapi.Text("", "x"), "empty text": wxapi.Text("o", "")} {
		if err := m.Validate(wxapi.KindOfficialAccount); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestCustomServiceErrorsAreTyped(t *testing.T) {
	for code, target := range map[int]error{45015: wxapi.ErrOutsideWindow, 45047: wxapi.ErrWindowQuota, 45162: wxapi.ErrMessageType} {
		err := fmt.Errorf("send: %w", &wxapi.Error{API: "custom_send", Code: code, Msg: "x"})
		if !errors.Is(err, target) {
			t.Errorf("errcode %d does not match its error", code)
		}
		if errors.Is(&wxapi.Error{API: "custom_send", Code: 40001}, target) {
			t.Errorf("40001 matches the error of %d", code)
		}
	}
}

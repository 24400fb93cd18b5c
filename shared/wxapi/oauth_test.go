package wxapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wxtpp/platform/shared/wxapi"
)

// A web-authorization code is single-use: a busy answer is not retried with the same code (WeChat may have
// spent it), and the request carries the component's parameters.
func TestExchangeFanCodeIsSentOnce(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`))
	c, _ := newClient(f.srv.URL)
	c.MaxAttempts = 3
	_, err := c.ExchangeFanCode(context.Background(), "wxcomponent", "ctok", "wxaccount", "the-code")
	if wxapi.Code(err) != -1 || f.count() != 1 {
		t.Fatalf("err %v after %d requests; want -1 after one", err, f.count())
	}
	q := f.requests()[0].Query
	if f.requests()[0].Path != "/sns/oauth2/component/access_token" || q.Get("appid") != "wxaccount" || q.Get("code") != "the-code" ||
		q.Get("grant_type") != "authorization_code" || q.Get("component_appid") != "wxcomponent" || q.Get("component_access_token") != "ctok" {
		t.Errorf("request %s?%s", f.requests()[0].Path, f.requests()[0].RawQuery)
	}
}

func TestFanProfileAndFollowerDecode(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sns/userinfo":
			reply(w, http.StatusOK, `{"openid":"o1","nickname":"小明","sex":0,"headimgurl":"https://x/1.png","privilege":[],"unionid":"u1"}`)
		case "/cgi-bin/user/info":
			reply(w, http.StatusOK, `{"subscribe":0,"openid":"o1","tagid_list":[]}`)
		}
	})
	c, _ := newClient(f.srv.URL)
	p, err := c.FanProfile(context.Background(), "fantok", "o1")
	if err != nil || p.NickName != "小明" || p.HeadImgURL != "https://x/1.png" || p.UnionID != "u1" {
		t.Fatalf("profile %+v, %v", p, err)
	}
	fl, err := c.Follower(context.Background(), "atok", "o1")
	if err != nil || fl.Subscribe != 0 || fl.OpenID != "o1" {
		t.Fatalf("follower %+v, %v", fl, err)
	}
	if q := f.requests()[1].Query; q.Get("access_token") != "atok" || q.Get("openid") != "o1" {
		t.Errorf("user/info query %s", f.requests()[1].RawQuery)
	}
}

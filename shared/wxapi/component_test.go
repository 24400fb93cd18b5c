package wxapi_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/wxapi"
)

// Answers copied from the protocol reference (docs/WeChat examples, sections 3.1-3.6).
const (
	answerComponentToken = `{"component_access_token":"61W3mEpU66027wgNZ_MhGHNQDHnFATkDa9-2llqrMBjUwxRSNPbVsMmyD-yq8wZETSoE5NQgecigDrSHkPtIYA","expires_in":7200}`
	answerPreAuthCode    = `{"pre_auth_code":"Cx_Dk6qiBE0Dmx4EmlT3oRfArPvwSQ-oa3NL_fwHM7VI08r52wazoZX2Rhpz1dEw","expires_in":600}`
	answerQueryAuth      = `{
  "authorization_info": {
    "authorizer_appid": "wxf8b4f85f3a794e77",
    "authorizer_access_token": "QXjUqNqfYVH0yBE1iI_7vuN_9gQbpjfK7hYwJ3P7xOa88a89-Aga5x1NMYJyB8G2yKt1KCl0nPC3W9GJzw0Zzq_dBxc8pxIGUNi_bFes0qM",
    "expires_in": 7200,
    "authorizer_refresh_token": "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY",
    "func_info": [
      {"funcscope_category": {"id": 1}},
      {"funcscope_category": {"id": 2}},
      {"funcscope_category": {"id": 3}}
    ]
  }
}`
	answerAuthorizerToken = `{"authorizer_access_token":"some-access-token","expires_in":7200,"authorizer_refresh_token":"refresh_token_value"}`
	// Old-style answer (older doc / wechatpy fixture): `appid` instead of `authorizer_appid`, qrcode_url outside.
	answerAuthorizerInfoOld = `{
  "authorizer_info": {
    "nick_name": "微信SDK Demo Special",
    "head_img": "http://wx.qlogo.cn/mmopen/GPy...",
    "service_type_info": {"id": 2},
    "verify_type_info": {"id": 0},
    "user_name": "gh_eb5e3a772040",
    "alias": "paytest01"
  },
  "qrcode_url": "URL",
  "authorization_info": {
    "appid": "wxf8b4f85f3a794e77",
    "func_info": [{"funcscope_category": {"id": 1}}, {"funcscope_category": {"id": 2}}, {"funcscope_category": {"id": 3}}]
  }
}`
	// A mini-program answer assembled from the field list of section 3.6 (the reference has no verbatim
	// mini-program example), including fields the client ignores, so unknown fields must not break decoding.
	answerAuthorizerInfoMini = `{
  "authorizer_info": {
    "nick_name": "小程序示例",
    "head_img": "http://wx.qlogo.cn/mmopen/abc/0",
    "service_type_info": {"id": 0},
    "verify_type_info": {"id": -1},
    "user_name": "gh_0123456789ab",
    "alias": "",
    "qrcode_url": "http://mmbiz.qpic.cn/mmbiz_jpg/xyz/0",
    "business_info": {"open_pay": 0, "open_shake": 0, "open_scan": 0, "open_card": 0, "open_store": 0},
    "idc": 1,
    "principal_name": "深圳市示例科技有限公司",
    "signature": "小程序介绍",
    "register_type": 0,
    "account_status": 1,
    "basic_config": {"is_phone_configured": true, "is_email_configured": true},
    "MiniProgramInfo": {
      "network": {
        "RequestDomain": ["https://www.qq.com", "https://api.example.com"],
        "WsRequestDomain": ["wss://www.qq.com"],
        "UploadDomain": ["https://www.qq.com"],
        "DownloadDomain": ["https://www.qq.com"],
        "UDPDomain": [],
        "BizDomain": [],
        "TCPDomain": [],
        "PrefetchDNSDomain": []
      },
      "categories": [{"first": "工具", "second": "天气"}, {"first": "资讯", "second": "文娱"}],
      "visit_status": 0
    }
  },
  "authorization_info": {
    "authorizer_appid": "wx1234567890abcdef",
    "authorizer_refresh_token": "refreshtoken@@@mini",
    "func_info": [
      {"funcscope_category": {"id": 17}},
      {"funcscope_category": {"id": 18}, "confirm_info": {"need_confirm": 0, "already_confirm": 0, "can_confirm": 0}},
      {"funcscope_category": {"id": 19}}
    ]
  }
}`
	answerOK = `{"errcode":0,"errmsg":"ok"}`
)

// A component token with characters that must be query-escaped.
const compToken = "ctok+/=&x y"

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		path      string
		withToken bool           // component_access_token expected in the query
		body      map[string]any // exact JSON body expected
		answer    string
		call      func(c *wxapi.Client) (any, error)
		want      any
	}{
		{
			name: "api_component_token", path: "/cgi-bin/component/api_component_token",
			body:   map[string]any{"component_appid": "wxcomp", "component_appsecret": "the-secret", "component_verify_ticket": "ticket@@@x"},
			answer: answerComponentToken,
			call: func(c *wxapi.Client) (any, error) {
				return c.ComponentToken(ctx, "wxcomp", "the-secret", "ticket@@@x")
			},
			want: wxapi.ComponentToken{AccessToken: "61W3mEpU66027wgNZ_MhGHNQDHnFATkDa9-2llqrMBjUwxRSNPbVsMmyD-yq8wZETSoE5NQgecigDrSHkPtIYA", ExpiresIn: 7200},
		},
		{
			name: "api_start_push_ticket", path: "/cgi-bin/component/api_start_push_ticket",
			body:   map[string]any{"component_appid": "wxcomp", "component_secret": "the-secret"},
			answer: answerOK,
			call: func(c *wxapi.Client) (any, error) {
				return nil, c.StartPushTicket(ctx, "wxcomp", "the-secret")
			},
			want: nil,
		},
		{
			name: "api_create_preauthcode", path: "/cgi-bin/component/api_create_preauthcode", withToken: true,
			body:   map[string]any{"component_appid": "wxcomp"},
			answer: answerPreAuthCode,
			call: func(c *wxapi.Client) (any, error) {
				return c.CreatePreAuthCode(ctx, compToken, "wxcomp")
			},
			want: wxapi.PreAuthCode{Code: "Cx_Dk6qiBE0Dmx4EmlT3oRfArPvwSQ-oa3NL_fwHM7VI08r52wazoZX2Rhpz1dEw", ExpiresIn: 600},
		},
		{
			name: "api_query_auth", path: "/cgi-bin/component/api_query_auth", withToken: true,
			body:   map[string]any{"component_appid": "wxcomp", "authorization_code": "authcode@@@1"},
			answer: answerQueryAuth,
			call: func(c *wxapi.Client) (any, error) {
				return c.QueryAuth(ctx, compToken, "wxcomp", "authcode@@@1")
			},
			want: wxapi.AuthorizationInfo{
				AuthorizerAppID: "wxf8b4f85f3a794e77",
				AccessToken:     "QXjUqNqfYVH0yBE1iI_7vuN_9gQbpjfK7hYwJ3P7xOa88a89-Aga5x1NMYJyB8G2yKt1KCl0nPC3W9GJzw0Zzq_dBxc8pxIGUNi_bFes0qM",
				ExpiresIn:       7200,
				RefreshToken:    "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY",
				FuncInfo:        funcInfo(1, 2, 3),
			},
		},
		{
			name: "api_authorizer_token", path: "/cgi-bin/component/api_authorizer_token", withToken: true,
			body:   map[string]any{"component_appid": "wxcomp", "authorizer_appid": "wxauth", "authorizer_refresh_token": "refresh_token_value"},
			answer: answerAuthorizerToken,
			call: func(c *wxapi.Client) (any, error) {
				return c.AuthorizerToken(ctx, compToken, "wxcomp", "wxauth", "refresh_token_value")
			},
			want: wxapi.AuthorizerToken{AccessToken: "some-access-token", ExpiresIn: 7200, RefreshToken: "refresh_token_value"},
		},
		{
			name: "api_get_authorizer_info old style", path: "/cgi-bin/component/api_get_authorizer_info", withToken: true,
			body:   map[string]any{"component_appid": "wxcomp", "authorizer_appid": "wxf8b4f85f3a794e77"},
			answer: answerAuthorizerInfoOld,
			call: func(c *wxapi.Client) (any, error) {
				return c.GetAuthorizerInfo(ctx, compToken, "wxcomp", "wxf8b4f85f3a794e77")
			},
			want: wxapi.AuthorizerDetails{
				Info: wxapi.AuthorizerInfo{
					NickName: "微信SDK Demo Special", HeadImg: "http://wx.qlogo.cn/mmopen/GPy...",
					ServiceTypeInfo: wxapi.IDName{ID: 2}, VerifyTypeInfo: wxapi.IDName{ID: 0},
					UserName: "gh_eb5e3a772040", Alias: "paytest01",
				},
				Authorization: wxapi.AuthorizationInfo{AppID: "wxf8b4f85f3a794e77", FuncInfo: funcInfo(1, 2, 3)},
			},
		},
		{
			name: "api_get_authorizer_info mini program", path: "/cgi-bin/component/api_get_authorizer_info", withToken: true,
			body:   map[string]any{"component_appid": "wxcomp", "authorizer_appid": "wx1234567890abcdef"},
			answer: answerAuthorizerInfoMini,
			call: func(c *wxapi.Client) (any, error) {
				return c.GetAuthorizerInfo(ctx, compToken, "wxcomp", "wx1234567890abcdef")
			},
			want: wxapi.AuthorizerDetails{
				Info: wxapi.AuthorizerInfo{
					NickName: "小程序示例", HeadImg: "http://wx.qlogo.cn/mmopen/abc/0",
					ServiceTypeInfo: wxapi.IDName{ID: 0}, VerifyTypeInfo: wxapi.IDName{ID: -1},
					UserName: "gh_0123456789ab", PrincipalName: "深圳市示例科技有限公司", Signature: "小程序介绍",
					QRCodeURL: "http://mmbiz.qpic.cn/mmbiz_jpg/xyz/0",
					MiniProgramInfo: &wxapi.MiniProgramInfo{
						Network: map[string]any{
							"RequestDomain":     []any{"https://www.qq.com", "https://api.example.com"},
							"WsRequestDomain":   []any{"wss://www.qq.com"},
							"UploadDomain":      []any{"https://www.qq.com"},
							"DownloadDomain":    []any{"https://www.qq.com"},
							"UDPDomain":         []any{},
							"BizDomain":         []any{},
							"TCPDomain":         []any{},
							"PrefetchDNSDomain": []any{},
						},
						Categories:  []wxapi.Category{{First: "工具", Second: "天气"}, {First: "资讯", Second: "文娱"}},
						VisitStatus: 0,
					},
				},
				Authorization: wxapi.AuthorizationInfo{AuthorizerAppID: "wx1234567890abcdef", RefreshToken: "refreshtoken@@@mini",
					FuncInfo: funcInfo(17, 18, 19)},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, tc.answer))
			c, _ := newClient(f.srv.URL + "/") // a trailing slash on the base must not double the path's
			got, err := tc.call(c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded\n got %#v\nwant %#v", got, tc.want)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != tc.path {
				t.Errorf("request %s %s, want POST %s", r.Method, r.Path, tc.path)
			}
			if r.ContentType != "application/json" {
				t.Errorf("Content-Type %q, want application/json", r.ContentType)
			}
			if !reflect.DeepEqual(r.Body, tc.body) {
				t.Errorf("body %v, want %v", r.Body, tc.body)
			}
			if tc.withToken {
				if got := r.Query["component_access_token"]; len(got) != 1 || got[0] != compToken || len(r.Query) != 1 {
					t.Errorf("query %q (decoded %v), want only component_access_token=%q", r.RawQuery, r.Query, compToken)
				}
			} else if r.RawQuery != "" {
				t.Errorf("query %q, want none (this API takes no token)", r.RawQuery)
			}
		})
	}
}

func funcInfo(ids ...int) []wxapi.FuncInfo {
	out := make([]wxapi.FuncInfo, len(ids))
	for i, id := range ids {
		out[i].Category.ID = id
	}
	return out
}

func TestAuthorizerDetailsHelpers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, answer, appid string
		mini                bool
		sets                []int
	}{
		{"old style", answerAuthorizerInfoOld, "wxf8b4f85f3a794e77", false, []int{1, 2, 3}},
		{"mini program", answerAuthorizerInfoMini, "wx1234567890abcdef", true, []int{17, 18, 19}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, tc.answer))
			c, _ := newClient(f.srv.URL)
			d, err := c.GetAuthorizerInfo(ctx, compToken, "wxcomp", tc.appid)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Authorization.Appid(); got != tc.appid {
				t.Errorf("Appid() = %q, want %q", got, tc.appid)
			}
			if got := d.Info.IsMiniProgram(); got != tc.mini {
				t.Errorf("IsMiniProgram() = %v, want %v", got, tc.mini)
			}
			if got := d.Authorization.PermissionSets(); !reflect.DeepEqual(got, tc.sets) {
				t.Errorf("PermissionSets() = %v, want %v", got, tc.sets)
			}
		})
	}
	if got := (wxapi.AuthorizationInfo{AuthorizerAppID: "new", AppID: "old"}).Appid(); got != "new" {
		t.Errorf("Appid() prefers %q, want authorizer_appid's value", got)
	}
	if got := (wxapi.AuthorizationInfo{}).PermissionSets(); got == nil || len(got) != 0 {
		t.Errorf("PermissionSets() of nothing = %#v, want an empty non-nil slice", got)
	}
}

// A success answer missing the one field a call exists for must be an error, not an empty token to store.
func TestAnswersMissingTheirField(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, answer, field string
		call                func(c *wxapi.Client) (any, error)
	}{
		{"component token", `{"expires_in":7200}`, "component_access_token", func(c *wxapi.Client) (any, error) {
			return c.ComponentToken(ctx, "wxcomp", "s", "t")
		}},
		{"pre-auth code", `{"errcode":0,"errmsg":"ok","expires_in":600}`, "pre_auth_code", func(c *wxapi.Client) (any, error) {
			return c.CreatePreAuthCode(ctx, compToken, "wxcomp")
		}},
		{"query auth", `{"authorization_info":{"authorizer_refresh_token":"r"}}`, "authorizer_appid", func(c *wxapi.Client) (any, error) {
			return c.QueryAuth(ctx, compToken, "wxcomp", "code")
		}},
		{"authorizer token", `{"expires_in":7200,"authorizer_refresh_token":"r"}`, "authorizer_access_token", func(c *wxapi.Client) (any, error) {
			return c.AuthorizerToken(ctx, compToken, "wxcomp", "wxauth", "r")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, tc.answer))
			c, _ := newClient(f.srv.URL)
			got, err := tc.call(c)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got (%#v, %v), want an error naming %s", got, err, tc.field)
			}
			if n := f.count(); n != 1 {
				t.Errorf("%d requests, want 1 (a malformed success is not retried)", n)
			}
		})
	}
}

// An answer without authorizer_refresh_token must not blank the stored one: callers persist what comes back.
func TestAuthorizerTokenKeepsRefreshTokenWhenAbsent(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"authorizer_access_token":"new-access","expires_in":7200}`))
	c, _ := newClient(f.srv.URL)
	got, err := c.AuthorizerToken(context.Background(), compToken, "wxcomp", "wxauth", "old-refresh")
	if err != nil {
		t.Fatal(err)
	}
	want := wxapi.AuthorizerToken{AccessToken: "new-access", ExpiresIn: 7200, RefreshToken: "old-refresh"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// A rotated refresh token in the answer wins over the one sent.
func TestAuthorizerTokenReturnsRotatedRefreshToken(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"authorizer_access_token":"a","expires_in":7200,"authorizer_refresh_token":"rotated"}`))
	c, _ := newClient(f.srv.URL)
	got, err := c.AuthorizerToken(context.Background(), compToken, "wxcomp", "wxauth", "old-refresh")
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken != "rotated" {
		t.Errorf("RefreshToken = %q, want the rotated one", got.RefreshToken)
	}
}

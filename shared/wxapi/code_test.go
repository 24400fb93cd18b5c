package wxapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/wxtpp/platform/shared/wxapi"
)

// An authorizer token with characters that must be query-escaped.
const authToken = "atok+/=&x y"

// codeCase is one code-management call: what the fake WeChat must receive, what it answers, what the call
// returns.
type codeCase struct {
	name       string
	method     string
	path       string
	token      string            // expected as access_token
	query      map[string]string // expected besides access_token
	body       string            // expected JSON body, compared as JSON; "" for none
	answer     string
	sideEffect bool // WeChat acts on it: made once
	call       func(c *wxapi.Client) (any, error)
	want       any
}

func codeCases() []codeCase {
	ctx := context.Background()
	return []codeCase{
		{
			name: "modify_domain add", method: "POST", path: "/wxa/modify_domain", token: authToken, sideEffect: true,
			body:   `{"action":"add","requestdomain":["https://api.example.com"],"wsrequestdomain":["wss://ws.example.com"]}`,
			answer: `{"errcode":0,"errmsg":"ok","requestdomain":["https://www.qq.com","https://api.example.com"],"wsrequestdomain":["wss://ws.example.com"],"uploaddomain":[],"downloaddomain":[],"udpdomain":[],"tcpdomain":[],"invalid_requestdomain":[]}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.ModifyDomain(ctx, authToken, wxapi.DomainRequest{Action: wxapi.DomainAdd, DomainList: wxapi.DomainList{
					RequestDomain: []string{"https://api.example.com"}, WsRequestDomain: []string{"wss://ws.example.com"}}})
			},
			want: wxapi.Domains{DomainList: wxapi.DomainList{
				RequestDomain: []string{"https://www.qq.com", "https://api.example.com"}, WsRequestDomain: []string{"wss://ws.example.com"},
				UploadDomain: []string{}, DownloadDomain: []string{}, UDPDomain: []string{}, TCPDomain: []string{}},
				InvalidRequestDomain: []string{}},
		},
		{
			name: "modify_domain set clears", method: "POST", path: "/wxa/modify_domain", token: authToken, sideEffect: true,
			body:   `{"action":"set","requestdomain":[]}`,
			answer: `{"errcode":0,"errmsg":"ok","requestdomain":[]}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.ModifyDomain(ctx, authToken, wxapi.DomainRequest{Action: wxapi.DomainSet, DomainList: wxapi.DomainList{RequestDomain: []string{}}})
			},
			want: wxapi.Domains{DomainList: wxapi.DomainList{RequestDomain: []string{}}},
		},
		{
			name: "modify_domain get", method: "POST", path: "/wxa/modify_domain", token: authToken,
			body:   `{"action":"get"}`,
			answer: `{"errcode":0,"errmsg":"ok","requestdomain":["https://www.qq.com"],"tcpdomain":["tcp.qq.com"]}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.ModifyDomain(ctx, authToken, wxapi.DomainRequest{Action: wxapi.DomainGet})
			},
			want: wxapi.Domains{DomainList: wxapi.DomainList{RequestDomain: []string{"https://www.qq.com"}, TCPDomain: []string{"tcp.qq.com"}}},
		},
		{
			name: "modify_domain_directly delete", method: "POST", path: "/wxa/modify_domain_directly", token: authToken, sideEffect: true,
			body:   `{"action":"delete","downloaddomain":["https://cdn.example.com"]}`,
			answer: `{"errcode":0,"errmsg":"ok"}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.ModifyDomainDirectly(ctx, authToken, wxapi.DomainRequest{Action: wxapi.DomainDelete, DomainList: wxapi.DomainList{DownloadDomain: []string{"https://cdn.example.com"}}})
			},
			want: wxapi.Domains{},
		},
		{
			name: "get_effective_domain", method: "POST", path: "/wxa/get_effective_domain", token: authToken,
			body:   `{}`,
			answer: `{"errcode":0,"errmsg":"ok","mp_domain":{"requestdomain":["https://mp.example.com"]},"third_domain":{"requestdomain":["https://third.example.com"]},"direct_domain":{},"effective_domain":{"requestdomain":["https://mp.example.com","https://third.example.com"]}}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GetEffectiveDomain(ctx, authToken) },
			want: wxapi.EffectiveDomains{
				MP:        wxapi.DomainList{RequestDomain: []string{"https://mp.example.com"}},
				Third:     wxapi.DomainList{RequestDomain: []string{"https://third.example.com"}},
				Effective: wxapi.DomainList{RequestDomain: []string{"https://mp.example.com", "https://third.example.com"}},
			},
		},
		{
			name: "setwebviewdomain set", method: "POST", path: "/wxa/setwebviewdomain", token: authToken, sideEffect: true,
			body:   `{"action":"set","webviewdomain":["https://www.qq.com","https://m.qq.com"]}`,
			answer: `{"errcode":0,"errmsg":"ok"}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.SetWebviewDomain(ctx, authToken, wxapi.DomainSet, []string{"https://www.qq.com", "https://m.qq.com"})
			},
			want: []string(nil),
		},
		{
			name: "setwebviewdomain get", method: "POST", path: "/wxa/setwebviewdomain", token: authToken,
			body:   `{"action":"get"}`,
			answer: `{"errcode":0,"errmsg":"ok","webviewdomain":["https://www.qq.com"]}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.SetWebviewDomain(ctx, authToken, wxapi.DomainGet, nil)
			},
			want: []string{"https://www.qq.com"},
		},
		{
			name: "setwebviewdomain_directly add", method: "POST", path: "/wxa/setwebviewdomain_directly", token: authToken, sideEffect: true,
			body:   `{"action":"add","webviewdomain":["https://h5.example.com"]}`,
			answer: `{"errcode":0,"errmsg":"ok"}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.SetWebviewDomainDirectly(ctx, authToken, wxapi.DomainAdd, []string{"https://h5.example.com"})
			},
			want: []string(nil),
		},
		{
			name: "bind_tester", method: "POST", path: "/wxa/bind_tester", token: authToken, sideEffect: true,
			body:   `{"wechatid":"testid"}`,
			answer: `{"errcode":0,"errmsg":"ok","userstr":"xxxxxxxxx"}`,
			call:   func(c *wxapi.Client) (any, error) { return c.BindTester(ctx, authToken, "testid") },
			want:   "xxxxxxxxx",
		},
		{
			name: "unbind_tester by userstr", method: "POST", path: "/wxa/unbind_tester", token: authToken, sideEffect: true,
			body:   `{"userstr":"xxxxxxxxx"}`,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.UnbindTester(ctx, authToken, "testid", "xxxxxxxxx") },
		},
		{
			name: "unbind_tester by wechatid", method: "POST", path: "/wxa/unbind_tester", token: authToken, sideEffect: true,
			body:   `{"wechatid":"testid"}`,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.UnbindTester(ctx, authToken, "testid", "") },
		},
		{
			name: "memberauth", method: "POST", path: "/wxa/memberauth", token: authToken,
			body:   `{"action":"get_experiencer"}`,
			answer: `{"errcode":0,"errmsg":"ok","members":[{"userstr":"xxxxxxxx"},{"userstr":"yyyyyyyy"}]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.Testers(ctx, authToken) },
			want:   []string{"xxxxxxxx", "yyyyyyyy"},
		},
		{
			name: "commit", method: "POST", path: "/wxa/commit", token: authToken, sideEffect: true,
			body:   `{"template_id":47,"ext_json":"{\"extAppid\":\"wx1234567890abcdef\",\"ext\":{\"shop\":\"小店\"}}","user_version":"V1.0","user_desc":"test"}`,
			answer: answerOK,
			call: func(c *wxapi.Client) (any, error) {
				return nil, c.Commit(ctx, authToken, wxapi.CommitRequest{TemplateID: 47,
					ExtJSON: `{"extAppid":"wx1234567890abcdef","ext":{"shop":"小店"}}`, UserVersion: "V1.0", UserDesc: "test"})
			},
		},
		{
			name: "get_page", method: "GET", path: "/wxa/get_page", token: authToken,
			answer: `{"errcode":0,"errmsg":"ok","page_list":["index","page/list","index","page/detail","page/list"]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GetPage(ctx, authToken) },
			want:   []string{"index", "page/list", "page/detail"},
		},
		{
			name: "get_category", method: "GET", path: "/wxa/get_category", token: authToken,
			answer: `{"errcode":0,"errmsg":"ok","category_list":[{"first_class":"工具","second_class":"备忘录","first_id":1,"second_id":2},{"first_class":"教育","second_class":"学历教育","third_class":"高等","first_id":3,"second_id":4,"third_id":5}]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GetCategory(ctx, authToken) },
			want: []wxapi.AuditCategory{
				{FirstClass: "工具", SecondClass: "备忘录", FirstID: 1, SecondID: 2},
				{FirstClass: "教育", SecondClass: "学历教育", ThirdClass: "高等", FirstID: 3, SecondID: 4, ThirdID: 5},
			},
		},
		{
			name: "get_code_privacy_info", method: "GET", path: "/wxa/security/get_code_privacy_info", token: authToken,
			answer: `{"errcode":0,"errmsg":"ok","without_auth_list":["wx.getLocation"],"without_conf_list":["wx.chooseAddress"]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GetCodePrivacyInfo(ctx, authToken) },
			want:   wxapi.CodePrivacyInfo{WithoutAuthList: []string{"wx.getLocation"}, WithoutConfList: []string{"wx.chooseAddress"}},
		},
		{
			name: "setprivacysetting", method: "POST", path: "/cgi-bin/component/setprivacysetting", token: authToken, sideEffect: true,
			body: `{"privacy_ver":2,"owner_setting":{"contact_email":"privacy@example.com","contact_phone":"15712345678","notice_method":"弹窗","store_expire_timestamp":"30天","store_region":1},` +
				`"setting_list":[{"privacy_key":"UserInfo","privacy_text":"登录"},{"privacy_key":"Location","privacy_text":"查找附近门店"}],` +
				`"sdk_privacy_info_list":[{"sdk_name":"maps","sdk_biz_name":"Example Maps","sdk_list":[{"privacy_key":"Location","privacy_text":"地图"}]}]}`,
			answer: answerOK,
			call: func(c *wxapi.Client) (any, error) {
				return nil, c.SetPrivacySetting(ctx, authToken, wxapi.PrivacySetting{
					PrivacyVer: wxapi.PrivacyDev,
					OwnerSetting: wxapi.PrivacyOwnerSetting{ContactEmail: "privacy@example.com", ContactPhone: "15712345678",
						NoticeMethod: "弹窗", StoreExpireTimestamp: "30天", StoreRegion: json.RawMessage(`1`)},
					SettingList:        []wxapi.PrivacySettingItem{{PrivacyKey: "UserInfo", PrivacyText: "登录"}, {PrivacyKey: "Location", PrivacyText: "查找附近门店"}},
					SDKPrivacyInfoList: json.RawMessage(`[{"sdk_name":"maps","sdk_biz_name":"Example Maps","sdk_list":[{"privacy_key":"Location","privacy_text":"地图"}]}]`),
				})
			},
		},
		{
			name: "getprivacysetting", method: "POST", path: "/cgi-bin/component/getprivacysetting", token: authToken,
			body: `{"privacy_ver":2}`,
			answer: `{"errcode":0,"errmsg":"ok","code_exist":1,"privacy_list":["UserInfo","Location"],` +
				`"setting_list":[{"privacy_key":"UserInfo","privacy_text":"登录","privacy_label":"用户信息（微信昵称、头像）"}],"update_time":1670000000,` +
				`"owner_setting":{"contact_phone":"15712345678","contact_email":"","contact_qq":"","contact_weixin":"","store_expire_timestamp":"","ext_file_media_id":"","notice_method":"弹窗"},` +
				`"privacy_desc":{"privacy_desc_list":[{"privacy_key":"UserInfo","privacy_desc":"用户信息（微信昵称、头像）"}]},"sdk_privacy_info_list":[]}`,
			call: func(c *wxapi.Client) (any, error) { return c.GetPrivacySetting(ctx, authToken, wxapi.PrivacyDev) },
			want: wxapi.PrivacySettingInfo{
				CodeExist: 1, PrivacyList: []string{"UserInfo", "Location"},
				SettingList: []wxapi.PrivacySettingItem{{PrivacyKey: "UserInfo", PrivacyText: "登录", PrivacyLabel: "用户信息（微信昵称、头像）"}},
				UpdateTime:  1670000000, OwnerSetting: wxapi.PrivacyOwnerSetting{ContactPhone: "15712345678", NoticeMethod: "弹窗"},
				PrivacyDesc:        wxapi.PrivacyDescList{List: []wxapi.PrivacyDesc{{PrivacyKey: "UserInfo", PrivacyDesc: "用户信息（微信昵称、头像）"}}},
				SDKPrivacyInfoList: json.RawMessage(`[]`),
			},
		},
		{
			name: "submit_audit", method: "POST", path: "/wxa/submit_audit", token: authToken, sideEffect: true,
			body: `{"item_list":[{"address":"index","tag":"学习 生活","first_class":"文娱","second_class":"资讯","third_class":"","first_id":1,"second_id":2,"third_id":0,"title":"首页"}],` +
				`"preview_info":{"video_id_list":["xxxx"],"pic_id_list":["xxxxx","yyyyy"]},"version_desc":"test account: demo/demo","feedback_info":"fixed","feedback_stuff":"xx|yy|zz",` +
				`"ugc_declare":{"scene":[1,2],"method":[1],"has_audit_team":1,"audit_desc":"manual"},"privacy_api_not_use":true,"order_path":"pages/order/index"}`,
			answer: `{"errcode":0,"errmsg":"ok","auditid":1234567}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.SubmitAudit(ctx, authToken, wxapi.SubmitAuditRequest{
					ItemList: []wxapi.AuditItem{{Address: "index", Tag: "学习 生活", Title: "首页",
						AuditCategory: wxapi.AuditCategory{FirstClass: "文娱", SecondClass: "资讯", FirstID: 1, SecondID: 2}}},
					PreviewInfo:  &wxapi.PreviewInfo{VideoIDList: []string{"xxxx"}, PicIDList: []string{"xxxxx", "yyyyy"}},
					VersionDesc:  "test account: demo/demo",
					FeedbackInfo: "fixed", FeedbackStuff: "xx|yy|zz",
					UGCDeclare:       &wxapi.UGCDeclare{Scene: []int{1, 2}, Method: []int{1}, HasAuditTeam: 1, AuditDesc: "manual"},
					PrivacyAPINotUse: true, OrderPath: "pages/order/index",
				})
			},
			want: int64(1234567),
		},
		{
			name: "submit_audit minimal", method: "POST", path: "/wxa/submit_audit", token: authToken, sideEffect: true,
			body:   `{}`,
			answer: `{"errcode":0,"errmsg":"ok","auditid":7}`,
			call: func(c *wxapi.Client) (any, error) {
				return c.SubmitAudit(ctx, authToken, wxapi.SubmitAuditRequest{})
			},
			want: int64(7),
		},
		{
			name: "get_auditstatus", method: "POST", path: "/wxa/get_auditstatus", token: authToken,
			body:   `{"auditid":1234567}`,
			answer: `{"errcode":0,"errmsg":"ok","status":1,"reason":"帐号信息不合规范","screenshot":"xxx|yyy|zzz"}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GetAuditStatus(ctx, authToken, 1234567) },
			want:   wxapi.AuditStatus{AuditID: 1234567, Status: wxapi.AuditRejected, Reason: "帐号信息不合规范", ScreenShot: "xxx|yyy|zzz"},
		},
		{
			name: "get_latest_auditstatus", method: "GET", path: "/wxa/get_latest_auditstatus", token: authToken,
			answer: `{"errcode":0,"errmsg":"ok","auditid":1234567,"status":1,"reason":"帐号信息不合规范","ScreenShot":"xx|yy|zz","user_version":"V1.5","user_desc":"test","submit_audit_time":1640763673}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GetLatestAuditStatus(ctx, authToken) },
			want: wxapi.AuditStatus{AuditID: 1234567, Status: wxapi.AuditRejected, Reason: "帐号信息不合规范", ScreenShot: "xx|yy|zz",
				UserVersion: "V1.5", UserDesc: "test", SubmitAuditTime: 1640763673},
		},
		{
			name: "undocodeaudit", method: "GET", path: "/wxa/undocodeaudit", token: authToken, sideEffect: true,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.UndoCodeAudit(ctx, authToken) },
		},
		{
			name: "speedupaudit", method: "POST", path: "/wxa/speedupaudit", token: authToken, sideEffect: true,
			body:   `{"auditid":1234567}`,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.SpeedupAudit(ctx, authToken, 1234567) },
		},
		{
			name: "queryquota", method: "GET", path: "/wxa/queryquota", token: authToken,
			answer: `{"errcode":0,"errmsg":"ok","rest":18,"limit":20,"speedup_rest":1,"speedup_limit":3}`,
			call:   func(c *wxapi.Client) (any, error) { return c.QueryQuota(ctx, authToken) },
			want:   wxapi.Quota{Rest: 18, Limit: 20, SpeedupRest: 1, SpeedupLimit: 3},
		},
		{
			name: "release", method: "POST", path: "/wxa/release", token: authToken, sideEffect: true,
			body:   `{}`,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.Release(ctx, authToken) },
		},
		{
			name: "grayrelease", method: "POST", path: "/wxa/grayrelease", token: authToken, sideEffect: true,
			body:   `{"gray_percentage":10,"support_debuger_first":true,"support_experiencer_first":false}`,
			answer: answerOK,
			call: func(c *wxapi.Client) (any, error) {
				return nil, c.GrayRelease(ctx, authToken, wxapi.GrayRelease{Percentage: 10, SupportDebugerFirst: true})
			},
		},
		{
			name: "getgrayreleaseplan", method: "GET", path: "/wxa/getgrayreleaseplan", token: authToken,
			answer: `{"errcode":0,"errmsg":"ok","gray_release_plan":{"status":1,"create_timestamp":1536305096,"gray_percentage":10,"support_experiencer_first":false,"support_debuger_first":true}}`,
			call:   func(c *wxapi.Client) (any, error) { return c.GrayReleasePlan(ctx, authToken) },
			want:   wxapi.GrayReleasePlan{Status: 1, CreateTimestamp: 1536305096, GrayPercentage: 10, SupportDebugerFirst: true},
		},
		{
			name: "revertgrayrelease", method: "GET", path: "/wxa/revertgrayrelease", token: authToken, sideEffect: true,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.RevertGrayRelease(ctx, authToken) },
		},
		{
			name: "revertcoderelease previous", method: "GET", path: "/wxa/revertcoderelease", token: authToken, sideEffect: true,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.RevertCodeRelease(ctx, authToken, "") },
		},
		{
			name: "revertcoderelease to a version", method: "GET", path: "/wxa/revertcoderelease", token: authToken, sideEffect: true,
			query:  map[string]string{"app_version": "3"},
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.RevertCodeRelease(ctx, authToken, "3") },
		},
		{
			name: "get_history_version", method: "GET", path: "/wxa/revertcoderelease", token: authToken,
			query:  map[string]string{"action": "get_history_version"},
			answer: `{"errcode":0,"errmsg":"ok","version_list":[{"app_version":3,"user_version":"1.0.2","user_desc":"fix","commit_time":1580281413},{"app_version":"2","user_version":"1.0.1","user_desc":"first","commit_time":1580281000}]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.HistoryVersions(ctx, authToken) },
			want: []wxapi.HistoryVersion{
				{AppVersion: "3", UserVersion: "1.0.2", UserDesc: "fix", CommitTime: 1580281413},
				{AppVersion: "2", UserVersion: "1.0.1", UserDesc: "first", CommitTime: 1580281000},
			},
		},
		{
			name: "change_visitstatus", method: "POST", path: "/wxa/change_visitstatus", token: authToken, sideEffect: true,
			body:   `{"action":"close"}`,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.ChangeVisitStatus(ctx, authToken, "close") },
		},
		{
			name: "getvisitstatus", method: "POST", path: "/wxa/getvisitstatus", token: authToken,
			body:   `{}`,
			answer: `{"errcode":0,"errmsg":"ok","status":1}`,
			call:   func(c *wxapi.Client) (any, error) { return c.VisitStatus(ctx, authToken) },
			want:   1,
		},
		{
			name: "getversioninfo", method: "POST", path: "/wxa/getversioninfo", token: authToken,
			body:   `{}`,
			answer: `{"errcode":0,"errmsg":"ok","exp_info":{"exp_time":1575190357,"exp_version":"2.0.1","exp_desc":"体验版"},"release_info":{"release_time":1575190000,"release_version":"","release_desc":"old"}}`,
			call:   func(c *wxapi.Client) (any, error) { return c.VersionInfo(ctx, authToken) },
			want: wxapi.VersionInfo{ExpInfo: wxapi.ExpInfo{ExpTime: 1575190357, ExpVersion: "2.0.1", ExpDesc: "体验版"},
				ReleaseInfo: wxapi.ReleaseInfo{ReleaseTime: 1575190000, ReleaseDesc: "old"}},
		},
		{
			name: "gettemplatedraftlist", method: "GET", path: "/wxa/gettemplatedraftlist", token: compToken,
			answer: `{"errcode":0,"errmsg":"ok","draft_list":[{"create_time":1488965944,"user_version":"VVV","user_desc":"AAS","draft_id":0},{"create_time":1504790906,"user_version":"11","user_desc":"111111","draft_id":4}]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.TemplateDrafts(ctx, compToken) },
			want: []wxapi.TemplateDraft{{CreateTime: 1488965944, UserVersion: "VVV", UserDesc: "AAS", DraftID: 0},
				{CreateTime: 1504790906, UserVersion: "11", UserDesc: "111111", DraftID: 4}},
		},
		{
			name: "addtotemplate", method: "POST", path: "/wxa/addtotemplate", token: compToken, sideEffect: true,
			body:   `{"draft_id":4,"template_type":0}`,
			answer: answerOK,
			call: func(c *wxapi.Client) (any, error) {
				return nil, c.AddToTemplate(ctx, compToken, 4, wxapi.TemplateNormal)
			},
		},
		{
			name: "gettemplatelist", method: "GET", path: "/wxa/gettemplatelist", token: compToken,
			query: map[string]string{"template_type": "0"},
			answer: `{"errcode":0,"errmsg":"ok","template_list":[{"create_time":1624000154,"user_version":"1.0.0","user_desc":"shop","template_id":47,` +
				`"source_miniprogram_appid":"wxdev","source_miniprogram":"dev app","developer":"dev","template_type":0,"category_list":[],"audit_scene":0,"audit_status":0,"reason":""}]}`,
			call: func(c *wxapi.Client) (any, error) { return c.Templates(ctx, compToken, wxapi.TemplateNormal) },
			want: []wxapi.Template{{CreateTime: 1624000154, UserVersion: "1.0.0", UserDesc: "shop", TemplateID: 47,
				SourceMiniProgramAppID: "wxdev", SourceMiniProgram: "dev app", Developer: "dev", CategoryList: []wxapi.AuditCategory{}}},
		},
		{
			name: "gettemplatelist all types", method: "GET", path: "/wxa/gettemplatelist", token: compToken,
			answer: `{"errcode":0,"errmsg":"ok","template_list":[]}`,
			call:   func(c *wxapi.Client) (any, error) { return c.Templates(ctx, compToken, -1) },
			want:   []wxapi.Template{},
		},
		{
			name: "deletetemplate", method: "POST", path: "/wxa/deletetemplate", token: compToken, sideEffect: true,
			body:   `{"template_id":47}`,
			answer: answerOK,
			call:   func(c *wxapi.Client) (any, error) { return nil, c.DeleteTemplate(ctx, compToken, 47) },
		},
	}
}

func TestCodeEndpoints(t *testing.T) {
	for _, tc := range codeCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, tc.answer))
			c, _ := newClient(f.srv.URL)
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
			if r.Method != tc.method || r.Path != tc.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tc.method, tc.path)
			}
			if got := r.Query["access_token"]; len(got) != 1 || got[0] != tc.token {
				t.Errorf("access_token %v (query %q), want %q", got, r.RawQuery, tc.token)
			}
			if len(r.Query) != 1+len(tc.query) {
				t.Errorf("query %q, want access_token and %v only", r.RawQuery, tc.query)
			}
			for k, v := range tc.query {
				if got := r.Query[k]; len(got) != 1 || got[0] != v {
					t.Errorf("query %s = %v, want %q", k, got, v)
				}
			}
			if tc.body == "" {
				if len(r.RawBody) != 0 || r.ContentType != "" {
					t.Errorf("body %q with Content-Type %q, want none", r.RawBody, r.ContentType)
				}
				return
			}
			if r.ContentType != "application/json" {
				t.Errorf("Content-Type %q, want application/json", r.ContentType)
			}
			var want any
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatalf("bad expected body: %v", err)
			}
			var gotBody any
			if err := json.Unmarshal(r.RawBody, &gotBody); err != nil || !reflect.DeepEqual(gotBody, want) {
				t.Errorf("body\n got %s\nwant %s", r.RawBody, tc.body)
			}
		})
	}
}

// Release, getversioninfo and getvisitstatus answer 44002 without a body, and some setups 47001 unless it is
// exactly {}.
func TestEmptyBodiesAreLiteralBraces(t *testing.T) {
	for _, tc := range codeCases() {
		if tc.body != "{}" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, tc.answer))
			c, _ := newClient(f.srv.URL)
			if _, err := tc.call(c); err != nil {
				t.Fatal(err)
			}
			if r := f.requests()[0]; string(r.RawBody) != "{}" || r.ContentType != "application/json" {
				t.Errorf("body %q (%s), want exactly {} as application/json", r.RawBody, r.ContentType)
			}
		})
	}
}

// A call WeChat acts on is made once even on -1 (a retry after a timeout WeChat did act on would commit,
// submit or release twice); reads keep the client's retries.
func TestSideEffectsAreNotRetried(t *testing.T) {
	for _, tc := range codeCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`))
			c, _ := newClient(f.srv.URL)
			_, err := tc.call(c)
			if wxapi.Code(err) != -1 {
				t.Fatalf("err = %v, want errcode -1", err)
			}
			want := 3
			if tc.sideEffect {
				want = 1
			}
			if n := f.count(); n != want {
				t.Errorf("%d requests, want %d", n, want)
			}
		})
	}
}

package wxapi

import (
	"context"
	"net/url"
)

// Web authorization of a fan on behalf of an official account (代公众号发起网页授权): the code exchange uses the
// component's token, the profile the fan's own token, the follow check the authorizer's token.

// Scopes of web authorization.
const (
	ScopeBase     = "snsapi_base"     // silent: the openid only
	ScopeUserInfo = "snsapi_userinfo" // with the fan's consent: nickname and avatar too
)

// Codes WeChat answers a web-authorization code with.
const (
	CodeOAuthCodeInvalid = 40029 // unknown code
	CodeOAuthCodeUsed    = 40163 // codes are single-use
	CodeOAuthCodeExpired = 42003
)

// FanToken is a fan's web-authorization token. It is used for the request at hand and never stored.
type FanToken struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	OpenID       string `json:"openid"`
	Scope        string `json:"scope"`
	UnionID      string `json:"unionid"`
	// IsSnapshotUser is 1 when the fan is in WeChat's snapshot (快照) mode and has not really authorized.
	IsSnapshotUser int `json:"is_snapshotuser"`
}

// ExchangeFanCode exchanges a web-authorization code for appid's fan with the component's token
// (/sns/oauth2/component/access_token). It is sent once, without retries: a code is single-use, so a retry
// after a lost answer could only fail with 40163.
func (c *Client) ExchangeFanCode(ctx context.Context, componentAppID, componentToken, appID, code string) (FanToken, error) {
	once := *c
	once.MaxAttempts = 1
	var t FanToken
	err := once.Call(ctx, "sns_component_access_token", "GET", "/sns/oauth2/component/access_token", url.Values{
		"appid": {appID}, "code": {code}, "grant_type": {"authorization_code"},
		"component_appid": {componentAppID}, "component_access_token": {componentToken},
	}, nil, &t)
	return t, err
}

// FanProfile is what /sns/userinfo tells of a fan who consented to snsapi_userinfo.
type FanProfile struct {
	OpenID     string `json:"openid"`
	NickName   string `json:"nickname"`
	HeadImgURL string `json:"headimgurl"`
	UnionID    string `json:"unionid"`
}

// FanProfile reads the profile of the fan a snsapi_userinfo token belongs to.
func (c *Client) FanProfile(ctx context.Context, fanToken, openID string) (FanProfile, error) {
	var p FanProfile
	err := c.Call(ctx, "sns_userinfo", "GET", "/sns/userinfo", url.Values{
		"access_token": {fanToken}, "openid": {openID}, "lang": {"zh_CN"},
	}, nil, &p)
	return p, err
}

// Follower is what /cgi-bin/user/info tells of one of an official account's fans.
type Follower struct {
	Subscribe     int    `json:"subscribe"` // 1: follows the account
	OpenID        string `json:"openid"`
	UnionID       string `json:"unionid"`
	SubscribeTime int64  `json:"subscribe_time"`
}

// Follower asks, with the official account's authorizer token (permission set 2, 用户管理), whether openid
// follows it.
func (c *Client) Follower(ctx context.Context, authorizerToken, openID string) (Follower, error) {
	var f Follower
	err := c.Call(ctx, "user_info", "GET", "/cgi-bin/user/info", url.Values{
		"access_token": {authorizerToken}, "openid": {openID}, "lang": {"zh_CN"},
	}, nil, &f)
	return f, err
}

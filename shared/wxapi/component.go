package wxapi

import (
	"context"
	"fmt"
	"net/url"
)

// The component (third-party platform) APIs, https://developers.weixin.qq.com/doc/oplatform/ .

// ComponentToken is the answer of api_component_token.
type ComponentToken struct {
	AccessToken string `json:"component_access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// ComponentToken exchanges the latest component_verify_ticket for a component_access_token.
func (c *Client) ComponentToken(ctx context.Context, appID, secret, ticket string) (ComponentToken, error) {
	var out ComponentToken
	err := c.Call(ctx, "api_component_token", "POST", "/cgi-bin/component/api_component_token", nil, map[string]string{
		"component_appid": appID, "component_appsecret": secret, "component_verify_ticket": ticket,
	}, &out)
	if err == nil && out.AccessToken == "" {
		return ComponentToken{}, errMissing("api_component_token", "component_access_token")
	}
	return out, err
}

// StartPushTicket asks WeChat to (re)start pushing component_verify_ticket.
func (c *Client) StartPushTicket(ctx context.Context, appID, secret string) error {
	return c.Call(ctx, "api_start_push_ticket", "POST", "/cgi-bin/component/api_start_push_ticket", nil, map[string]string{
		"component_appid": appID, "component_secret": secret,
	}, nil)
}

// PreAuthCode is the answer of api_create_preauthcode.
type PreAuthCode struct {
	Code      string `json:"pre_auth_code"`
	ExpiresIn int    `json:"expires_in"`
}

// CreatePreAuthCode gets a pre_auth_code for an authorization link.
func (c *Client) CreatePreAuthCode(ctx context.Context, componentToken, appID string) (PreAuthCode, error) {
	var out PreAuthCode
	err := c.Call(ctx, "api_create_preauthcode", "POST", "/cgi-bin/component/api_create_preauthcode",
		tokenQuery(componentToken), map[string]string{"component_appid": appID}, &out)
	if err == nil && out.Code == "" {
		return PreAuthCode{}, errMissing("api_create_preauthcode", "pre_auth_code")
	}
	return out, err
}

// FuncInfo is one granted permission set (权限集).
type FuncInfo struct {
	Category struct {
		ID int `json:"id"`
	} `json:"funcscope_category"`
}

// AuthorizationInfo is what an authorization grants: tokens and permission sets.
type AuthorizationInfo struct {
	AuthorizerAppID string     `json:"authorizer_appid"`
	AppID           string     `json:"appid"` // older answers use this name
	AccessToken     string     `json:"authorizer_access_token"`
	ExpiresIn       int        `json:"expires_in"`
	RefreshToken    string     `json:"authorizer_refresh_token"`
	FuncInfo        []FuncInfo `json:"func_info"`
}

// Appid returns the authorizer appid whichever field carried it.
func (a AuthorizationInfo) Appid() string {
	if a.AuthorizerAppID != "" {
		return a.AuthorizerAppID
	}
	return a.AppID
}

// PermissionSets returns the granted permission-set ids.
func (a AuthorizationInfo) PermissionSets() []int {
	ids := make([]int, 0, len(a.FuncInfo))
	for _, f := range a.FuncInfo {
		ids = append(ids, f.Category.ID)
	}
	return ids
}

// QueryAuth exchanges an authorization code (from the redirect or the `authorized` push).
//
// The code is single-use, so the call is made once, without retries: a retry after a timeout WeChat did
// process would only answer 61009 and hide the answer that mattered.
func (c *Client) QueryAuth(ctx context.Context, componentToken, appID, authCode string) (AuthorizationInfo, error) {
	var out struct {
		Info AuthorizationInfo `json:"authorization_info"`
	}
	once := *c
	once.MaxAttempts = 1
	err := once.Call(ctx, "api_query_auth", "POST", "/cgi-bin/component/api_query_auth", tokenQuery(componentToken),
		map[string]string{"component_appid": appID, "authorization_code": authCode}, &out)
	if err == nil && out.Info.Appid() == "" {
		return AuthorizationInfo{}, errMissing("api_query_auth", "authorizer_appid")
	}
	if err == nil && out.Info.RefreshToken == "" {
		return AuthorizationInfo{}, errMissing("api_query_auth", "authorizer_refresh_token")
	}
	return out.Info, err
}

// IDName is WeChat's {id, name} pair (service_type_info, verify_type_info).
type IDName struct {
	ID   int    `json:"id"`
	Name string `json:"name,omitempty"`
}

// Category is one mini-program service category.
type Category struct {
	First  string `json:"first"`
	Second string `json:"second"`
}

// MiniProgramInfo is present only for mini programs.
type MiniProgramInfo struct {
	Network     map[string]any `json:"network"` // lists of domains; kept as given, WeChat adds keys over time
	Categories  []Category     `json:"categories"`
	VisitStatus int            `json:"visit_status"`
}

// AuthorizerInfo is the account's public profile.
type AuthorizerInfo struct {
	NickName        string           `json:"nick_name"`
	HeadImg         string           `json:"head_img"`
	ServiceTypeInfo IDName           `json:"service_type_info"`
	VerifyTypeInfo  IDName           `json:"verify_type_info"`
	UserName        string           `json:"user_name"`
	Alias           string           `json:"alias"`
	PrincipalName   string           `json:"principal_name"`
	Signature       string           `json:"signature"`
	QRCodeURL       string           `json:"qrcode_url"`
	MiniProgramInfo *MiniProgramInfo `json:"MiniProgramInfo,omitempty"`
}

// IsMiniProgram tells mini programs from official accounts.
func (a AuthorizerInfo) IsMiniProgram() bool { return a.MiniProgramInfo != nil }

// AuthorizerDetails is the answer of api_get_authorizer_info.
type AuthorizerDetails struct {
	Info          AuthorizerInfo    `json:"authorizer_info"`
	Authorization AuthorizationInfo `json:"authorization_info"`
}

// GetAuthorizerInfo fetches an authorizer's account info and granted permission sets.
func (c *Client) GetAuthorizerInfo(ctx context.Context, componentToken, appID, authorizerAppID string) (AuthorizerDetails, error) {
	var out AuthorizerDetails
	err := c.Call(ctx, "api_get_authorizer_info", "POST", "/cgi-bin/component/api_get_authorizer_info",
		tokenQuery(componentToken), map[string]string{"component_appid": appID, "authorizer_appid": authorizerAppID}, &out)
	return out, err
}

// AuthorizerToken is the answer of api_authorizer_token.
type AuthorizerToken struct {
	AccessToken  string `json:"authorizer_access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"authorizer_refresh_token"`
}

// AuthorizerToken refreshes an authorizer's access token. Persist the returned refresh token with the access
// token in one write: WeChat may rotate it. An answer without a refresh token keeps refreshToken, so that
// write can never blank the stored one (which would lose the authorizer).
func (c *Client) AuthorizerToken(ctx context.Context, componentToken, appID, authorizerAppID, refreshToken string) (AuthorizerToken, error) {
	var out AuthorizerToken
	err := c.Call(ctx, "api_authorizer_token", "POST", "/cgi-bin/component/api_authorizer_token", tokenQuery(componentToken),
		map[string]string{"component_appid": appID, "authorizer_appid": authorizerAppID, "authorizer_refresh_token": refreshToken}, &out)
	if err != nil {
		return out, err
	}
	if out.AccessToken == "" {
		return AuthorizerToken{}, errMissing("api_authorizer_token", "authorizer_access_token")
	}
	if out.RefreshToken == "" {
		out.RefreshToken = refreshToken
	}
	return out, nil
}

// errMissing reports a success answer without the field the call exists for; using its zero value would
// store an empty token.
func errMissing(api, field string) error {
	return fmt.Errorf("wechat %s: answer has no %s", api, field)
}

func tokenQuery(componentToken string) url.Values {
	return url.Values{"component_access_token": {componentToken}}
}

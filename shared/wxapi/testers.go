package wxapi

import (
	"context"
	"errors"
)

// Testers (体验者) may open the 体验版. Administrators need no binding.

// BindTester makes a WeChat user a tester and returns the userstr that names them from now on. 85001 no such
// searchable WeChat ID, 85002 / 85003 tester limits, 85004 already bound.
func (c *Client) BindTester(ctx context.Context, token, wechatID string) (string, error) {
	var out struct {
		UserStr string `json:"userstr"`
	}
	err := c.act(ctx, "bind_tester", "POST", "/wxa/bind_tester", accessQuery(token), map[string]string{"wechatid": wechatID}, &out)
	if err == nil && out.UserStr == "" {
		// The tester is bound; without the userstr the caller can still unbind by WeChat ID.
		return "", errMissing("bind_tester", "userstr")
	}
	return out.UserStr, err
}

// UnbindTester removes a tester named by userstr or, when userstr is empty, by WeChat ID. WeChat takes one of
// the two; the userstr is preferred because a WeChat ID can be changed.
func (c *Client) UnbindTester(ctx context.Context, token, wechatID, userstr string) error {
	body := map[string]string{"userstr": userstr}
	switch {
	case userstr == "" && wechatID == "":
		return errors.New("unbind_tester: neither wechatid nor userstr given")
	case userstr == "":
		body = map[string]string{"wechatid": wechatID}
	}
	return c.act(ctx, "unbind_tester", "POST", "/wxa/unbind_tester", accessQuery(token), body, nil)
}

// Testers lists the userstr of every tester.
func (c *Client) Testers(ctx context.Context, token string) ([]string, error) {
	var out struct {
		Members []struct {
			UserStr string `json:"userstr"`
		} `json:"members"`
	}
	if err := c.read(ctx, "memberauth", "POST", "/wxa/memberauth", accessQuery(token),
		map[string]string{"action": "get_experiencer"}, &out); err != nil {
		return nil, err
	}
	users := make([]string, 0, len(out.Members))
	for _, m := range out.Members {
		users = append(users, m.UserStr)
	}
	return users, nil
}

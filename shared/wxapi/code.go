package wxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"unicode/utf8"
)

// Mini-program code management (代码管理), /wxa/... with an authorizer access token of permission set 18
// (addendum B). Calls WeChat acts on are made once: a retry after a timeout WeChat did act on would commit,
// submit or release twice. Reads keep the client's retries.

// accessQuery carries the token as /wxa/ APIs want it: access_token, whether it is an authorizer token or,
// for the template library, the component token.
func accessQuery(token string) url.Values { return url.Values{"access_token": {token}} }

// noFields is the literal {} body some POSTs require: without a body WeChat answers 44002 empty post data.
var noFields = struct{}{}

// read makes a call that changes nothing at WeChat, with the client's retries.
func (c *Client) read(ctx context.Context, api, method, path string, q url.Values, body, out any) error {
	return withAliases(c.Call(ctx, api, method, path, q, body, out))
}

// act makes a call WeChat acts on, once; the caller decides about trying again.
func (c *Client) act(ctx context.Context, api, method, path string, q url.Values, body, out any) error {
	once := *c
	once.MaxAttempts = 1
	return withAliases(once.Call(ctx, api, method, path, q, body, out))
}

// CommitRequest is the body of commit: the template to use and this mini program's ext.json.
type CommitRequest struct {
	TemplateID  int64  `json:"template_id"` // a number: a quoted id is answered 85014
	ExtJSON     string `json:"ext_json"`    // the ext.json document, sent as a JSON string
	UserVersion string `json:"user_version"`
	UserDesc    string `json:"user_desc"`
}

// maxUserVersion is WeChat's limit on user_version, in characters.
const maxUserVersion = 64

// Validate checks what WeChat would refuse anyway: a user_version of 1–64 characters and an ext_json that is
// a JSON object (otherwise the error matches ErrInvalidExtJSON, as WeChat's 85013 would).
func (r CommitRequest) Validate() error {
	if n := utf8.RuneCountInString(r.UserVersion); n == 0 || n > maxUserVersion {
		return fmt.Errorf("commit: user_version has %d characters, want 1 to %d", n, maxUserVersion)
	}
	if t := bytes.TrimLeft([]byte(r.ExtJSON), " \t\r\n"); !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("commit: ext_json is not a JSON object: %w", &Error{API: "commit", Code: 85013, Msg: "invalid ext_json (checked before sending)"})
	}
	return nil
}

// Commit uploads code from a template as the mini program's 体验版. It starts the privacy-API scan: submitting
// before it ends answers 61039 (ErrPrivacyScanPending), and committing again restarts it.
func (c *Client) Commit(ctx context.Context, token string, r CommitRequest) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return c.act(ctx, "commit", "POST", "/wxa/commit", accessQuery(token), r, nil)
}

// GetPage lists the pages of the committed code, for submit_audit's item_list addresses. WeChat has been seen
// listing a page twice; each is returned once, in WeChat's order.
func (c *Client) GetPage(ctx context.Context, token string) ([]string, error) {
	var out struct {
		Pages []string `json:"page_list"`
	}
	if err := c.read(ctx, "get_page", "GET", "/wxa/get_page", accessQuery(token), nil, &out); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(out.Pages))
	pages := make([]string, 0, len(out.Pages))
	for _, p := range out.Pages {
		if !seen[p] {
			seen[p] = true
			pages = append(pages, p)
		}
	}
	return pages, nil
}

// AuditCategory is one category the mini program may be audited under; submit_audit's items take it as is.
// A category without a third level has an empty ThirdClass and ThirdID 0, sent as such.
type AuditCategory struct {
	FirstClass  string `json:"first_class"`
	SecondClass string `json:"second_class"`
	ThirdClass  string `json:"third_class"`
	FirstID     int    `json:"first_id"`
	SecondID    int    `json:"second_id"`
	ThirdID     int    `json:"third_id"`
}

// GetCategory lists the categories set for the mini program.
func (c *Client) GetCategory(ctx context.Context, token string) ([]AuditCategory, error) {
	var out struct {
		List []AuditCategory `json:"category_list"`
	}
	err := c.read(ctx, "get_category", "GET", "/wxa/get_category", accessQuery(token), nil, &out)
	return out.List, err
}

// errAction refuses an action WeChat does not know before anything is sent.
func errAction(api, action string, valid ...string) error {
	for _, v := range valid {
		if action == v {
			return nil
		}
	}
	return fmt.Errorf("%s: unknown action %q, want one of %q", api, action, valid)
}

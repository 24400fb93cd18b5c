package wxapi

import (
	"context"
	"strconv"
)

// The code template library (代码模板库), with the component access token. Like the rest of /wxa/ it is
// passed as access_token (component.go's APIs under /cgi-bin/component take component_access_token instead).
// The library holds at most 200 templates.

// Template types. Standard templates depend on the discontinued 交易组件 and can no longer be used.
const (
	TemplateNormal   = 0
	TemplateStandard = 1
)

// TemplateDraft is code uploaded from the platform's development mini program with DevTools.
type TemplateDraft struct {
	CreateTime  int64  `json:"create_time"`
	UserVersion string `json:"user_version"`
	UserDesc    string `json:"user_desc"`
	DraftID     int64  `json:"draft_id"`
}

// TemplateDrafts lists the drafts.
func (c *Client) TemplateDrafts(ctx context.Context, componentToken string) ([]TemplateDraft, error) {
	var out struct {
		List []TemplateDraft `json:"draft_list"`
	}
	err := c.read(ctx, "gettemplatedraftlist", "GET", "/wxa/gettemplatedraftlist", accessQuery(componentToken), nil, &out)
	return out.List, err
}

// AddToTemplate turns a draft into a template. 85064 draft not found (ErrTemplateNotFound), 85065 library
// full.
func (c *Client) AddToTemplate(ctx context.Context, componentToken string, draftID int64, templateType int) error {
	return c.act(ctx, "addtotemplate", "POST", "/wxa/addtotemplate", accessQuery(componentToken), struct {
		DraftID      int64 `json:"draft_id"`
		TemplateType int   `json:"template_type"`
	}{draftID, templateType}, nil)
}

// Template is one template of the library. AuditScene, AuditStatus and Reason concern standard templates.
type Template struct {
	CreateTime             int64           `json:"create_time"`
	UserVersion            string          `json:"user_version"`
	UserDesc               string          `json:"user_desc"`
	TemplateID             int64           `json:"template_id"`
	SourceMiniProgramAppID string          `json:"source_miniprogram_appid"`
	SourceMiniProgram      string          `json:"source_miniprogram"`
	Developer              string          `json:"developer"`
	TemplateType           int             `json:"template_type"`
	CategoryList           []AuditCategory `json:"category_list"`
	AuditScene             int             `json:"audit_scene"`
	AuditStatus            int             `json:"audit_status"`
	Reason                 string          `json:"reason"`
}

// Templates lists the templates of one type; a negative templateType lists all of them.
func (c *Client) Templates(ctx context.Context, componentToken string, templateType int) ([]Template, error) {
	q := accessQuery(componentToken)
	if templateType >= 0 {
		q.Set("template_type", strconv.Itoa(templateType))
	}
	var out struct {
		List []Template `json:"template_list"`
	}
	err := c.read(ctx, "gettemplatelist", "GET", "/wxa/gettemplatelist", q, nil, &out)
	return out.List, err
}

// DeleteTemplate removes a template; 85064 (ErrTemplateNotFound) when there is none with that id.
func (c *Client) DeleteTemplate(ctx context.Context, componentToken string, templateID int64) error {
	return c.act(ctx, "deletetemplate", "POST", "/wxa/deletetemplate", accessQuery(componentToken),
		map[string]int64{"template_id": templateID}, nil)
}

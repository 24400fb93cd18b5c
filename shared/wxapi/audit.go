package wxapi

import "context"

// Code audit (审核): submit the committed 体验版, follow the audit, undo or speed it up.

// SubmitAuditRequest is the body of submit_audit with every current field (addendum B.2). All are optional
// for WeChat, but the categories must be ones set for the mini program.
type SubmitAuditRequest struct {
	ItemList      []AuditItem  `json:"item_list,omitempty"` // at most 5
	PreviewInfo   *PreviewInfo `json:"preview_info,omitempty"`
	VersionDesc   string       `json:"version_desc,omitempty"`   // WeChat advises putting a test account for the reviewers here
	FeedbackInfo  string       `json:"feedback_info,omitempty"`  // ≤200; read only when the previous version was rejected
	FeedbackStuff string       `json:"feedback_stuff,omitempty"` // ≤5 media ids joined by "|"; same condition
	UGCDeclare    *UGCDeclare  `json:"ugc_declare,omitempty"`    // required on the first submit of 社交 categories
	// PrivacyAPINotUse declares that privacy APIs the scan detected but that are not configured are never
	// called; it clears 61040.
	PrivacyAPINotUse bool   `json:"privacy_api_not_use,omitempty"`
	OrderPath        string `json:"order_path,omitempty"` // 订单中心 page
}

// AuditItem is one page to review: a page from GetPage, under a category from GetCategory.
type AuditItem struct {
	Address string `json:"address"`
	Tag     string `json:"tag,omitempty"` // space-separated, ≤10 tags of ≤20 characters
	AuditCategory
	Title string `json:"title,omitempty"` // ≤32
}

// PreviewInfo is an object, not a list: a list is answered 47001. Ids come from /wxa/uploadmedia.
type PreviewInfo struct {
	VideoIDList []string `json:"video_id_list,omitempty"`
	PicIDList   []string `json:"pic_id_list,omitempty"`
}

// UGCDeclare declares user-generated content. Scene: 0 none (then leave the rest out), 1 profiles, 2
// pictures, 3 videos, 4 text, 5 other. Method: 1 WeChat's content-security API, 2 another moderation product,
// 3 manual review, 4 none. HasAuditTeam: 0 or 1, sent either way.
type UGCDeclare struct {
	Scene          []int  `json:"scene,omitempty"`
	OtherSceneDesc string `json:"other_scene_desc,omitempty"` // ≤256
	Method         []int  `json:"method,omitempty"`
	HasAuditTeam   int    `json:"has_audit_team"`
	AuditDesc      string `json:"audit_desc,omitempty"` // ≤256
}

// SubmitAudit submits the committed code for audit and returns the audit id. Errors to branch on:
// ErrAuditPending, ErrPrivacyScanPending, ErrPrivacyAPI, ErrAuditQuota, ErrNoCommittedCode,
// IsAuditPayloadError, IsSubmitRestricted. A success without an auditid is an error, though the audit may be
// running: GetLatestAuditStatus has its id.
func (c *Client) SubmitAudit(ctx context.Context, token string, r SubmitAuditRequest) (int64, error) {
	var out struct {
		AuditID int64 `json:"auditid"`
	}
	err := c.act(ctx, "submit_audit", "POST", "/wxa/submit_audit", accessQuery(token), r, &out)
	if err == nil && out.AuditID == 0 {
		return 0, errMissing("submit_audit", "auditid")
	}
	return out.AuditID, err
}

// Audit statuses.
const (
	AuditPassed    = 0
	AuditRejected  = 1
	AuditInReview  = 2
	AuditWithdrawn = 3
	AuditDelayed   = 4 // Reason says why; a final pass or rejection follows
)

// AuditStatus is where an audit stands. get_auditstatus fills AuditID from the request and leaves the
// version fields empty.
type AuditStatus struct {
	AuditID         int64  `json:"auditid"`
	Status          int    `json:"status"` // AuditPassed ... AuditDelayed
	Reason          string `json:"reason"`
	ScreenShot      string `json:"screenshot"` // media ids joined by "|"
	UserVersion     string `json:"user_version"`
	UserDesc        string `json:"user_desc"`
	SubmitAuditTime int64  `json:"submit_audit_time"`
}

// auditStatusAnswer takes the screenshot under both names WeChat's documents use ("ScreenShot" in the
// get_latest_auditstatus example, "screenshot" elsewhere), each matched exactly.
type auditStatusAnswer struct {
	AuditStatus
	ScreenShotCapital string `json:"ScreenShot"`
}

func (a auditStatusAnswer) status() AuditStatus {
	s := a.AuditStatus
	if s.ScreenShot == "" {
		s.ScreenShot = a.ScreenShotCapital
	}
	return s
}

// GetAuditStatus reads the status of one audit (85012 invalid auditid).
func (c *Client) GetAuditStatus(ctx context.Context, token string, auditID int64) (AuditStatus, error) {
	var out auditStatusAnswer
	err := c.read(ctx, "get_auditstatus", "POST", "/wxa/get_auditstatus", accessQuery(token), map[string]int64{"auditid": auditID}, &out)
	if err != nil {
		return AuditStatus{}, err
	}
	s := out.status()
	if s.AuditID == 0 {
		s.AuditID = auditID
	}
	return s, nil
}

// GetLatestAuditStatus reads the status of the latest audit. A mini program never submitted answers 85058,
// which matches ErrNoAudit.
func (c *Client) GetLatestAuditStatus(ctx context.Context, token string) (AuditStatus, error) {
	var out auditStatusAnswer
	if err := c.read(ctx, "get_latest_auditstatus", "GET", "/wxa/get_latest_auditstatus", accessQuery(token), nil, &out); err != nil {
		return AuditStatus{}, err
	}
	return out.status(), nil
}

// UndoCodeAudit withdraws the audit in progress. At most 5 a day and 10 a month per mini program, with no way
// to ask what is left (87013 when used up); a rejected audit needs no undo (87012).
func (c *Client) UndoCodeAudit(ctx context.Context, token string) error {
	return c.act(ctx, "undocodeaudit", "GET", "/wxa/undocodeaudit", accessQuery(token), nil, nil)
}

// SpeedupAudit asks for an audit within 2–12 h, from the monthly speed-up quota. 89401 system unstable, 89402
// not in the audit queue, 89403 not eligible, 89404 already sped up, 89405 quota used up.
func (c *Client) SpeedupAudit(ctx context.Context, token string, auditID int64) error {
	return c.act(ctx, "speedupaudit", "POST", "/wxa/speedupaudit", accessQuery(token), map[string]int64{"auditid": auditID}, nil)
}

// Quota is the provider's monthly audit and speed-up quota, shared by all its mini programs.
type Quota struct {
	Rest         int `json:"rest"`
	Limit        int `json:"limit"`
	SpeedupRest  int `json:"speedup_rest"`
	SpeedupLimit int `json:"speedup_limit"`
}

// QueryQuota reads the quota; any authorizer token of the provider will do.
func (c *Client) QueryQuota(ctx context.Context, token string) (Quota, error) {
	var out Quota
	err := c.read(ctx, "queryquota", "GET", "/wxa/queryquota", accessQuery(token), nil, &out)
	return out, err
}

package wxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Release (发布), gray release, rollback, and the state of the live version.

// Release publishes the last version that passed audit. ErrNoAuditedVersion and ErrReleaseNotAllowed say why
// not.
func (c *Client) Release(ctx context.Context, token string) error {
	return c.act(ctx, "release", "POST", "/wxa/release", accessQuery(token), noFields, nil)
}

// GrayRelease is the body of grayrelease.
type GrayRelease struct {
	Percentage              int  `json:"gray_percentage"` // 0–100, and must grow; 0 needs one of the flags
	SupportDebugerFirst     bool `json:"support_debuger_first"`
	SupportExperiencerFirst bool `json:"support_experiencer_first"`
}

// GrayRelease publishes the approved version to a share of users. 85079 no live version, 85080 audit not
// passed, 85081 invalid percentage, 85082 percentage must be higher than before, 86002 (ErrProfileIncomplete).
func (c *Client) GrayRelease(ctx context.Context, token string, g GrayRelease) error {
	if g.Percentage < 0 || g.Percentage > 100 || (g.Percentage == 0 && !g.SupportDebugerFirst && !g.SupportExperiencerFirst) {
		return fmt.Errorf("grayrelease: percentage %d, want 1–100, or 0 with a support_*_first flag", g.Percentage)
	}
	return c.act(ctx, "grayrelease", "POST", "/wxa/grayrelease", accessQuery(token), g, nil)
}

// GrayReleasePlan is the current gray release. Status: 0 created, 1 running, 2 paused, 3 done, 4 deleted.
type GrayReleasePlan struct {
	Status                  int   `json:"status"`
	CreateTimestamp         int64 `json:"create_timestamp"`
	GrayPercentage          int   `json:"gray_percentage"`
	SupportDebugerFirst     bool  `json:"support_debuger_first"`
	SupportExperiencerFirst bool  `json:"support_experiencer_first"`
}

// GrayReleasePlan reads the current gray release.
func (c *Client) GrayReleasePlan(ctx context.Context, token string) (GrayReleasePlan, error) {
	var out struct {
		Plan GrayReleasePlan `json:"gray_release_plan"`
	}
	err := c.read(ctx, "getgrayreleaseplan", "GET", "/wxa/getgrayreleaseplan", accessQuery(token), nil, &out)
	return out.Plan, err
}

// RevertGrayRelease cancels the gray release in progress.
func (c *Client) RevertGrayRelease(ctx context.Context, token string) error {
	return c.act(ctx, "revertgrayrelease", "GET", "/wxa/revertgrayrelease", accessQuery(token), nil, nil)
}

// RevertCodeRelease rolls the live version back: to the previous one when appVersion is empty, otherwise to
// that HistoryVersion. 87011 a gray release is in progress, 87012 this version cannot be reverted to.
func (c *Client) RevertCodeRelease(ctx context.Context, token, appVersion string) error {
	q := accessQuery(token)
	if appVersion != "" {
		q.Set("app_version", appVersion)
	}
	return c.act(ctx, "revertcoderelease", "GET", "/wxa/revertcoderelease", q, nil, nil)
}

// HistoryVersion is a version RevertCodeRelease can go back to.
type HistoryVersion struct {
	AppVersion  string `json:"app_version"` // WeChat sends a number; kept as the string RevertCodeRelease takes
	UserVersion string `json:"user_version"`
	UserDesc    string `json:"user_desc"`
	CommitTime  int64  `json:"commit_time"`
}

// UnmarshalJSON takes app_version as a JSON number or string.
func (h *HistoryVersion) UnmarshalJSON(b []byte) error {
	type plain HistoryVersion
	var v struct {
		plain
		AppVersion json.RawMessage `json:"app_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*h = HistoryVersion(v.plain)
	switch raw := bytes.TrimSpace(v.AppVersion); {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
	case raw[0] == '"':
		return json.Unmarshal(raw, &h.AppVersion)
	default:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return errors.New("app_version is neither a number nor a string")
		}
		h.AppVersion = n.String()
	}
	return nil
}

// HistoryVersions lists the versions the live one can be rolled back to (at most 5; versions released from
// the mp console before the authorization are missing).
func (c *Client) HistoryVersions(ctx context.Context, token string) ([]HistoryVersion, error) {
	q := accessQuery(token)
	q.Set("action", "get_history_version")
	var out struct {
		List []HistoryVersion `json:"version_list"`
	}
	err := c.read(ctx, "get_history_version", "GET", "/wxa/revertcoderelease", q, nil, &out)
	return out.List, err
}

// ChangeVisitStatus pauses ("close") or resumes ("open") the service of the live mini program.
func (c *Client) ChangeVisitStatus(ctx context.Context, token, action string) error {
	if err := errAction("change_visitstatus", action, "open", "close"); err != nil {
		return err
	}
	return c.act(ctx, "change_visitstatus", "POST", "/wxa/change_visitstatus", accessQuery(token), map[string]string{"action": action}, nil)
}

// VisitStatus reads whether the mini program serves users: 1 normal, 0 paused (by its owner or for a
// violation).
func (c *Client) VisitStatus(ctx context.Context, token string) (int, error) {
	var out struct {
		Status int `json:"status"`
	}
	err := c.read(ctx, "getvisitstatus", "POST", "/wxa/getvisitstatus", accessQuery(token), noFields, &out)
	return out.Status, err
}

// ExpInfo is the 体验版.
type ExpInfo struct {
	ExpTime    int64  `json:"exp_time"`
	ExpVersion string `json:"exp_version"`
	ExpDesc    string `json:"exp_desc"`
}

// ReleaseInfo is the live version; ReleaseVersion may be empty for old releases.
type ReleaseInfo struct {
	ReleaseTime    int64  `json:"release_time"`
	ReleaseVersion string `json:"release_version"`
	ReleaseDesc    string `json:"release_desc"`
}

// VersionInfo is the answer of getversioninfo.
type VersionInfo struct {
	ExpInfo     ExpInfo     `json:"exp_info"`
	ReleaseInfo ReleaseInfo `json:"release_info"`
}

// VersionInfo reads the 体验版 and the live version.
func (c *Client) VersionInfo(ctx context.Context, token string) (VersionInfo, error) {
	var out VersionInfo
	err := c.read(ctx, "getversioninfo", "POST", "/wxa/getversioninfo", accessQuery(token), noFields, &out)
	return out, err
}

package wxapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Privacy: the scan of privacy APIs in committed code, and the 用户隐私保护指引 every audit checks against the
// code (a mismatch is a rejection, with no errcode). Mini programs developed by the platform can set the
// guideline only through these APIs. Order: Commit, wait for the scan, GetPrivacySetting (its PrivacyList),
// SetPrivacySetting, GetCodePrivacyInfo, SubmitAudit.

// CodePrivacyInfo is the answer of the privacy-API scan of the committed code.
type CodePrivacyInfo struct {
	WithoutAuthList []string `json:"without_auth_list"` // privacy APIs used without permission
	WithoutConfList []string `json:"without_conf_list"` // privacy APIs used but not declared
}

// GetCodePrivacyInfo reads the scan result; 61039 (ErrPrivacyScanPending) until the scan has finished.
func (c *Client) GetCodePrivacyInfo(ctx context.Context, token string) (CodePrivacyInfo, error) {
	var out CodePrivacyInfo
	err := c.read(ctx, "get_code_privacy_info", "GET", "/wxa/security/get_code_privacy_info", accessQuery(token), nil, &out)
	return out, err
}

// Guideline versions (privacy_ver).
const (
	PrivacyLive = 1 // the live guideline: only OwnerSetting may change (not its ExtFileMediaID)
	PrivacyDev  = 2 // the one the next release takes; WeChat's default
)

// PrivacySetting is the body of setprivacysetting.
type PrivacySetting struct {
	PrivacyVer   int                  `json:"privacy_ver,omitempty"` // PrivacyLive or PrivacyDev; 0 leaves WeChat's default (dev)
	OwnerSetting PrivacyOwnerSetting  `json:"owner_setting"`         // an object: a JSON string is answered 47001
	SettingList  []PrivacySettingItem `json:"setting_list,omitempty"`
	// SDKPrivacyInfoList is passed through as given: its structure is not documented well enough to type.
	SDKPrivacyInfoList json.RawMessage `json:"sdk_privacy_info_list,omitempty"`
}

// PrivacyOwnerSetting is the collector (developer) part of the guideline.
type PrivacyOwnerSetting struct {
	ContactEmail         string `json:"contact_email,omitempty"`
	ContactPhone         string `json:"contact_phone,omitempty"`
	ContactQQ            string `json:"contact_qq,omitempty"`
	ContactWeixin        string `json:"contact_weixin,omitempty"`
	ExtFileMediaID       string `json:"ext_file_media_id,omitempty"` // a custom guideline from uploadprivacyextfile
	NoticeMethod         string `json:"notice_method"`
	StoreExpireTimestamp string `json:"store_expire_timestamp,omitempty"` // a number of days followed by 天, e.g. "30天" (87072 otherwise)
	// StoreRegion is passed through as given: its type is not documented.
	StoreRegion json.RawMessage `json:"store_region,omitempty"`
}

// PrivacySettingItem is one kind of user information collected and what for. PrivacyLabel (its Chinese
// name) comes only in answers.
type PrivacySettingItem struct {
	PrivacyKey   string `json:"privacy_key"`  // UserInfo, Location, PhoneNumber, ... or a custom key
	PrivacyText  string `json:"privacy_text"` // the purpose, shown as 为了<text>
	PrivacyLabel string `json:"privacy_label,omitempty"`
}

// Validate checks what WeChat refuses with 86069 (a required owner field missing) and 86071 (privacy_ver),
// and the rule that only the dev guideline takes a setting list.
func (s PrivacySetting) Validate() error {
	o := s.OwnerSetting
	switch {
	case s.PrivacyVer != 0 && s.PrivacyVer != PrivacyLive && s.PrivacyVer != PrivacyDev:
		return fmt.Errorf("setprivacysetting: privacy_ver %d, want %d or %d", s.PrivacyVer, PrivacyLive, PrivacyDev)
	case s.PrivacyVer == PrivacyLive && len(s.SettingList) > 0:
		return errors.New("setprivacysetting: the live guideline (privacy_ver 1) takes no setting_list")
	case o.NoticeMethod == "":
		return errors.New("setprivacysetting: owner_setting.notice_method is required")
	case o.ContactEmail == "" && o.ContactPhone == "" && o.ContactQQ == "" && o.ContactWeixin == "":
		return errors.New("setprivacysetting: owner_setting needs at least one contact")
	}
	return nil
}

// SetPrivacySetting sets the guideline, with the authorizer token (the component token is answered 48001).
// It takes effect after the next audit and release. 86074: no live guideline yet to update.
func (c *Client) SetPrivacySetting(ctx context.Context, token string, s PrivacySetting) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return c.act(ctx, "setprivacysetting", "POST", "/cgi-bin/component/setprivacysetting", accessQuery(token), s, nil)
}

// PrivacySettingInfo is the answer of getprivacysetting.
type PrivacySettingInfo struct {
	CodeExist          int                  `json:"code_exist"`   // 0: no recent commit, and PrivacyList is empty
	PrivacyList        []string             `json:"privacy_list"` // privacy keys the committed code collects
	SettingList        []PrivacySettingItem `json:"setting_list"`
	UpdateTime         int64                `json:"update_time"`
	OwnerSetting       PrivacyOwnerSetting  `json:"owner_setting"`
	PrivacyDesc        PrivacyDescList      `json:"privacy_desc"`
	SDKPrivacyInfoList json.RawMessage      `json:"sdk_privacy_info_list"`
}

// PrivacyDescList is the Chinese name of every privacy key.
type PrivacyDescList struct {
	List []PrivacyDesc `json:"privacy_desc_list"`
}

// PrivacyDesc names a privacy key in Chinese.
type PrivacyDesc struct {
	PrivacyKey  string `json:"privacy_key"`
	PrivacyDesc string `json:"privacy_desc"`
}

// GetPrivacySetting reads the guideline of version ver (PrivacyLive or PrivacyDev; 0 sends none, which WeChat
// reads as dev).
func (c *Client) GetPrivacySetting(ctx context.Context, token string, ver int) (PrivacySettingInfo, error) {
	var out PrivacySettingInfo
	err := c.read(ctx, "getprivacysetting", "POST", "/cgi-bin/component/getprivacysetting", accessQuery(token),
		struct {
			Ver int `json:"privacy_ver,omitempty"`
		}{ver}, &out)
	return out, err
}

package sandbox

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"time"
)

// The 用户隐私保护指引 (addendum B.3): /cgi-bin/component/setprivacysetting
// and getprivacysetting, called with the mini program's authorizer token.
// privacy_ver 2 is the version under development; release makes it live
// (privacy_ver 1), which afterwards changes only its owner_setting.

// ownerSetting is the guideline's owner block.
type ownerSetting struct {
	ContactEmail         string `json:"contact_email,omitempty"`
	ContactPhone         string `json:"contact_phone,omitempty"`
	ContactQQ            string `json:"contact_qq,omitempty"`
	ContactWeixin        string `json:"contact_weixin,omitempty"`
	ExtFileMediaID       string `json:"ext_file_media_id,omitempty"`
	NoticeMethod         string `json:"notice_method"`
	StoreExpireTimestamp string `json:"store_expire_timestamp,omitempty"`
	StoreRegion          int    `json:"store_region,omitempty"`
}

// privacyItem is one setting_list entry: what the data is used for.
type privacyItem struct {
	Key  string `json:"privacy_key"`
	Text string `json:"privacy_text"`
}

type privacySetting struct {
	owner    ownerSetting
	settings []privacyItem
	updated  time.Time
}

// privacyLabels name the privacy keys (getprivacysetting's privacy_desc).
var privacyLabels = map[string]string{
	"UserInfo": "用户信息（微信昵称、头像）", "Location": "位置信息", "Address": "地址", "Invoice": "发票信息",
	"RunData": "微信运动步数", "Record": "麦克风", "Album": "选中的照片或视频信息", "Camera": "摄像头",
	"PhoneNumber": "手机号码", "Contact": "通讯录（仅写入）权限", "DeviceInfo": "设备信息",
	"EXIDNumber": "身份证号码", "EXOrderInfo": "订单信息", "EXUserPublishContent": "发布内容",
	"EXUserFollowAcct": "所关注账号", "EXUserOpLog": "操作日志", "AlbumWriteOnly": "相册（仅写入）权限",
	"LicensePlate": "车牌号", "BlueTooth": "蓝牙", "CalendarWriteOnly": "日历（仅写入）权限", "Email": "邮箱",
	"MessageFile": "选中的文件", "ChooseLocation": "选择的位置信息",
}

var storeExpirePattern = regexp.MustCompile(`^[0-9]+天$`)

// POST /cgi-bin/component/setprivacysetting. Checks: privacy_ver 1 or 2
// (86071, default 2); owner_setting with notice_method and at least one
// contact (86069); store_expire_timestamp "<n>天" when given (87072);
// privacy_ver 1 only once a version was released (86074), and then only
// owner_setting changes (ext_file_media_id kept).
func (s *Sandbox) apiSetPrivacySetting(c *apiCall) (any, *apiError) {
	var req struct {
		PrivacyVer   *int          `json:"privacy_ver"`
		OwnerSetting *ownerSetting `json:"owner_setting"`
		SettingList  []privacyItem `json:"setting_list"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e // owner_setting sent as a JSON string is 47001, as on WeChat
	}
	ver := 2
	if req.PrivacyVer != nil {
		ver = *req.PrivacyVer
	}
	o := req.OwnerSetting
	switch {
	case ver != 1 && ver != 2:
		return nil, errCode(CodePrivacyVersion)
	case o == nil || o.NoticeMethod == "" ||
		o.ContactEmail == "" && o.ContactPhone == "" && o.ContactQQ == "" && o.ContactWeixin == "":
		return nil, errCode(CodePrivacyOwnerSetting)
	case o.StoreExpireTimestamp != "" && !storeExpirePattern.MatchString(o.StoreExpireTimestamp):
		return nil, errCode(CodePrivacyStoreExpire)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	if ver == 1 {
		if m.privacyLiv == nil {
			return nil, errCode(CodePrivacyNoLive)
		}
		owner := *o
		owner.ExtFileMediaID = m.privacyLiv.owner.ExtFileMediaID
		m.privacyLiv.owner, m.privacyLiv.updated = owner, c.now
	} else {
		m.privacyDev = &privacySetting{owner: *o, settings: slices.Clone(req.SettingList), updated: c.now}
	}
	s.log.Info("privacy setting saved", "authorizer_appid", owner.acct.AppID, "privacy_ver", ver)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// POST /cgi-bin/component/getprivacysetting {"privacy_ver":1|2}: the
// setting and, for the committed code, the privacy keys it uses.
func (s *Sandbox) apiGetPrivacySetting(c *apiCall) (any, *apiError) {
	var req struct {
		PrivacyVer *int `json:"privacy_ver"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	ver := 2
	if req.PrivacyVer != nil {
		ver = *req.PrivacyVer
	}
	if ver != 1 && ver != 2 {
		return nil, errCode(CodePrivacyVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	p := m.privacyDev
	if ver == 1 {
		p = m.privacyLiv
	}
	codeExist, privacyList := 0, []string{}
	if m.exp != nil {
		codeExist, privacyList = 1, slices.Clone(m.exp.privacy)
	}
	type setting struct {
		privacyItem
		Label string `json:"privacy_label"`
	}
	settings := []setting{}
	owner, updated := ownerSetting{}, int64(0)
	if p != nil {
		for _, it := range p.settings {
			settings = append(settings, setting{it, privacyLabels[it.Key]})
		}
		owner, updated = p.owner, p.updated.Unix()
	}
	type desc struct {
		Key  string `json:"privacy_key"`
		Desc string `json:"privacy_desc"`
	}
	var descs []desc
	for _, k := range slices.Sorted(maps.Keys(privacyLabels)) {
		descs = append(descs, desc{k, privacyLabels[k]})
	}
	return map[string]any{
		"errcode": 0, "errmsg": "ok", "code_exist": codeExist, "privacy_list": privacyList,
		"setting_list": settings, "update_time": updated, "owner_setting": owner,
		"privacy_desc":          map[string]any{"privacy_desc_list": descs},
		"sdk_privacy_info_list": []json.RawMessage{},
	}, nil
}

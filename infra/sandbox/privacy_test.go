package sandbox

import "testing"

func TestPrivacySetting(t *testing.T) {
	ce := newCodeEnv(t)
	owner := func(k, v string) map[string]any {
		o := map[string]any{"contact_phone": "13800000000", "notice_method": "弹窗提示", "store_expire_timestamp": "30天", "ext_file_media_id": "doc1"}
		if k != "" {
			o[k] = v
		}
		return o
	}
	settings := []map[string]string{{"privacy_key": "PhoneNumber", "privacy_text": "登录"}, {"privacy_key": "Location", "privacy_text": "配送"}}
	set := func(body map[string]any) answer { return ce.wxa(t, "/cgi-bin/component/setprivacysetting", body) }
	get := func(ver int) answer {
		a := ce.wxa(t, "/cgi-bin/component/getprivacysetting", map[string]any{"privacy_ver": ver})
		wantCode(t, "getprivacysetting", a, 0)
		return a
	}

	cases := []struct {
		name string
		body map[string]any
		code int
	}{
		{"no owner_setting", map[string]any{"setting_list": settings}, CodePrivacyOwnerSetting},
		{"no notice_method", map[string]any{"owner_setting": owner("notice_method", "")}, CodePrivacyOwnerSetting},
		{"no contact", map[string]any{"owner_setting": owner("contact_phone", "")}, CodePrivacyOwnerSetting},
		{"privacy_ver 3", map[string]any{"privacy_ver": 3, "owner_setting": owner("", "")}, CodePrivacyVersion},
		{"store_expire_timestamp without 天", map[string]any{"owner_setting": owner("store_expire_timestamp", "30")}, CodePrivacyStoreExpire},
		{"live before any release", map[string]any{"privacy_ver": 1, "owner_setting": owner("", "")}, CodePrivacyNoLive},
		{"owner_setting as a string", map[string]any{"owner_setting": `{"notice_method":"x"}`}, CodeDataFormat},
	}
	for _, c := range cases {
		wantCode(t, c.name, set(c.body), c.code)
	}
	wantCode(t, "getprivacysetting ver 0", ce.wxa(t, "/cgi-bin/component/getprivacysetting", map[string]any{"privacy_ver": 0}), CodePrivacyVersion)

	if g := get(2); g.num("code_exist") != 0 || len(g["privacy_list"].([]any)) != 0 || len(g["setting_list"].([]any)) != 0 {
		t.Errorf("before anything %v", g)
	}
	wantCode(t, "set", set(map[string]any{"owner_setting": owner("", ""), "setting_list": settings}), 0)
	ce.commit(t, "1.0.0")
	g := get(2)
	list, _ := g["setting_list"].([]any)
	if g.num("code_exist") != 1 || len(g["privacy_list"].([]any)) != len(templatePrivacy) || len(list) != 2 ||
		list[0].(map[string]any)["privacy_label"] != "手机号码" || g.obj("owner_setting").str("contact_phone") != "13800000000" ||
		g.num("update_time") != ce.clock.Now().Unix() || g.obj("privacy_desc")["privacy_desc_list"] == nil {
		t.Errorf("dev setting %v", g)
	}
	if g := get(1); len(g["setting_list"].([]any)) != 0 {
		t.Errorf("live setting before a release %v", g)
	}

	// Release makes it live; privacy_ver 1 then changes the owner only.
	ce.submit(t)
	wantCode(t, "release", ce.wxa(t, "/wxa/release", map[string]any{}), 0)
	wantCode(t, "set live", set(map[string]any{"privacy_ver": 1, "owner_setting": owner("ext_file_media_id", "doc2"), "setting_list": settings[:1]}), 0)
	live := get(1)
	if o := live.obj("owner_setting"); len(live["setting_list"].([]any)) != 2 || o.str("ext_file_media_id") != "doc1" || o.str("notice_method") != "弹窗提示" {
		t.Errorf("live setting %v", live)
	}
}

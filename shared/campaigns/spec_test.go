package campaigns_test

import (
	"os"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/campaigns"
)

const valid = `{"type":"campaign","campaign_id":"spring-1","template_id":12,"user_version":"1.2.0","user_desc":"x",
 "ext_json":{"extAppid":"{{appid}}","n":1},"targets":{"appids":["wx5a1c0e8d2b7f3a01"]}}`

func TestValidCampaignsParse(t *testing.T) {
	s, err := campaigns.Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if s.CampaignID != "spring-1" || s.TemplateID != 12 || len(s.Targets.AppIDs) != 1 {
		t.Fatalf("parsed %+v", s)
	}
	// The examples in the repository are valid campaigns.
	for _, f := range []string{"../../examples/campaign.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := campaigns.Parse(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// A malformed campaign is refused with a reason an operator can act on.
func TestInvalidCampaignsAreRefusedWithTheReason(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"not JSON":                {`{"type":`, "not JSON"},
		"quoted template_id":      {strings.Replace(valid, `"template_id":12`, `"template_id":"12"`, 1), "/template_id"},
		"no targets":              {strings.Replace(valid, `"targets":{"appids":["wx5a1c0e8d2b7f3a01"]}`, `"targets":{}`, 1), "/targets"},
		"two kinds of target":     {strings.Replace(valid, `"targets":{`, `"targets":{"all":true,`, 1), "/targets"},
		"bad appid":               {strings.Replace(valid, "wx5a1c0e8d2b7f3a01", "gh_123", 1), "/targets/appids/0"},
		"unknown field":           {strings.Replace(valid, `"user_desc"`, `"usr_desc"`, 1), "usr_desc"},
		"user_version too long":   {strings.Replace(valid, `"1.2.0"`, `"`+strings.Repeat("9", 65)+`"`, 1), "/user_version"},
		"gray without percentage": {strings.Replace(valid, `"user_desc"`, `"release":{"mode":"gray"},"user_desc"`, 1), "gray_percentage"},
		"percentage without gray": {strings.Replace(valid, `"user_desc"`, `"release":{"gray_percentage":10},"user_desc"`, 1), "gray_percentage"},
		"items and derive":        {strings.Replace(valid, `"user_desc"`, `"audit":{"derive_item_list":true,"item_list":[{"address":"pages/index/index"}]},"user_desc"`, 1), "not both"},
		"privacy without contact": {strings.Replace(valid, `"user_desc"`, `"privacy":{"owner_setting":{"notice_method":"弹窗"}},"user_desc"`, 1), "contact"},
		"bad on_pending":          {strings.Replace(valid, `"user_desc"`, `"audit":{"on_pending":"retry"},"user_desc"`, 1), "/audit/on_pending"},
		"template 0":              {strings.Replace(valid, `"template_id":12`, `"template_id":0`, 1), "template_id 0"},
		"ext_json not an object":  {strings.Replace(valid, `"ext_json":{"extAppid":"{{appid}}","n":1}`, `"ext_json":"{}"`, 1), "/ext_json"},
		"bad campaign id":         {strings.Replace(valid, `"spring-1"`, `"spring 1!"`, 1), "/campaign_id"},
	} {
		_, err := campaigns.Parse([]byte(tc.body))
		if !campaigns.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an invalid campaign mentioning %q", name, err, tc.want)
		}
	}
}

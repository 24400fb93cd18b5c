package campaigns

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Schema is the JSON Schema of a campaign job (campaign.schema.json, also in the repository for operators).
//
//go:embed campaign.schema.json
var Schema []byte

// Spec is a campaign job: what to commit, to which mini programs, and how to audit and release it.
type Spec struct {
	jobs.Envelope
	CampaignID     string          `json:"campaign_id"`
	TemplateID     int64           `json:"template_id"`
	UserVersion    string          `json:"user_version"`
	UserDesc       string          `json:"user_desc,omitempty"`
	ExtJSON        json.RawMessage `json:"ext_json,omitempty"`
	Targets        Targets         `json:"targets"`
	Domains        *Domains        `json:"domains,omitempty"`
	WebviewDomains *WebviewDomains `json:"webview_domains,omitempty"`
	Testers        []string        `json:"testers,omitempty"`
	Privacy        *Privacy        `json:"privacy,omitempty"`
	Audit          Audit           `json:"audit,omitzero"`
	Release        Release         `json:"release,omitzero"`
}

// Targets names the mini programs: exactly one of the three.
type Targets struct {
	AppIDs []string `json:"appids,omitempty"`
	Tenant string   `json:"tenant,omitempty"`
	All    bool     `json:"all,omitempty"`
}

// Domains are server domains set before the commit.
type Domains struct {
	Directly bool   `json:"directly,omitempty"`
	Action   string `json:"action,omitempty"` // add, delete or set (default)
	wxapi.DomainList
}

// WebviewDomains are business domains set before the commit.
type WebviewDomains struct {
	Directly bool     `json:"directly,omitempty"`
	Action   string   `json:"action,omitempty"` // add, delete or set (default)
	Domains  []string `json:"webviewdomain"`
}

// Privacy is the user privacy guideline set after the commit (privacy_ver 2, the one the release takes).
type Privacy struct {
	OwnerSetting       wxapi.PrivacyOwnerSetting  `json:"owner_setting"`
	SettingList        []wxapi.PrivacySettingItem `json:"setting_list,omitempty"`
	SDKPrivacyInfoList json.RawMessage            `json:"sdk_privacy_info_list,omitempty"`
}

// Audit is the submit_audit request, and the policy for an audit already running.
type Audit struct {
	ItemList         []wxapi.AuditItem  `json:"item_list,omitempty"`
	DeriveItemList   bool               `json:"derive_item_list,omitempty"`
	PreviewInfo      *wxapi.PreviewInfo `json:"preview_info,omitempty"`
	VersionDesc      string             `json:"version_desc,omitempty"`
	FeedbackInfo     string             `json:"feedback_info,omitempty"`
	FeedbackStuff    string             `json:"feedback_stuff,omitempty"`
	UGCDeclare       *wxapi.UGCDeclare  `json:"ugc_declare,omitempty"`
	PrivacyAPINotUse bool               `json:"privacy_api_not_use,omitempty"`
	OrderPath        string             `json:"order_path,omitempty"`
	OnPending        string             `json:"on_pending,omitempty"` // wait (default), undo or fail
}

// 85009 policies.
const (
	OnPendingWait = "wait"
	OnPendingUndo = "undo"
	OnPendingFail = "fail"
)

// Release says what happens when an audit passes.
type Release struct {
	Mode                    string `json:"mode,omitempty"` // auto (default), manual or gray
	GrayPercentage          int    `json:"gray_percentage,omitempty"`
	SupportDebugerFirst     bool   `json:"support_debuger_first,omitempty"`
	SupportExperiencerFirst bool   `json:"support_experiencer_first,omitempty"`
}

// Release modes.
const (
	ModeAuto   = "auto"
	ModeManual = "manual"
	ModeGray   = "gray"
)

// InvalidError is a campaign that cannot run; Reason says why, for the operator.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "invalid campaign: " + e.Reason }

// IsInvalid reports whether err is an InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

func invalid(format string, a ...any) error { return &InvalidError{Reason: fmt.Sprintf(format, a...)} }

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("campaign.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("campaign.schema.json")
})

// Parse validates a campaign job against the schema and the rules the schema cannot say, and decodes it.
// Its errors are InvalidErrors, with a reason an operator can act on.
func Parse(body []byte) (Spec, error) {
	sch, err := compiled()
	if err != nil {
		return Spec{}, fmt.Errorf("campaign schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return Spec{}, invalid("not JSON: %v", err)
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return Spec{}, invalid("%s", schemaReason(ve))
		}
		return Spec{}, invalid("%v", err)
	}
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, invalid("%v", err)
	}
	if err := s.check(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

var english = message.NewPrinter(language.English)

// schemaReason is the validation error's leaves on one line: "at /targets: ...; at /user_version: ...".
func schemaReason(ve *jsonschema.ValidationError) string {
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, "at /"+strings.Join(e.InstanceLocation, "/")+": "+e.ErrorKind.LocalizedString(english))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

// check is what the schema cannot say.
func (s Spec) check() error {
	switch {
	case s.Release.Mode == ModeGray && s.Release.GrayPercentage == 0:
		return invalid("release mode gray needs gray_percentage (1 to 100)")
	case s.Release.Mode != ModeGray && s.Release.GrayPercentage != 0:
		return invalid("gray_percentage is for release mode gray")
	case s.Audit.DeriveItemList && len(s.Audit.ItemList) > 0:
		return invalid("audit: give item_list or derive_item_list, not both")
	case s.TemplateID == 0:
		return invalid("template_id 0 is not a template")
	}
	if s.Privacy != nil {
		if err := s.privacySetting().Validate(); err != nil {
			return invalid("privacy: %v", err)
		}
	}
	if _, err := s.extJSON(Target{AppID: "wx0000000000000000"}); err != nil {
		return err
	}
	return nil
}

func (s Spec) privacySetting() wxapi.PrivacySetting {
	p := s.Privacy
	return wxapi.PrivacySetting{PrivacyVer: wxapi.PrivacyDev, OwnerSetting: p.OwnerSetting, SettingList: p.SettingList,
		SDKPrivacyInfoList: p.SDKPrivacyInfoList}
}

// Target is one mini program of a campaign.
type Target struct {
	AppID  string
	Tenant string
}

// extJSON is the ext_json for t: every string value with its placeholders replaced.
func (s Spec) extJSON(t Target) (string, error) {
	if len(s.ExtJSON) == 0 {
		return "{}", nil
	}
	dec := json.NewDecoder(bytes.NewReader(s.ExtJSON))
	dec.UseNumber() // numbers stay as written
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", invalid("ext_json: %v", err)
	}
	r := strings.NewReplacer("{{appid}}", t.AppID, "{{tenant}}", t.Tenant, "{{campaign_id}}", s.CampaignID,
		"{{user_version}}", s.UserVersion)
	out, err := json.Marshal(substitute(v, r))
	if err != nil {
		return "", invalid("ext_json: %v", err)
	}
	return string(out), nil
}

func substitute(v any, r *strings.Replacer) any {
	switch x := v.(type) {
	case string:
		return r.Replace(x)
	case map[string]any:
		for k, e := range x {
			x[k] = substitute(e, r)
		}
	case []any:
		for i, e := range x {
			x[i] = substitute(e, r)
		}
	}
	return v
}

// hash identifies the campaign's content: the same campaign sent twice is one campaign.
func (s Spec) hash() string {
	s.Envelope = jobs.Envelope{}
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// needsSetup reports whether apps set domains or testers before the commit.
func (s Spec) needsSetup() bool {
	return s.Domains != nil || s.WebviewDomains != nil || len(s.Testers) > 0
}

func (s Spec) mode() string {
	if s.Release.Mode == "" {
		return ModeAuto
	}
	return s.Release.Mode
}

func (s Spec) onPending() string {
	if s.Audit.OnPending == "" {
		return OnPendingWait
	}
	return s.Audit.OnPending
}

func (s Spec) submitRequest() wxapi.SubmitAuditRequest {
	a := s.Audit
	return wxapi.SubmitAuditRequest{ItemList: a.ItemList, PreviewInfo: a.PreviewInfo, VersionDesc: a.VersionDesc,
		FeedbackInfo: a.FeedbackInfo, FeedbackStuff: a.FeedbackStuff, UGCDeclare: a.UGCDeclare,
		PrivacyAPINotUse: a.PrivacyAPINotUse, OrderPath: a.OrderPath}
}

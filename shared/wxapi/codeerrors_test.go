package wxapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxapi"
)

func TestCodeErrorsAreTyped(t *testing.T) {
	sentinels := map[string]error{
		"ErrAuditPending": wxapi.ErrAuditPending, "ErrPrivacyScanPending": wxapi.ErrPrivacyScanPending,
		"ErrPrivacyAPI": wxapi.ErrPrivacyAPI, "ErrAuditQuota": wxapi.ErrAuditQuota, "ErrNoAudit": wxapi.ErrNoAudit,
		"ErrNoAuditedVersion": wxapi.ErrNoAuditedVersion, "ErrReleaseNotAllowed": wxapi.ErrReleaseNotAllowed,
		"ErrNoCommittedCode": wxapi.ErrNoCommittedCode, "ErrTemplateNotFound": wxapi.ErrTemplateNotFound,
		"ErrInvalidExtJSON": wxapi.ErrInvalidExtJSON, "ErrProfileIncomplete": wxapi.ErrProfileIncomplete,
	}
	for _, tc := range []struct {
		code int
		want string
	}{
		{85009, "ErrAuditPending"}, {61039, "ErrPrivacyScanPending"}, {61040, "ErrPrivacyAPI"}, {85085, "ErrAuditQuota"},
		{85058, "ErrNoAudit"}, {85019, "ErrNoAuditedVersion"}, {85020, "ErrReleaseNotAllowed"},
		{85086, "ErrNoCommittedCode"}, {86001, "ErrNoCommittedCode"}, {85014, "ErrTemplateNotFound"},
		{85064, "ErrTemplateNotFound"}, {85013, "ErrInvalidExtJSON"}, {86002, "ErrProfileIncomplete"},
		{40001, ""}, {85012, ""},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, fmt.Sprintf(`{"errcode":%d,"errmsg":"x"}`, tc.code)))
			c, _ := newClient(f.srv.URL)
			_, err := c.GetPage(context.Background(), authToken)
			for name, target := range sentinels {
				if errors.Is(err, target) != (name == tc.want) {
					t.Errorf("errors.Is(%v, %s) = %v", err, name, !(name == tc.want))
				}
			}
			// WeChat's own code and error stay reachable.
			var we *wxapi.Error
			if wxapi.Code(err) != tc.code || !errors.As(err, &we) || we.API != "get_page" {
				t.Errorf("Code = %d, As = %+v; want %d from get_page", wxapi.Code(err), we, tc.code)
			}
			if err.Error() != fmt.Sprintf("wechat get_page: errcode %d: x", tc.code) {
				t.Errorf("message %q changed by the alias", err)
			}
		})
	}
}

func TestCodeErrorGroups(t *testing.T) {
	groups := map[string]func(error) bool{
		"payload": wxapi.IsAuditPayloadError, "config": wxapi.IsCodeConfigError, "restricted": wxapi.IsSubmitRestricted,
	}
	members := map[string][]int{
		"payload":    {85006, 85007, 85008, 85010, 85011, 85023, 85051, 85077},
		"config":     {85013, 85043, 85044, 85045, 85046, 85047, 85048, 85087},
		"restricted": {86007, 86008, 86009, 86010},
	}
	for name, is := range groups {
		for other, codes := range members {
			for _, code := range codes {
				err := fmt.Errorf("submit: %w", &wxapi.Error{API: "submit_audit", Code: code})
				if is(err) != (name == other) {
					t.Errorf("%s(%d) = %v", name, code, !(name == other))
				}
			}
		}
		for _, code := range []int{0, -1, 85085, 85009, 40001} {
			if is(&wxapi.Error{Code: code}) {
				t.Errorf("%s(%d) = true", name, code)
			}
		}
	}
}

func TestCodeValidationSendsNothing(t *testing.T) {
	ctx := context.Background()
	okExt := `{"extAppid":"wx1"}`
	for _, tc := range []struct {
		name   string
		call   func(c *wxapi.Client) error
		target error // the error matched, if any
	}{
		{"user_version too long", func(c *wxapi.Client) error {
			return c.Commit(ctx, authToken, wxapi.CommitRequest{TemplateID: 1, ExtJSON: okExt, UserVersion: strings.Repeat("版", 65)})
		}, nil},
		{"no user_version", func(c *wxapi.Client) error {
			return c.Commit(ctx, authToken, wxapi.CommitRequest{TemplateID: 1, ExtJSON: okExt})
		}, nil},
		{"ext_json not JSON", func(c *wxapi.Client) error {
			return c.Commit(ctx, authToken, wxapi.CommitRequest{TemplateID: 1, ExtJSON: `{"extAppid":`, UserVersion: "1"})
		}, wxapi.ErrInvalidExtJSON},
		{"ext_json not an object", func(c *wxapi.Client) error {
			return c.Commit(ctx, authToken, wxapi.CommitRequest{TemplateID: 1, ExtJSON: `"{}"`, UserVersion: "1"})
		}, wxapi.ErrInvalidExtJSON},
		{"ext_json empty", func(c *wxapi.Client) error {
			return c.Commit(ctx, authToken, wxapi.CommitRequest{TemplateID: 1, UserVersion: "1"})
		}, wxapi.ErrInvalidExtJSON},
		{"domain action", func(c *wxapi.Client) error {
			_, err := c.ModifyDomain(ctx, authToken, wxapi.DomainRequest{Action: "replace"})
			return err
		}, nil},
		{"webview action missing", func(c *wxapi.Client) error {
			_, err := c.SetWebviewDomain(ctx, authToken, "", nil)
			return err
		}, nil},
		{"visit action", func(c *wxapi.Client) error { return c.ChangeVisitStatus(ctx, authToken, "pause") }, nil},
		{"gray percentage", func(c *wxapi.Client) error {
			return c.GrayRelease(ctx, authToken, wxapi.GrayRelease{Percentage: 101})
		}, nil},
		{"gray zero without flag", func(c *wxapi.Client) error {
			return c.GrayRelease(ctx, authToken, wxapi.GrayRelease{})
		}, nil},
		{"tester unnamed", func(c *wxapi.Client) error { return c.UnbindTester(ctx, authToken, "", "") }, nil},
		{"privacy notice_method", func(c *wxapi.Client) error {
			return c.SetPrivacySetting(ctx, authToken, wxapi.PrivacySetting{OwnerSetting: wxapi.PrivacyOwnerSetting{ContactEmail: "a@b.c"}})
		}, nil},
		{"privacy contact", func(c *wxapi.Client) error {
			return c.SetPrivacySetting(ctx, authToken, wxapi.PrivacySetting{OwnerSetting: wxapi.PrivacyOwnerSetting{NoticeMethod: "弹窗"}})
		}, nil},
		{"privacy live with settings", func(c *wxapi.Client) error {
			return c.SetPrivacySetting(ctx, authToken, wxapi.PrivacySetting{PrivacyVer: wxapi.PrivacyLive,
				OwnerSetting: wxapi.PrivacyOwnerSetting{NoticeMethod: "弹窗", ContactQQ: "10000"},
				SettingList:  []wxapi.PrivacySettingItem{{PrivacyKey: "UserInfo", PrivacyText: "登录"}}})
		}, nil},
		{"privacy version", func(c *wxapi.Client) error {
			return c.SetPrivacySetting(ctx, authToken, wxapi.PrivacySetting{PrivacyVer: 3,
				OwnerSetting: wxapi.PrivacyOwnerSetting{NoticeMethod: "弹窗", ContactQQ: "10000"}})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, answerOK))
			c, _ := newClient(f.srv.URL)
			err := tc.call(c)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("err %v does not match %v", err, tc.target)
			}
			if n := f.count(); n != 0 {
				t.Errorf("%d requests sent, want 0", n)
			}
		})
	}
}

// A success without the id a later call needs is an error, not a zero to store.
func TestCodeAnswersMissingTheirField(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, always(http.StatusOK, answerOK))
	c, _ := newClient(f.srv.URL)
	if _, err := c.SubmitAudit(ctx, authToken, wxapi.SubmitAuditRequest{}); err == nil || !strings.Contains(err.Error(), "auditid") {
		t.Errorf("SubmitAudit: %v, want an error naming auditid", err)
	}
	if _, err := c.BindTester(ctx, authToken, "testid"); err == nil || !strings.Contains(err.Error(), "userstr") {
		t.Errorf("BindTester: %v, want an error naming userstr", err)
	}
}

// No error of a code-management call carries a token, whatever went wrong.
func TestCodeErrorsCarryNoToken(t *testing.T) {
	secrets := []string{authToken, compToken, url.QueryEscape(authToken), url.QueryEscape(compToken)}
	closedPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	kinds := map[string]func(t *testing.T) string{
		"connection refused": closedPort,
		"timeout":            func(t *testing.T) string { return newFake(t, hang(testDone(t))).srv.URL },
		"HTTP 500":           func(t *testing.T) string { return newFake(t, always(http.StatusInternalServerError, "")).srv.URL },
		"errcode": func(t *testing.T) string {
			return newFake(t, always(http.StatusOK, `{"errcode":40001,"errmsg":"invalid credential"}`)).srv.URL
		},
		"non-JSON": func(t *testing.T) string { return newFake(t, always(http.StatusOK, "<html>")).srv.URL },
	}
	type call struct {
		name string
		do   func(c *wxapi.Client) (any, error)
	}
	calls := []call{{"get_qrcode", func(c *wxapi.Client) (any, error) {
		return c.GetQRCode(context.Background(), authToken, "page/index")
	}}}
	for _, tc := range codeCases() {
		calls = append(calls, call{tc.name, tc.call})
	}
	for kind, base := range kinds {
		for _, cl := range calls {
			t.Run(kind+"/"+cl.name, func(t *testing.T) {
				t.Parallel()
				c, logs := newClient(base(t))
				c.MaxAttempts = 2
				c.Timeout = 100 * time.Millisecond
				_, err := cl.do(c)
				if err == nil {
					t.Fatal("want an error")
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains token %q", err, s)
					}
					if strings.Contains(logs.String(), s) {
						t.Errorf("log contains token %q", s)
					}
				}
			})
		}
	}
}

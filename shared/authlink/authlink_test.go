package authlink_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authlink"
)

var key = []byte("link-key-for-tests-0123456789")

func parse(t *testing.T, rawURL string, now time.Time) (authlink.Link, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return authlink.Parse(key, u.Query(), now)
}

func TestSignedLinkRoundTrips(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	l := authlink.Link{Tenant: "shop-1", Expires: exp, AuthType: "2", BizAppID: "wx5a1c0e8d2b7f3a01", ReturnURL: "https://shop.example.com/done?x=1&y=2"}
	u, err := l.URL(key, "https://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "https://api.example.com/auth/start?") {
		t.Fatalf("link %s", u)
	}
	got, err := parse(t, u, exp.Add(-time.Second))
	if err != nil || got != l {
		t.Fatalf("parsed %+v, %v; want %+v", got, err, l)
	}
	// WeChat appends its own parameters to links shared in chats; they are not signed and not used.
	if got, err := parse(t, u+"&from=singlemessage&isappinstalled=0", exp.Add(-time.Second)); err != nil || got != l {
		t.Fatalf("with WeChat's parameters: %+v, %v", got, err)
	}
	minimal, _ := authlink.Link{Tenant: "t1", Expires: exp}.URL(key, "https://api.example.com")
	if got, err := parse(t, minimal, exp.Add(-time.Hour)); err != nil || got.AuthType != "" || got.ReturnURL != "" {
		t.Fatalf("minimal link: %+v, %v", got, err)
	}
}

func TestLinksNotSignedAsIssuedAreRefused(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	now := exp.Add(-time.Hour)
	good, _ := authlink.Link{Tenant: "t1", Expires: exp, AuthType: "2"}.URL(key, "https://api.example.com")
	gu, _ := url.Parse(good)
	with := func(name, value string) string {
		q := gu.Query()
		if value == "" {
			q.Del(name)
		} else {
			q.Set(name, value)
		}
		u := *gu
		u.RawQuery = q.Encode()
		return u.String()
	}
	otherKey, _ := authlink.Link{Tenant: "t1", Expires: exp, AuthType: "2"}.URL([]byte("another-key-another-key-another"), "https://api.example.com")
	for name, tc := range map[string]struct {
		url  string
		want error
	}{
		"unsigned":            {with("sig", ""), authlink.ErrUnsigned},
		"other tenant":        {with("tenant", "t2"), authlink.ErrSignature},
		"auth_type removed":   {with("auth_type", ""), authlink.ErrSignature},
		"auth_type changed":   {with("auth_type", "3"), authlink.ErrSignature},
		"return_url added":    {with("return_url", "https://evil.example.net/"), authlink.ErrSignature},
		"biz_appid added":     {with("biz_appid", "wx5a1c0e8d2b7f3a01"), authlink.ErrSignature},
		"expiry moved":        {with("exp", "1999999999"), authlink.ErrSignature},
		"signature not b64":   {with("sig", "!!!"), authlink.ErrSignature},
		"signed by other key": {otherKey, authlink.ErrSignature},
	} {
		if _, err := parse(t, tc.url, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	sig := gu.Query().Get("sig")
	for i := range len(sig) {
		b := []byte(sig)
		b[i] ^= 0x01
		if b[i] == '.' || b[i] == '/' || b[i] == '+' { // stay inside the base64url alphabet
			b[i] = 'A' + byte(i%26)
		}
		if string(b) == sig {
			continue
		}
		if _, err := parse(t, with("sig", string(b)), now); err == nil {
			t.Errorf("signature changed at position %d accepted", i)
		}
	}
	if l, err := parse(t, good, exp); !errors.Is(err, authlink.ErrExpired) || l.Tenant != "t1" {
		t.Errorf("expired: %+v, %v", l, err)
	}
}

func TestLinkContentIsValidated(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	for name, l := range map[string]authlink.Link{
		"no tenant":       {Expires: exp},
		"bad tenant":      {Tenant: "a b", Expires: exp},
		"long tenant":     {Tenant: strings.Repeat("a", 65), Expires: exp},
		"bad auth_type":   {Tenant: "t", Expires: exp, AuthType: "4"},
		"bad biz_appid":   {Tenant: "t", Expires: exp, BizAppID: "gh_0123456789abcdef"},
		"javascript: URL": {Tenant: "t", Expires: exp, ReturnURL: "javascript:alert(1)"},
		"relative URL":    {Tenant: "t", Expires: exp, ReturnURL: "/after"},
		"no expiry":       {Tenant: "t"},
		"huge return_url": {Tenant: "t", Expires: exp, ReturnURL: "https://a.example.com/" + strings.Repeat("x", 1100)},
	} {
		if _, err := l.URL(key, "https://api.example.com"); !errors.Is(err, authlink.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := (authlink.Link{Tenant: "t", Expires: exp}).URL([]byte("short"), "https://api.example.com"); err == nil {
		t.Error("a short key signed a link")
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "366d": authlink.MaxTTL} {
		if got, err := authlink.ParseTTL(in); err != nil || got != want {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0d", "-1h", "367d", "7x", "d", "1.5d"} {
		if _, err := authlink.ParseTTL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLinkSignatureIsComparedInConstantTime(t *testing.T) {
	testenv.AssertConstantTimeComparisons(t, ".", "Parse")
}

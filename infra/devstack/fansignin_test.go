package devstack_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/fanauth"
)

// wechatPhone is a phone-sized screen with WeChat's in-app browser's user agent.
var wechatPhone = device.Info{
	Name: "WeChat on iPhone",
	UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " +
		"Mobile/15E148 MicroMessenger/8.0.50(0x1800323b) NetType/WIFI Language/zh_CN",
	Width: 390, Height: 844, Scale: 3, Mobile: true, Touch: true,
}

// TestFanSignsInOnAMerchantPage is README's fan sign-in walk-through in headless Chromium against the stack
// `make dev` runs: an official account authorized for tenant demo, the page's origin allowed with the CLI, then
// a fan on a phone in WeChat signs in with consent, refuses, and signs in silently as a fan who does not
// follow the account. The identities are verified with the secret the CLI printed.
func TestFanSignsInOnAMerchantPage(t *testing.T) {
	testenv.DynamoDB(t)
	testenv.SQS(t)
	chromium := chromiumPath(t)
	stack, _, logs := startStack(t)
	shots := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "screenshots")
	}
	b := newBrowser(t, chromium)
	wxtpp := buildCLI(t)
	b.do(t, chromedp.Emulate(wechatPhone))

	// 1. The merchant authorizes an official account for tenant demo (inside WeChat: the mobile button).
	link, err := stack.AuthLink(devstack.DemoTenant, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("authorize-mobile")),
		chromedp.Click(chromedp.ID("authorize-mobile")), chromedp.WaitVisible(chromedp.ID("authorize-"+sandboxOfficialAccount)),
		chromedp.Click(chromedp.ID("authorize-"+sandboxOfficialAccount)), chromedp.WaitVisible(chromedp.ID("account-name")))

	// Until the provider allows the page's origin, the sign-in refuses to return there (no WeChat call).
	merchant := stack.URL + devstack.MerchantPath
	b.do(t, chromedp.Navigate(merchant), chromedp.WaitVisible(chromedp.ID("origin-missing")),
		chromedp.Click(chromedp.ID("signin-base-"+sandboxOfficialAccount)), chromedp.WaitVisible(chromedp.ID("error")))
	if msg := b.text(t, "error"); !strings.Contains(msg, "return_url") {
		t.Errorf("origin not allowed: error page says %q", msg)
	}
	if n := stack.Sandbox.Calls("oauth2_authorize"); n != 0 {
		t.Errorf("a refused start reached WeChat's authorize page %d times", n)
	}

	// 2. The provider allows it; the secret is printed once.
	var set struct {
		SigningSecret string `json:"signing_secret"`
	}
	out := operator(t, wxtpp, stack, "tenant", "set", devstack.DemoTenant, "--return-origin", stack.URL, "--json")
	if err := json.Unmarshal([]byte(out), &set); err != nil || set.SigningSecret == "" {
		t.Fatalf("tenant set --return-origin: %v\n%s", err, out)
	}
	verify := func(what string) fanauth.Identity {
		t.Helper()
		loc, err := chromedp.Run(b.ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(loc)
		if !strings.HasPrefix(loc, merchant) {
			t.Fatalf("%s: landed on %s, want the merchant page", what, u.Redacted())
		}
		id, err := fanauth.Verify(set.SigningSecret, u.Query().Get("wx_identity"), stack.URL, devstack.DemoTenant, time.Now())
		if err != nil {
			t.Fatalf("%s: wx_identity does not verify with the tenant's secret: %v", what, err)
		}
		return id
	}

	// 3. 小明 (follows the account) signs in with consent.
	b.do(t, chromedp.Navigate(merchant), chromedp.WaitVisible(chromedp.ID("signin-userinfo-"+sandboxOfficialAccount)),
		chromedp.Click(chromedp.ID("signin-userinfo-"+sandboxOfficialAccount)), chromedp.WaitVisible(chromedp.ID("oauth-allow")))
	b.screenshot(t, filepath.Join(shots, "fan-consent.png"))
	b.do(t, chromedp.Click(chromedp.ID("oauth-allow")), chromedp.WaitVisible(chromedp.ID("identity-verified")))
	b.screenshot(t, filepath.Join(shots, "fan-identity.png"))
	id := verify("consent")
	if id.Subject != stack.Sandbox.OpenID(sandboxOfficialAccount, "fan-1") || id.Scope != "snsapi_userinfo" || id.NickName != "小明" ||
		id.Subscribe == nil || !*id.Subscribe || id.UnionID != stack.Sandbox.UnionID("fan-1") {
		t.Errorf("consent: claims %+v", id)
	}
	if s := b.text(t, "claim-subscribe"); s != "true" {
		t.Errorf("the page shows subscribe %q", s)
	}

	// The fan refuses: the page gets error=access_denied and no identity.
	b.do(t, chromedp.Navigate(merchant), chromedp.WaitVisible(chromedp.ID("signin-userinfo-"+sandboxOfficialAccount)),
		chromedp.Click(chromedp.ID("signin-userinfo-"+sandboxOfficialAccount)), chromedp.WaitVisible(chromedp.ID("oauth-refuse")),
		chromedp.Click(chromedp.ID("oauth-refuse")), chromedp.WaitVisible(chromedp.ID("signin-error")))
	if msg := b.text(t, "signin-error"); !strings.Contains(msg, "access_denied") {
		t.Errorf("refusal: the page says %q", msg)
	}
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); strings.Contains(loc, "wx_identity") {
		t.Error("a refusal carried an identity")
	}

	// 4. 小红 follows no account: a silent sign-in says so.
	b.do(t, chromedp.Navigate(stack.SandboxURL+"/sandbox/fans?use=fan-2"), chromedp.WaitVisible(chromedp.ID("fans")),
		chromedp.Navigate(merchant), chromedp.WaitVisible(chromedp.ID("signin-base-"+sandboxOfficialAccount)),
		chromedp.Click(chromedp.ID("signin-base-"+sandboxOfficialAccount)), chromedp.WaitVisible(chromedp.ID("identity-verified")))
	id = verify("silent")
	if id.Subject != stack.Sandbox.OpenID(sandboxOfficialAccount, "fan-2") || id.Scope != "snsapi_base" || id.NickName != "" ||
		id.Subscribe == nil || *id.Subscribe {
		t.Errorf("silent: claims %+v", id)
	}
	if s := b.text(t, "claim-subscribe"); s != "false" {
		t.Errorf("the page shows subscribe %q", s)
	}

	if err := stack.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	a, _ := stack.Store.Authorizer(context.Background(), sandboxOfficialAccount)
	for name, v := range map[string]string{"signing secret": set.SigningSecret, "access token": a.AccessToken, "refresh token": a.RefreshToken} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("the %s appeared in the logs", name)
		}
	}
}

package devstack_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// webhook is a merchant's server: it verifies each delivery's signature and keeps the notifications.
type webhook struct {
	mu     sync.Mutex
	secret string
	bad    int
	got    []relay.Delivery
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !relay.Verify(w.secret, r.Header.Get(relay.HeaderTimestamp), r.Header.Get(relay.HeaderSignature), body, time.Now(), 5*time.Minute) {
		w.bad++
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	var d relay.Delivery
	if json.Unmarshal(body, &d) == nil && d.Notification != nil {
		w.got = append(w.got, d)
	}
	io.WriteString(rw, "ok")
}

// has reports whether a notification of typ for appid arrived, and returns it.
func (w *webhook) has(typ, appid string) (relay.Delivery, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.got {
		if d.Notification.Type == typ && d.AppID == appid {
			return d, true
		}
	}
	return relay.Delivery{}, false
}

// TestTenantHearsOfItsAccountsAndApps: through the real binaries, a tenant's webhook receives signed
// notifications when its accounts are authorized, released by a campaign, must re-authorize (found by a call
// through the IAM gateway) and are revoked.
func TestTenantHearsOfItsAccountsAndApps(t *testing.T) {
	stack, opts, _ := startStack(t)
	ctx := context.Background()
	bin := buildCLI(t)
	hook := &webhook{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	var set struct {
		SigningSecret string `json:"signing_secret"`
	}
	if err := json.Unmarshal([]byte(operator(t, bin, stack, "tenant", "set", devstack.DemoTenant, "--webhook", srv.URL+"/wx", "--json")), &set); err != nil {
		t.Fatal(err)
	}
	hook.mu.Lock()
	hook.secret = set.SigningSecret
	hook.mu.Unlock()

	// The merchant authorizes through a pre_auth_code the platform issued for tenant demo.
	api := &wxapi.Client{BaseURL: stack.SandboxURL, Timeout: 5 * time.Second}
	comp := credentials.NewComponent(stack.Store, api, opts.ComponentAppID, opts.ComponentSecret, credentials.Options{})
	svc := authorization.New(stack.Store, comp, api)
	var apps []string
	for _, a := range stack.Sandbox.Accounts() { // mini programs first, then official accounts
		pre, _, err := svc.PreAuthCode(ctx, devstack.DemoTenant)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stack.Sandbox.Authorize(ctx, a.AppID, pre); err != nil {
			t.Fatal(err)
		}
		apps = append(apps, a.AppID)
		testenv.Eventually(t, 20*time.Second, a.AppID+" authorized for tenant demo", func() bool {
			got, err := stack.Store.Authorizer(ctx, a.AppID)
			return err == nil && got.Tenant == devstack.DemoTenant
		})
	}
	for _, id := range apps {
		testenv.Eventually(t, 30*time.Second, "account.authorized for "+id, func() bool {
			d, ok := hook.has(lifecycle.AccountAuthorized, id)
			return ok && d.Tenant == devstack.DemoTenant && d.Notification.Details["permission_sets"] != nil
		})
	}

	// A campaign's released apps.
	operator(t, bin, stack, "templates", "add", "3")
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	job := strings.Replace(string(example), `"targets": {"all": true}`, `"targets": {"tenant": "demo"}`, 1)
	file := filepath.Join(t.TempDir(), "campaign.json")
	if err := os.WriteFile(file, []byte(job), 0o600); err != nil {
		t.Fatal(err)
	}
	operator(t, bin, stack, "campaign", "start", file)
	for _, id := range apps {
		if a, _ := stack.Store.Authorizer(ctx, id); a.Kind != tokenstore.KindMiniProgram {
			continue
		}
		testenv.Eventually(t, 90*time.Second, "campaign.app_released for "+id, func() bool {
			d, ok := hook.has(lifecycle.CampaignAppReleased, id)
			return ok && d.Notification.Details["campaign_id"] == "demo-1"
		})
	}

	// A mini program whose refresh token WeChat no longer takes: a provider's call through the gateway finds
	// it (40001, then the refresh fails with 61023) and the tenant is told.
	mp := apps[0]
	stack.Sandbox.InvalidateRefreshToken(mp)
	stack.Sandbox.InvalidateAccessTokens(mp)
	req, _ := http.NewRequest("GET", stack.URL+"/v1/authorizers/"+mp+"/wechat/cgi-bin/account/getaccountbasicinfo", nil)
	sum := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, localrun.LocalCredentials, req, hex.EncodeToString(sum[:]), "execute-api", opts.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("gateway call for an account that must re-authorize: %d %s", resp.StatusCode, body)
	}
	testenv.Eventually(t, 30*time.Second, "account.needs_reauth for "+mp, func() bool {
		d, ok := hook.has(lifecycle.AccountNeedsReauth, mp)
		return ok && strings.Contains(d.Notification.Details["reason"].(string), strconv.Itoa(61023))
	})

	// Revoked on WeChat's side.
	oa := apps[len(apps)-1]
	if err := stack.Sandbox.Revoke(ctx, oa); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "account.revoked for "+oa, func() bool {
		_, ok := hook.has(lifecycle.AccountRevoked, oa)
		return ok
	})
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.bad != 0 {
		t.Errorf("%d deliveries failed the signature check", hook.bad)
	}
}

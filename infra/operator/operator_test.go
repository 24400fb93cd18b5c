package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/operator"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authlink"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
)

const linkKey = "operator-test-link-key-0123456789"

type cli struct {
	t   *testing.T
	env map[string]string
	now time.Time
	// For the campaign commands: what `-` reads, whether stdout counts as a terminal, the redraw interval.
	stdin    string
	terminal bool
	interval time.Duration
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	db := testenv.DynamoDB(t)
	return &cli{t: t, now: time.Now(), env: map[string]string{
		"TABLE_NAME": testenv.Table(t, db), "PUBLIC_BASE_URL": "https://wx.example.com", "LINK_SIGNING_KEY": linkKey,
	}}
}

// run runs one command line as the wxtpp binary would, returning its exit code and output.
func (c *cli) run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := c.operator(&out, &errOut).Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// operator is the CLI as the binary builds it, writing to stdout and stderr.
func (c *cli) operator(stdout, stderr io.Writer) *operator.CLI {
	getenv := func(k string) string {
		if v, ok := c.env[k]; ok {
			return v
		}
		return os.Getenv(k) // the emulator endpoints and dummy credentials
	}
	return &operator.CLI{Getenv: getenv, Stdin: strings.NewReader(c.stdin), Stdout: stdout, Stderr: stderr,
		Now: func() time.Time { return c.now }, IsTerminal: func() bool { return c.terminal }, Interval: c.interval}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestTenantSetCreatesThenUpdates(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("tenant", "set", "shop-1", "--name", "鲜果时光")
	if code != 0 || !strings.Contains(out, "tenant shop-1 created") || !strings.Contains(out, "鲜果时光") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	// Flags before the id work too; without --name the name stays.
	code, out, _ = c.run("tenant", "set", "--json", "shop-1")
	var got struct {
		ID, Name  string
		Created   bool
		CreatedAt int64 `json:"created_at"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.ID != "shop-1" || got.Name != "鲜果时光" || got.Created || got.CreatedAt == 0 {
		t.Fatalf("update --json: exit %d, %+v\n%s", code, got, out)
	}
	if code, out, _ := c.run("tenant", "show", "shop-1", "--json"); code != 0 || !strings.Contains(out, `"name": "鲜果时光"`) {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	if code, _, errOut := c.run("tenant", "show", "nobody"); code != 1 || !strings.Contains(errOut, "no such tenant") {
		t.Fatalf("show unknown: exit %d\n%s", code, errOut)
	}
}

func TestAuthLinkPrintsASignedLinkForAKnownTenant(t *testing.T) {
	c := newCLI(t)
	if code, _, errOut := c.run("auth-link", "--tenant", "shop-1"); code != 1 || !strings.Contains(errOut, "wxtpp tenant set shop-1") {
		t.Fatalf("unknown tenant: exit %d\n%s", code, errOut)
	}
	c.run("tenant", "set", "shop-1")
	code, out, errOut := c.run("auth-link", "--tenant", "shop-1", "--ttl", "2d", "--auth-type", "2")
	if code != 0 {
		t.Fatalf("auth-link: exit %d\n%s", code, errOut)
	}
	u, err := url.Parse(lastLine(out))
	if err != nil || u.Scheme != "https" || u.Host != "wx.example.com" || u.Path != "/auth/start" {
		t.Fatalf("last line is not the link: %q", lastLine(out))
	}
	l, err := authlink.Parse([]byte(linkKey), u.Query(), c.now)
	if err != nil || l.Tenant != "shop-1" || l.AuthType != "2" || !l.Expires.Equal(c.now.Add(48*time.Hour).Truncate(time.Second)) {
		t.Fatalf("link: %+v, %v", l, err)
	}
	code, out, _ = c.run("auth-link", "--json", "--tenant", "shop-1")
	var j struct{ Tenant, Link, ExpiresAt string }
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Tenant != "shop-1" || !strings.HasPrefix(j.Link, "https://wx.example.com/auth/start?") {
		t.Fatalf("--json: exit %d\n%s", code, out)
	}
}

func TestCommandLineMistakesAreUsageErrors(t *testing.T) {
	c := newCLI(t)
	c.run("tenant", "set", "shop-1")
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"tenant"}, {"tenant", "delete", "x"}, {"tenant", "set"}, {"tenant", "set", "a b"},
		{"auth-link"}, {"auth-link", "--tenant", "shop-1", "--auth-type", "5"}, {"auth-link", "--tenant", "shop-1", "--ttl", "400d"},
		{"auth-link", "--tenant", "shop-1", "--return-url", "javascript:alert(1)"}, {"auth-link", "shop-1"},
	} {
		if code, _, errOut := c.run(args...); code != 2 || !strings.HasPrefix(errOut, "wxtpp: ") {
			t.Errorf("%q: exit %d\n%s", args, code, errOut)
		}
	}
	if code, out, _ := c.run("help"); code != 0 || !strings.Contains(out, "auth-link --tenant T") {
		t.Errorf("help: exit %d", code)
	}
}

func TestAuthLinkNeedsTheKeyAndTheBaseURL(t *testing.T) {
	c := newCLI(t)
	c.run("tenant", "set", "shop-1")
	delete(c.env, "LINK_SIGNING_KEY")
	if code, out, errOut := c.run("auth-link", "--tenant", "shop-1"); code != 1 || !strings.Contains(errOut, "LINK_SIGNING_KEY") || out != "" {
		t.Fatalf("no key: exit %d\n%s", code, errOut)
	}
	c.env["LINK_SIGNING_KEY"] = linkKey
	delete(c.env, "PUBLIC_BASE_URL")
	if code, _, errOut := c.run("auth-link", "--tenant", "shop-1"); code != 2 || !strings.Contains(errOut, "PUBLIC_BASE_URL") {
		t.Fatalf("no base URL: exit %d\n%s", code, errOut)
	}
	if code, out, _ := c.run("auth-link", "--tenant", "shop-1", "--base-url", "https://other.example.com"); code != 0 || !strings.HasPrefix(lastLine(out), "https://other.example.com/auth/start?") {
		t.Fatalf("--base-url: exit %d\n%s", code, out)
	}
	if code, _, errOut := c.run("tenant", "show", "shop-1", "--table", "no-such-table"); code != 1 || !strings.Contains(errOut, "no-such-table") {
		t.Fatalf("--table overrides TABLE_NAME: exit %d\n%s", code, errOut)
	}
}

func TestWebhookGetsASecretShownOnce(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("tenant", "set", "shop-1", "--webhook", "https://203.0.113.10/wx", "--json")
	var first struct {
		Webhook       string `json:"webhook"`
		SigningSecret string `json:"signing_secret"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &first) != nil || first.Webhook != "https://203.0.113.10/wx" || !strings.HasPrefix(first.SigningSecret, "whsec_") {
		t.Fatalf("first webhook: exit %d\n%s%s", code, out, errOut)
	}
	// Changing the webhook keeps the secret, and never prints it again.
	code, out, _ = c.run("tenant", "set", "shop-1", "--webhook", "https://203.0.113.10/wx2")
	if code != 0 || strings.Contains(out, first.SigningSecret) || strings.Contains(out, "whsec_") {
		t.Fatalf("second webhook: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"tenant", "show", "shop-1"}, {"tenant", "show", "shop-1", "--json"}} {
		if code, out, _ := c.run(args...); code != 0 || strings.Contains(out, first.SigningSecret) || !strings.Contains(out, "wx2") {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	// In AWS a webhook is https to a public address; the local stack may allow more.
	for _, bad := range []string{"http://shop.example.com/wx", "https://10.0.0.1/wx", "https://169.254.169.254/", "not a url"} {
		if code, _, errOut := c.run("tenant", "set", "shop-1", "--webhook", bad); code != 2 || !strings.Contains(errOut, "--webhook") {
			t.Errorf("webhook %q: exit %d\n%s", bad, code, errOut)
		}
	}
	c.env["WEBHOOK_ALLOW_LOCAL"] = "1"
	if code, _, errOut := c.run("tenant", "set", "shop-1", "--webhook", "http://127.0.0.1:9000/wx"); code != 0 {
		t.Fatalf("local webhook with WEBHOOK_ALLOW_LOCAL=1: exit %d\n%s", code, errOut)
	}
	if code, out, _ := c.run("tenant", "set", "shop-1", "--webhook", ""); code != 0 || !strings.Contains(out, "webhook:  none") {
		t.Fatalf("removing the webhook: exit %d\n%s", code, out)
	}
}

func TestReturnOriginGetsASecretShownOnce(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("tenant", "set", "shop-1", "--return-origin", "https://Shop.example.com", "--return-origin", "http://127.0.0.1:8080", "--json")
	var first struct {
		ReturnOrigins []string `json:"return_origins"`
		SigningSecret string   `json:"signing_secret"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &first) != nil || len(first.ReturnOrigins) != 2 || !strings.HasPrefix(first.SigningSecret, "whsec_") {
		t.Fatalf("first origins: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = c.run("tenant", "set", "shop-1", "--return-origin", "https://m.example.com", "--remove-return-origin", "http://127.0.0.1:8080")
	if code != 0 || strings.Contains(out, "whsec_") || !strings.Contains(out, "origins:  https://m.example.com https://shop.example.com") {
		t.Fatalf("second change: exit %d\n%s", code, out)
	}
	if code, out, _ := c.run("tenant", "show", "shop-1", "--json"); code != 0 || strings.Contains(out, first.SigningSecret) || !strings.Contains(out, "https://m.example.com") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	for _, bad := range []string{"http://shop.example.com", "https://shop.example.com/path", "shop.example.com"} {
		if code, _, errOut := c.run("tenant", "set", "shop-1", "--return-origin", bad); code != 2 || !strings.Contains(errOut, "return origin") {
			t.Errorf("origin %q: exit %d\n%s", bad, code, errOut)
		}
	}
}

func TestAuthorizersListsAccountsWithoutTokens(t *testing.T) {
	c := newCLI(t)
	db := testenv.DynamoDB(t)
	store := tokenstore.New(db, c.env["TABLE_NAME"])
	ctx := context.Background()
	for i, appid := range []string{"wx00000000000000a2", "wx00000000000000a1", "wx00000000000000b1"} {
		if _, err := store.PutAuthorization(ctx, tokenstore.Authorization{AppID: appid, RefreshToken: "refresh-secret-" + appid,
			AccessToken: "access-secret-" + appid, ExpiresAt: time.Now().Add(time.Hour), AuthCode: fmt.Sprint("c", i), At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	tenants.New(store.Table()).Set(ctx, "shop-a", tenants.Changes{})
	if _, err := store.BindTenant(ctx, "wx00000000000000a1", "c1", "pre", "shop-a", time.Time{}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := c.run("authorizers", "--json")
	var rows []struct{ AppID, Tenant, Status string }
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 3 || rows[0].AppID != "wx00000000000000a1" || rows[0].Tenant != "shop-a" {
		t.Fatalf("authorizers: exit %d\n%s", code, out)
	}
	code, out, _ = c.run("authorizers", "--tenant", "shop-a")
	if code != 0 || !strings.Contains(out, "wx00000000000000a1") || strings.Contains(out, "wx00000000000000b1") || !strings.Contains(out, "1 account(s)") {
		t.Fatalf("authorizers --tenant: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "secret") {
		t.Fatal("the listing shows a token")
	}
}

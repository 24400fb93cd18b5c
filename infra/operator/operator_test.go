package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/operator"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authlink"
)

const linkKey = "operator-test-link-key-0123456789"

type cli struct {
	t   *testing.T
	env map[string]string
	now time.Time
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
	getenv := func(k string) string {
		if v, ok := c.env[k]; ok {
			return v
		}
		return os.Getenv(k) // the emulator endpoints and dummy credentials
	}
	code := (&operator.CLI{Getenv: getenv, Stdout: &out, Stderr: &errOut, Now: func() time.Time { return c.now }}).Run(context.Background(), args)
	return code, out.String(), errOut.String()
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

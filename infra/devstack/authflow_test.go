package devstack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// Sandbox accounts (sandbox.DefaultAccounts) the merchant picks in the browser.
const (
	sandboxMiniProgram     = "wx5a1c0e8d2b7f3a01" // 鲜果时光小店
	sandboxOfficialAccount = "wx3f6a8c1e2b9d4a04" // 鲜果时光 (服务号)
)

// TestMerchantAuthorizesInTheBrowser is the merchant's path in headless Chromium against the stack `make dev`
// runs (real binaries, sandbox with its 授权发起页域名 check on): the start page, a click to the sandbox's
// login page (PC, then mobile), the Authorize button, and our result page, with the account stored for the
// tenant. UPDATE_SCREENSHOTS=1 saves the pages under infra/screenshots.
func TestMerchantAuthorizesInTheBrowser(t *testing.T) {
	testenv.DynamoDB(t)
	testenv.SQS(t)
	chromium := chromiumPath(t)
	stack, opts, logs := startStack(t)
	shots := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, chromium)
	wxtpp := buildCLI(t)

	// The provider creates tenant t1 and signs a link for it, as README tells an operator to.
	operator(t, wxtpp, stack, "tenant", "set", "t1", "--name", "鲜果时光")
	pcLink := lastLine(operator(t, wxtpp, stack, "auth-link", "--tenant", "t1", "--auth-type", "2"))

	// An unsigned link is refused with its error page.
	b.do(t, chromedp.Navigate(stack.URL+"/auth/start?tenant=t1&auth_type=2"), chromedp.WaitVisible(chromedp.ID("error")))
	if msg := b.text(t, "error"); !strings.Contains(msg, "未经服务商签发") || !strings.Contains(msg, "not issued by your service provider") {
		t.Errorf("unsigned link: error page says %q", msg)
	}

	// PC: a mini program for tenant t1.
	b.do(t, chromedp.Navigate(pcLink), chromedp.WaitVisible(chromedp.ID("authorize-pc")))
	b.screenshot(t, filepath.Join(shots, "auth-start.png"))
	// The sandbox checks the 授权发起页域名 like WeChat: the link opened without our page as the Referer (a
	// server-side redirect, or the link pasted) is refused; the click below passes.
	resp, err := http.Get(b.attr(t, "authorize-pc", "href"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "授权入口页所在域名") {
		t.Fatalf("login page without a Referer: HTTP %d, want the authorization-domain refusal", resp.StatusCode)
	}
	b.do(t, chromedp.Click(chromedp.ID("authorize-pc")), chromedp.WaitVisible(chromedp.ID("authorize-"+sandboxMiniProgram)))
	b.do(t, chromedp.Click(chromedp.ID("authorize-"+sandboxMiniProgram)), chromedp.WaitVisible(chromedp.ID("account-name")))
	b.screenshot(t, filepath.Join(shots, "auth-result.png"))
	if name := b.text(t, "account-name"); name != "鲜果时光小店" {
		t.Errorf("result page shows %q, want the mini program's name", name)
	}
	if kind := b.text(t, "account-kind"); !strings.Contains(kind, "小程序") {
		t.Errorf("account-kind %q", kind)
	}
	checkStored(t, stack, sandboxMiniProgram, "t1", tokenstore.KindMiniProgram)

	// Mobile (inside WeChat): an official account for tenant t2, on a phone-sized screen.
	operator(t, wxtpp, stack, "tenant", "set", "t2")
	mobileLink := lastLine(operator(t, wxtpp, stack, "auth-link", "--tenant", "t2", "--auth-type", "1", "--ttl", "1h"))
	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(mobileLink), chromedp.WaitVisible(chromedp.ID("authorize-mobile")))
	b.screenshot(t, filepath.Join(shots, "auth-start-mobile.png"))
	b.do(t, chromedp.Click(chromedp.ID("authorize-mobile")), chromedp.WaitVisible(chromedp.ID("authorize-"+sandboxOfficialAccount)))
	b.do(t, chromedp.Click(chromedp.ID("authorize-"+sandboxOfficialAccount)), chromedp.WaitVisible(chromedp.ID("account-name")))
	b.screenshot(t, filepath.Join(shots, "auth-result-mobile.png"))
	if name := b.text(t, "account-name"); name != "鲜果时光" {
		t.Errorf("result page shows %q, want the official account's name", name)
	}
	if kind := b.text(t, "account-kind"); !strings.Contains(kind, "公众号") {
		t.Errorf("account-kind %q", kind)
	}
	checkStored(t, stack, sandboxOfficialAccount, "t2", tokenstore.KindOfficialAccount)

	if err := stack.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if strings.Contains(logs.String(), opts.StateSigningKey) || strings.Contains(logs.String(), opts.LinkSigningKey) {
		t.Error("a signing key appeared in the logs")
	}
	for _, appid := range []string{sandboxMiniProgram, sandboxOfficialAccount} {
		a, _ := stack.Store.Authorizer(context.Background(), appid)
		if strings.Contains(logs.String(), a.AccessToken) || strings.Contains(logs.String(), a.RefreshToken) {
			t.Errorf("a token of %s appeared in the logs", appid)
		}
	}
}

// buildCLI builds the operator CLI, as `make dev` does into build/wxtpp.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wxtpp")
	cmd := exec.Command("go", "build", "-o", bin, "./infra/cmd/wxtpp")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wxtpp: %v\n%s", err, out)
	}
	return bin
}

// operator runs the CLI with the environment `make dev` prints in its export line, and returns its output.
func operator(t *testing.T, bin string, stack *devstack.Stack, args ...string) string {
	t.Helper()
	out, err := runOperator(bin, stack, args...)
	if err != nil {
		t.Fatalf("wxtpp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runOperator runs the CLI; a failure comes back with its stderr in the error.
func runOperator(bin string, stack *devstack.Stack, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, stack.CLIEnv()...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return string(out), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func checkStored(t *testing.T, stack *devstack.Stack, appid, tenant, kind string) {
	t.Helper()
	a, err := stack.Store.Authorizer(context.Background(), appid)
	if err != nil {
		t.Fatalf("authorizer %s not stored: %v", appid, err)
	}
	if a.Tenant != tenant || a.Kind != kind || a.Status != tokenstore.StatusAuthorized || a.AccessToken == "" ||
		a.RefreshToken == "" || len(a.PermissionSets) == 0 {
		t.Fatalf("authorizer %s stored as tenant %q, kind %q, status %q, access token %t, refresh token %t, permission sets %v",
			appid, a.Tenant, a.Kind, a.Status, a.AccessToken != "", a.RefreshToken != "", a.PermissionSets)
	}
}

// chromiumPath finds Debian's Chromium (infra/scripts/install-chromium.sh). Without it the test is skipped,
// or fails under REQUIRE_EMULATORS (make test), so CI cannot pass by skipping it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := "Chromium not found at " + path + ": run infra/scripts/install-chromium.sh (or set CHROMIUM)"
		if os.Getenv("REQUIRE_EMULATORS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

type browser struct{ ctx context.Context }

func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout (that would end the browser with it).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// do runs steps with a deadline, so a page that never shows what is awaited fails instead of hanging.
func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("browser: %v\nat %s\n%s", err, loc, body)
	}
}

func (b *browser) text(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) attr(t *testing.T, id, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[string](chromedp.ID(id), name))
	if err != nil {
		t.Fatalf("%s of #%s: %v", name, id, err)
	}
	return v
}

func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

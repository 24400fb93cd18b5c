package devstack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/tokenstore"
)

// TestStackComesUpLikeMakeDev starts the stack the way `make dev` does (real function binaries behind the
// local runner, the sandbox pushing the first ticket over HTTP) and checks what a person would look at:
// the ticket and the component token are stored and the status page shows them; Close leaves no process.
func TestStackComesUpLikeMakeDev(t *testing.T) {
	ctx := context.Background()
	stack, opts, logs := startStack(t)

	// Start returns after the first push was acknowledged, so the ticket is stored...
	ticket, err := stack.Store.Ticket(ctx, opts.ComponentAppID)
	if err != nil {
		t.Fatalf("no ticket after start: %v", err)
	}
	// ...and the ticket function refreshed the component token with it.
	cred, err := stack.Store.Credential(ctx, tokenstore.ComponentTokenKey(opts.ComponentAppID))
	if err != nil || !cred.FreshUntil(time.Now().Add(time.Hour)) {
		t.Fatalf("component token not stored: %+v %v", cred, err)
	}
	if n := stack.Sandbox.Calls("api_component_token"); n != 1 {
		t.Fatalf("api_component_token calls = %d, want 1", n)
	}

	resp, err := http.Get(stack.URL + "/_dev/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"已收到 received", "有效 valid"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(string(page), ticket.Ticket) || strings.Contains(string(page), cred.AccessToken) {
		t.Error("status page shows the ticket or the token")
	}

	// GET / is the start page; every other path (and method) still reaches the functions.
	index := getPage(t, stack.URL+"/", http.StatusOK)
	for _, want := range []string{`href="` + stack.URL + `/_dev/status"`, `href="` + stack.SandboxURL + `/sandbox/"`,
		`href="` + stack.URL + `/auth/start?exp=`, `href="` + stack.URL + `/_dev/merchant"`} {
		if !strings.Contains(index, want) {
			t.Errorf("start page lacks %s", want)
		}
	}
	if page := getPage(t, stack.URL+"/auth/start?tenant=demo", http.StatusForbidden); !strings.Contains(page, "服务商") {
		t.Error("an unsigned start link did not reach the authorization function")
	}
	if resp, err := http.Post(stack.URL+"/", "text/plain", nil); err != nil || resp.StatusCode == http.StatusOK {
		t.Errorf("POST / answered like the start page: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}

	var pids []int
	for _, fn := range stack.Runner.Functions() {
		pids = append(pids, stack.Runner.PIDs(fn)...)
	}
	if len(pids) == 0 {
		t.Fatal("no function processes")
	}
	if err := stack.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still alive after Close", pid)
		}
	}
	if strings.Contains(logs.String(), cred.AccessToken) || strings.Contains(logs.String(), opts.ComponentSecret) {
		t.Error("a token or the secret appeared in the logs")
	}
	if _, err := os.Stat(filepath.Join(opts.BinDir, "ticket", "bootstrap")); err != nil {
		t.Fatal(err)
	}
}

// TestScheduledRefreshRunsTheRealBinary authorizes a sandbox account (its `authorized` push reaches the
// ticket function), makes its token due, and invokes the refresh function with a scheduled event.
func TestScheduledRefreshRunsTheRealBinary(t *testing.T) {
	ctx := context.Background()
	stack, _, _ := startStack(t)
	appid := stack.Sandbox.Accounts()[0].AppID
	if _, err := stack.Sandbox.Authorize(ctx, appid, stack.Sandbox.CreatePreAuthCode()); err != nil {
		t.Fatal(err)
	}
	before, err := stack.Store.Authorizer(ctx, appid)
	if err != nil || before.AccessToken == "" {
		t.Fatalf("the authorized push was not stored: %+v %v", before, err)
	}
	if _, err := stack.Store.Invalidate(ctx, tokenstore.AuthorizerKey(appid), before.AccessToken); err != nil {
		t.Fatal(err)
	}
	out, err := stack.RunRefresh(ctx)
	if err != nil {
		t.Fatalf("refresh invocation: %v", err)
	}
	var rep struct{ Due, Refreshed, NeedsReauth int }
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report %s: %v", out, err)
	}
	if rep.Due != 1 || rep.Refreshed != 1 {
		t.Fatalf("report %s: want the one due authorizer refreshed", out)
	}
	after, _ := stack.Store.Authorizer(ctx, appid)
	if after.AccessToken == "" || after.AccessToken == before.AccessToken || after.ExpiresAt < time.Now().Add(time.Hour).UnixMilli() {
		t.Fatal("the authorizer token was not refreshed")
	}
	if after.RefreshToken != stack.Sandbox.RefreshToken(appid) {
		t.Fatal("the stored refresh token is not WeChat's current one")
	}
	// The local status page lists the account in words, never its tokens, and the refresh run just made.
	page := getPage(t, stack.URL+"/_dev/status", http.StatusOK)
	obtained := time.UnixMilli(after.ExpiresAt).Add(-7200 * time.Second).Local().Format(time.DateTime)
	for _, want := range []string{appid, after.Info.NickName, "已授权 Authorized", "小程序 Mini program",
		"到期 due 1 · 已刷新 refreshed 1", "第三方平台令牌正常 component token ok", obtained} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, after.AccessToken) || strings.Contains(page, after.RefreshToken) {
		t.Error("status page shows an authorizer token")
	}

	// Revoked on WeChat's side: the `unauthorized` push marks it, and the page says so and when.
	if err := stack.Sandbox.Revoke(ctx, appid); err != nil {
		t.Fatal(err)
	}
	var revoked tokenstore.Authorizer
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if revoked, err = stack.Store.Authorizer(ctx, appid); err == nil && revoked.Status == tokenstore.StatusRevoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation not stored: %+v %v", revoked, err)
		}
	}
	page = getPage(t, stack.URL+"/_dev/status", http.StatusOK)
	if !strings.Contains(page, "已取消授权 Revoked") || !strings.Contains(page, time.UnixMilli(revoked.RevokedAt).Local().Format(time.DateTime)) {
		t.Error("status page does not show the revocation and its time")
	}
}

func getPage(t *testing.T, u string, status int) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: HTTP %d, want %d", u, resp.StatusCode, status)
	}
	return string(b)
}

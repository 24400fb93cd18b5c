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
	// The local status page lists the account, never its tokens.
	resp, err := http.Get(stack.URL + "/_dev/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{appid, after.Info.NickName, "authorized"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(string(page), after.AccessToken) || strings.Contains(string(page), after.RefreshToken) {
		t.Error("status page shows an authorizer token")
	}
}

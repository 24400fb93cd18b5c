package devstack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// TestStackComesUpLikeMakeDev starts the stack the way `make dev` does (real function binaries behind the
// local runner, the sandbox pushing the first ticket over HTTP) and checks what a person would look at:
// the ticket and the component token are stored and the status page shows them; Close leaves no process.
func TestStackComesUpLikeMakeDev(t *testing.T) {
	testenv.DynamoDB(t) // skip or fail clearly without the emulators
	testenv.SQS(t)
	ctx := context.Background()
	bin := t.TempDir()
	if err := devstack.Build(ctx, filepath.Join("..", ".."), bin); err != nil {
		t.Fatal(err)
	}
	opts, err := devstack.OptionsFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	opts.Port = 0
	opts.BinDir = bin
	opts.Table = fmt.Sprintf("devstack-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	opts.AWS = testenv.AWSConfig(t)
	logs := &strings.Builder{}
	opts.Logs = &lockedWriter{w: logs}
	stack, err := devstack.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			stack.Close()
		}
	})

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
	pids := stack.Runner.PIDs("ticket")
	if len(pids) == 0 {
		t.Fatal("no function processes")
	}
	if err := stack.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	if strings.Contains(logs.String(), cred.AccessToken) || strings.Contains(logs.String(), opts.ComponentSecret) {
		t.Error("a token or the secret appeared in the logs")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still alive after Close", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "ticket", "bootstrap")); err != nil {
		t.Fatal(err)
	}
}

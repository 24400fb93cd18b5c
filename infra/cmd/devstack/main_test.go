package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestCheckModeReportsAndStartsNothing(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		vars map[string]string
		want string
	}{
		"bad port":       {map[string]string{"DEV_PORT": "abc"}, `DEV_PORT "abc" is not a port number`},
		"half a WeChat":  {map[string]string{"WECHAT_MP_BASE": "https://mp.example.com"}, "WECHAT_MP_BASE is set without WECHAT_API_BASE"},
		"function value": {map[string]string{"DEV_PORT": "0", "REFRESH_MARGIN": "later"}, `REFRESH_MARGIN "later"`},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, []string{"-check"}, envOf(c.vars), &out, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"-check"}, envOf(map[string]string{"DEV_PORT": "0"}), &out, &out); err != nil || out.Len() != 0 {
		t.Fatalf("good settings: %v, output %q", err, out.String())
	}
	if err := run(ctx, []string{"-check", "extra"}, envOf(nil), &out, &out); err == nil {
		t.Fatal("an argument was accepted")
	}
}

// TestDevScriptChecksBeforeTheEmulators runs infra/scripts/dev.sh (make dev) in a copy of the repository's
// layout where `go build` is faked (it copies the devstack binary built here) and with-emulators.sh only records
// that it was reached: a bad setting must end the script, with devstack's message, before it.
func TestDevScriptChecksBeforeTheEmulators(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	devstackBin := filepath.Join(dir, "devstack-under-test")
	if out, err := exec.Command("go", "build", "-o", devstackBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build devstack: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "repo")
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "dev.sh"))
	if err != nil {
		t.Fatal(err)
	}
	reached := filepath.Join(dir, "emulators-started")
	files := map[string]string{
		"infra/scripts/dev.sh": string(script),
		// Reaching it is what must not happen on a bad setting.
		"infra/scripts/with-emulators.sh": "#!/usr/bin/env bash\necho \"$*\" > " + reached + "\n",
		// go build -o OUT PKG: devstack is the binary built above, anything else an empty program.
		"fake-go": "#!/usr/bin/env bash\nset -e\n[ \"$1\" = build ] || exit 3\nif [ \"$4\" = ./infra/cmd/devstack ]; then cp " +
			devstackBin + " \"$3\"; else printf '#!/bin/sh\\n' > \"$3\"; chmod +x \"$3\"; fi\n",
		"go.mod": "module example.com/devscripttest\n", // devstack -check finds the module root with go env GOMOD
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)

	dev := func(vars ...string) (string, error) {
		os.Remove(reached)
		cmd := exec.Command("bash", filepath.Join(root, "infra", "scripts", "dev.sh"))
		cmd.Env = append(os.Environ(), "GO="+filepath.Join(root, "fake-go"))
		// Only the variables under test: none of the caller's dev settings.
		for _, k := range []string{"DEV_PORT", "WECHAT_API_BASE", "WECHAT_MP_BASE", "WECHAT_OPEN_BASE", "LOG_LEVEL",
			"DEV_TICKET_INTERVAL", "DEV_REFRESH_INTERVAL", "RETRY_BASE_DELAY"} {
			cmd.Env = append(cmd.Env, k+"=")
		}
		cmd.Env = append(cmd.Env, vars...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct {
		vars []string
		want string
	}{
		{[]string{"DEV_PORT=abc"}, `devstack: DEV_PORT "abc" is not a port number`},
		{[]string{"WECHAT_MP_BASE=https://mp.example.com"}, "devstack: WECHAT_MP_BASE is set without WECHAT_API_BASE"},
		{[]string{"DEV_PORT=" + busyPort}, "devstack: DEV_PORT " + busyPort + ": 127.0.0.1:" + busyPort + " is not free"},
	} {
		out, err := dev(c.vars...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: err %v, output %q; want a failure saying %q", c.vars, err, out, c.want)
		}
		if _, serr := os.Stat(reached); serr == nil {
			t.Errorf("%v: the emulators were started before the settings were checked", c.vars)
		}
	}
	// Good settings reach the emulators, with devstack as their command.
	if out, err := dev("DEV_PORT=0"); err != nil {
		t.Fatalf("good settings: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(reached); err != nil || strings.TrimSpace(string(got)) != "--stop-ok build/devstack" {
		t.Fatalf("with-emulators.sh ran with %q (%v), want --stop-ok build/devstack", got, err)
	}
}

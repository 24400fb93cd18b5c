package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func testEnv(key string) string {
	return map[string]string{
		"WECHAT_COMPONENT_APPID":  "wx0123456789abcdef",
		"WECHAT_COMPONENT_SECRET": "cmd-test-secret",
		"WECHAT_TOKEN":            "cmd-test-token",
		"WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
	}[key]
}

// TestRunPrintsBaseURLAndStops starts the program with credentials from the
// environment, reads base_url from its first JSON log line, uses it, and
// stops it by cancelling the context (what SIGINT/SIGTERM do).
func TestRunPrintsBaseURLAndStops(t *testing.T) {
	pr, pw := io.Pipe()
	log := slog.New(slog.NewJSONHandler(pw, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-ticket-interval", "0", "-latency", "1ms"}, testEnv, log)
		pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no log line: %v", <-done)
	}
	var first struct {
		Msg     string `json:"msg"`
		BaseURL string `json:"base_url"`
	}
	if err := json.Unmarshal(lines.Bytes(), &first); err != nil || !strings.HasPrefix(first.BaseURL, "http://127.0.0.1:") {
		t.Fatalf("first line %s: %v", lines.Bytes(), err)
	}
	drained := make(chan struct{})
	go func() { // keep draining the log
		defer close(drained)
		for lines.Scan() {
			if strings.Contains(lines.Text(), "cmd-test-secret") {
				t.Errorf("log line leaks the secret: %s", lines.Text())
			}
		}
	}()

	resp, err := http.Post(first.BaseURL+"/cgi-bin/component/api_start_push_ticket", "application/json",
		strings.NewReader(`{"component_appid":"wx0123456789abcdef","component_secret":"cmd-test-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"errcode":0`) {
		t.Fatalf("sandbox answered %s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancellation")
	}
	<-drained
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	noEnv := func(string) string { return "" }
	cases := map[string]struct {
		args   []string
		getenv func(string) string
	}{
		"no credentials":  {nil, noEnv},
		"bad flag":        {[]string{"-nope"}, testEnv},
		"stray argument":  {[]string{"extra"}, testEnv},
		"bad push URL":    {[]string{"-push-url", "not a url"}, testEnv},
		"bad message URL": {[]string{"-message-url", "/wechat/$APPID$/callback"}, testEnv},
		"bad address":     {[]string{"-addr", "256.0.0.1:99999"}, testEnv},
		"negative delay":  {[]string{"-audit-delay", "-1s"}, testEnv},
		"reject rate > 1": {[]string{"-audit-reject-rate", "1.5"}, testEnv},
		"reject rate NaN": {[]string{"-audit-reject-rate", "NaN"}, testEnv},
	}
	for name, c := range cases {
		err := run(context.Background(), c.args, c.getenv, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err == nil {
			t.Errorf("%s: run succeeded", name)
		} else if strings.Contains(err.Error(), "cmd-test-secret") {
			t.Errorf("%s: error leaks the secret", name)
		}
	}
}

// TestRunPassesMessageURL checks that -message-url (default from
// WECHAT_SANDBOX_MESSAGE_URL) and the audit flags reach the sandbox: its
// status page shows them.
func TestRunPassesMessageURL(t *testing.T) {
	const messageURL = "http://127.0.0.1:8080/wechat/$APPID$/callback"
	getenv := func(key string) string {
		if key == "WECHAT_SANDBOX_MESSAGE_URL" {
			return messageURL
		}
		return testEnv(key)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-ticket-interval", "0", "-audit-delay", "3s", "-audit-reject-rate", "0.25"}, getenv,
			slog.New(slog.NewJSONHandler(pw, nil)))
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no log line: %v", <-done)
	}
	var first struct {
		BaseURL string `json:"base_url"`
	}
	if err := json.Unmarshal(lines.Bytes(), &first); err != nil {
		t.Fatal(err)
	}
	go func() { // keep draining the log
		for lines.Scan() {
		}
	}()
	resp, err := http.Get(first.BaseURL + "/sandbox/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), messageURL) {
		t.Errorf("status page does not show the message URL")
	}
	if !strings.Contains(string(body), "delay 3s") || !strings.Contains(string(body), "reject rate 25%") {
		t.Errorf("status page does not show the audit flags")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

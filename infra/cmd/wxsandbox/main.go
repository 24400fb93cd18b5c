// Command wxsandbox runs the WeChat sandbox (package infra/sandbox) as a
// program: a local stand-in for WeChat's third-party platform APIs, its
// authorization pages and its encrypted pushes.
//
// Usage:
//
//	wxsandbox [-addr 127.0.0.1:0] [-push-url URL] [-message-url URL] [-ticket-interval 10m] [-rotate] [-latency 0]
//	          [-audit-delay 2s] [-audit-reject-rate 0]
//
// The component credentials come from flags or, by default, from the
// environment: WECHAT_COMPONENT_APPID, WECHAT_COMPONENT_SECRET, WECHAT_TOKEN,
// WECHAT_ENCODING_AES_KEY (pass secrets through the environment, not flags,
// so they stay out of process listings). It logs JSON to stderr; its first
// line carries base_url. SIGINT or SIGTERM stops it cleanly.
//
// Mini-program audits (submit_audit) end -audit-delay after they are
// submitted, rejected with probability -audit-reject-rate, and their
// weapp_audit_success/weapp_audit_fail event goes to -message-url.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/shared/logging"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: logging.DurationText}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, log)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Error("wxsandbox failed", "err", err)
		os.Exit(1)
	}
}

// run serves the sandbox until ctx ends. getenv supplies the flag defaults.
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("wxsandbox", flag.ContinueOnError)
	appID := fs.String("component-appid", getenv("WECHAT_COMPONENT_APPID"), "component appid (env WECHAT_COMPONENT_APPID)")
	secret := fs.String("component-secret", getenv("WECHAT_COMPONENT_SECRET"), "component AppSecret (env WECHAT_COMPONENT_SECRET)")
	token := fs.String("token", getenv("WECHAT_TOKEN"), "message-verification Token (env WECHAT_TOKEN)")
	aesKey := fs.String("encoding-aes-key", getenv("WECHAT_ENCODING_AES_KEY"), "43-character EncodingAESKey (env WECHAT_ENCODING_AES_KEY)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	pushURL := fs.String("push-url", getenv("WECHAT_SANDBOX_PUSH_URL"), "authorization-event URL for ticket and authorization pushes (env WECHAT_SANDBOX_PUSH_URL); empty: no pushes")
	messageURL := fs.String("message-url", getenv("WECHAT_SANDBOX_MESSAGE_URL"), "message-and-event URL with $APPID$, e.g. http://127.0.0.1:8080/wechat/$APPID$/callback (env WECHAT_SANDBOX_MESSAGE_URL); empty: no message pushes")
	interval := fs.Duration("ticket-interval", 10*time.Minute, "component_verify_ticket push interval; 0 disables the timer")
	rotate := fs.Bool("rotate", false, "issue a new refresh token on every api_authorizer_token (rotation mode)")
	latency := fs.Duration("latency", 0, "latency added to every API call")
	authDomain := fs.String("auth-domain", "", "if set, require the login pages' Referer and redirect_uri under this domain (授权发起页域名)")
	auditDelay := fs.Duration("audit-delay", sandbox.DefaultAuditDelay, "how long a mini-program audit takes after submit_audit before its result event is pushed; 0 decides at once")
	rejectRate := fs.Float64("audit-reject-rate", 0, "probability (0 to 1) that a mini-program audit is rejected (weapp_audit_fail)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch {
	case *latency < 0:
		return errors.New("-latency must not be negative")
	case *auditDelay < 0:
		return errors.New("-audit-delay must not be negative")
	case !(*rejectRate >= 0 && *rejectRate <= 1):
		return errors.New("-audit-reject-rate must be between 0 and 1")
	}

	if *auditDelay == 0 {
		*auditDelay = sandbox.AuditImmediate
	}
	sb, err := sandbox.New(sandbox.Config{
		ComponentAppID:      *appID,
		ComponentSecret:     *secret,
		Token:               *token,
		EncodingAESKey:      *aesKey,
		PushURL:             *pushURL,
		MessageURL:          *messageURL,
		TicketInterval:      *interval,
		RotateRefreshTokens: *rotate,
		AuthDomain:          *authDomain,
		AuditDelay:          *auditDelay,
		AuditRejectRate:     *rejectRate,
		Logger:              log,
	})
	if err != nil {
		return fmt.Errorf("configuring sandbox: %w", err)
	}
	if *latency > 0 {
		sb.SetFault("*", sandbox.Fault{Latency: *latency})
	}
	// StartAt logs one JSON line carrying base_url.
	if _, err := sb.StartAt(*addr); err != nil {
		return errors.Join(err, sb.Close())
	}
	<-ctx.Done()
	log.Info("wechat sandbox stopping")
	return sb.Close()
}

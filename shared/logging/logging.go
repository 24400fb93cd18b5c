// Package logging sets up structured JSON logs (log/slog) and carries a per-request logger in the context,
// so every line a request produces names its request id.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
)

// New returns a JSON logger writing to w at the level named by level ("debug", "info", "warn", "error";
// anything else means info).
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: DurationText}))
}

// DurationText is a slog ReplaceAttr that writes durations with their unit ("1.5s", "230ms") instead of the
// JSON handler's bare nanosecond count, so a log reader never has to guess the unit.
func DurationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// FromEnv is New(os.Stdout, $LOG_LEVEL): what a Lambda function uses (stdout goes to CloudWatch Logs).
func FromEnv() *slog.Logger { return New(os.Stdout, os.Getenv("LOG_LEVEL")) }

type ctxKey struct{}

// With returns a context carrying l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the logger carried by ctx, or slog.Default().
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

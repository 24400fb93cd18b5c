package wxapi

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	base := 100 * time.Millisecond
	for attempt, want := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 4: 8 * base} {
		if d := retryDelay(base, attempt); d < want || d >= want+base {
			t.Errorf("attempt %d: delay %v, want in [%v, %v)", attempt, d, want, want+base)
		}
	}
	// Many attempts must not overflow into a zero or negative delay (a hot retry loop).
	for _, attempt := range []int{40, 64, 65, 1000} {
		if d := retryDelay(base, attempt); d < maxDelay || d >= maxDelay+base {
			t.Errorf("attempt %d: delay %v, want in [%v, %v)", attempt, d, maxDelay, maxDelay+base)
		}
	}
	// A base above the cap is used as is.
	if d := retryDelay(time.Minute, 3); d < time.Minute || d >= 2*time.Minute {
		t.Errorf("base 1m: delay %v, want in [1m, 2m)", d)
	}
}

func TestNegativeBackoffDoesNotPanic(t *testing.T) {
	// Only the defaulting is under test: a closed port makes each attempt fail fast.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close()
	c := &Client{BaseURL: base, Backoff: -time.Second, MaxAttempts: 2, Timeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := c.Call(t.Context(), "x", "GET", "/", nil, nil, nil); err == nil {
		t.Fatal("want a connection error")
	}
}

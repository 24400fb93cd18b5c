// Package wxapi is a small client for the WeChat Open Platform HTTP APIs used by a third-party platform.
//
// It retries what is worth retrying (errcode -1, HTTP 5xx, timeouts and connection errors) with backoff,
// never retries business errors, and never puts a secret or token in a log line or error string: errors
// name the API, never the URL (whose query carries the access token).
package wxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is WeChat's API host.
const DefaultBaseURL = "https://api.weixin.qq.com"

// maxResponse bounds what we read from WeChat; its JSON answers are small.
const maxResponse = 4 << 20

// maxDelay caps the exponential part of the retry delay, so a large MaxAttempts cannot overflow it.
const maxDelay = 30 * time.Second

// Client calls WeChat. The zero value is not usable; set BaseURL at least.
type Client struct {
	BaseURL     string        // e.g. DefaultBaseURL or a sandbox URL
	HTTP        *http.Client  // nil means a client with no overall timeout (Timeout bounds each attempt)
	Timeout     time.Duration // per attempt; default 5s
	MaxAttempts int           // default 3
	Backoff     time.Duration // first retry delay, doubled each time, with jitter; default 100ms
	Logger      *slog.Logger  // nil means slog.Default()
}

// Error is an error answer from WeChat: a non-zero errcode.
type Error struct {
	API  string // e.g. "api_component_token"
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("wechat %s: errcode %d: %s", e.API, e.Code, e.Msg) }

// HTTPError is a non-200 HTTP status from WeChat's side.
type HTTPError struct {
	API    string
	Status int
}

func (e *HTTPError) Error() string { return fmt.Sprintf("wechat %s: HTTP %d", e.API, e.Status) }

// Code returns the WeChat errcode carried by err, or 0.
func Code(err error) int {
	var we *Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}

// IsCode reports whether err is a WeChat error with one of codes.
func IsCode(err error, codes ...int) bool {
	c := Code(err)
	for _, x := range codes {
		if c == x && c != 0 {
			return true
		}
	}
	return false
}

// IsInvalidToken: the access token used was superseded (40001), malformed (40014) or expired (42001).
func IsInvalidToken(err error) bool { return IsCode(err, 40001, 40014, 42001) }

// NeedsReauth: the authorizer must authorize the platform again; retrying cannot help.
// 61023 refresh_token is invalid, 61003 account has not authorized the component, 42002 refresh_token expired.
func NeedsReauth(err error) bool { return IsCode(err, 61023, 61003, 42002) }

// IsQuota: the daily quota of this API is used up (45009); further calls today are wasted.
func IsQuota(err error) bool { return IsCode(err, 45009) }

// IsTransient: worth trying again later (system busy, rate limited, 5xx, timeout, connection failure).
func IsTransient(err error) bool {
	if IsCode(err, -1, 45011) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500 || he.Status == http.StatusTooManyRequests
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// io.EOF: the connection closed before an answer (a stale keep-alive connection or a dropped one); the
	// transport does not retry POSTs itself.
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryable decides retries inside one call: only -1, 5xx and transport failures. 45011 and business errors
// go back to the caller, who knows whether waiting is worth it.
func retryable(err error) bool {
	if IsCode(err, -1) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500
	}
	return Code(err) == 0 && IsTransient(err)
}

// Call does one API call with retries: method GET or POST, path like "/cgi-bin/component/api_query_auth",
// query (may be nil; access tokens go here), body JSON-encoded when non-nil, out decoded from the answer when
// its errcode is 0. api names the call in errors and logs.
func (c *Client) Call(ctx context.Context, api, method, path string, query url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("wechat %s: encode request: %w", api, err)
		}
	}
	attempts := max(c.MaxAttempts, 1)
	if c.MaxAttempts == 0 {
		attempts = 3
	}
	backoff := c.Backoff
	if backoff <= 0 { // a negative value would make rand.N panic
		backoff = 100 * time.Millisecond
	}
	var err error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err = c.once(ctx, api, method, path, query, payload, out)
		c.logger().LogAttrs(ctx, slog.LevelDebug, "wechat call", slog.String("api", api), slog.Int("attempt", attempt),
			slog.Duration("took", time.Since(start)), slog.Int("errcode", Code(err)), slog.Bool("ok", err == nil))
		if err == nil || attempt >= attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		delay := retryDelay(backoff, attempt)
		c.logger().LogAttrs(ctx, slog.LevelWarn, "wechat call failed, retrying", slog.String("api", api),
			slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return fmt.Errorf("wechat %s: %w (after: %v)", api, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// retryDelay is base doubled for each attempt made (capped at maxDelay unless base is larger) plus up to base
// of jitter.
func retryDelay(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	if d > maxDelay {
		d = max(base, maxDelay)
	}
	return d + rand.N(base)
}

func (c *Client) once(ctx context.Context, api, method, path string, query url.Values, payload []byte, out any) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("wechat %s: build request: %w", api, stripURL(err))
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("wechat %s: %w", api, stripURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("wechat %s: read answer: %w", api, stripURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{API: api, Status: resp.StatusCode}
	}
	if len(raw) > maxResponse {
		// Truncated JSON would only fail later with a misleading syntax error.
		return fmt.Errorf("wechat %s: answer larger than %d bytes", api, maxResponse)
	}
	// Every WeChat answer is an object; `null` would otherwise decode as a success with empty fields.
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("wechat %s: answer is not a JSON object", api)
	}
	var status struct {
		Code int    `json:"errcode"`
		Msg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(raw, &status); err != nil {
		return fmt.Errorf("wechat %s: answer is not JSON: %w", api, err)
	}
	if status.Code != 0 {
		return &Error{API: api, Code: status.Code, Msg: status.Msg}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("wechat %s: decode answer: %w", api, err)
		}
	}
	return nil
}

// stripURL drops the request URL from transport errors: its query carries access tokens.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

package wxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// QRCode is the 体验版 QR code image.
type QRCode struct {
	ContentType string // as WeChat sent it (image/jpeg), or sniffed when it sent none that names an image
	Data        []byte
}

// GetQRCode fetches the 体验版 QR code, opening path (e.g. "page/index?action=1", escaped here once; empty
// for the home page). The answer is an image, or a JSON error, which comes back as *Error like any other.
func (c *Client) GetQRCode(ctx context.Context, token, path string) (QRCode, error) {
	q := accessQuery(token)
	if path != "" {
		q.Set("path", path)
	}
	img, err := c.getImage(ctx, "get_qrcode", "/wxa/get_qrcode", q)
	return img, withAliases(err)
}

// getImage is a GET whose success is an image, with Call's retries, logs and care for the token; Call itself
// only takes JSON answers.
func (c *Client) getImage(ctx context.Context, api, path string, query url.Values) (QRCode, error) {
	attempts := max(c.MaxAttempts, 1)
	if c.MaxAttempts == 0 {
		attempts = 3
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		img, err := c.imageOnce(ctx, api, path, query)
		c.logger().LogAttrs(ctx, slog.LevelDebug, "wechat call", slog.String("api", api), slog.Int("attempt", attempt),
			slog.Duration("took", time.Since(start)), slog.Int("errcode", Code(err)), slog.Bool("ok", err == nil))
		if err == nil || attempt >= attempts || !retryable(err) || ctx.Err() != nil {
			return img, err
		}
		delay := retryDelay(backoff, attempt)
		c.logger().LogAttrs(ctx, slog.LevelWarn, "wechat call failed, retrying", slog.String("api", api),
			slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return QRCode{}, fmt.Errorf("wechat %s: %w (after: %v)", api, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

func (c *Client) imageOnce(ctx context.Context, api, path string, query url.Values) (QRCode, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return QRCode{}, fmt.Errorf("wechat %s: build request: %w", api, stripURL(err))
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return QRCode{}, fmt.Errorf("wechat %s: %w", api, stripURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return QRCode{}, fmt.Errorf("wechat %s: read answer: %w", api, stripURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		return QRCode{}, &HTTPError{API: api, Status: resp.StatusCode}
	}
	if len(raw) > maxResponse {
		return QRCode{}, fmt.Errorf("wechat %s: answer larger than %d bytes", api, maxResponse)
	}
	return imageAnswer(api, resp.Header.Get("Content-Type"), raw)
}

// imageAnswer tells an image from an error. Errors are JSON, labelled application/json or text/plain, with or
// without a charset; an image never starts with '{', so a JSON object is taken for an error whatever its label.
func imageAnswer(api, contentType string, raw []byte) (QRCode, error) {
	media, _, _ := strings.Cut(contentType, ";")
	media = strings.ToLower(strings.TrimSpace(media))
	if media == "application/json" || media == "text/plain" || bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("{")) {
		var status struct {
			Code int    `json:"errcode"`
			Msg  string `json:"errmsg"`
		}
		if json.Unmarshal(raw, &status) == nil && status.Code != 0 {
			return QRCode{}, &Error{API: api, Code: status.Code, Msg: status.Msg}
		}
		if media == "" {
			media = "JSON"
		}
		return QRCode{}, fmt.Errorf("wechat %s: answer is %s without an image or an errcode", api, media)
	}
	if len(raw) == 0 {
		return QRCode{}, fmt.Errorf("wechat %s: empty answer", api)
	}
	if !strings.HasPrefix(media, "image/") {
		// Some proxies drop or generalise the type (application/octet-stream); the bytes still say what they are.
		sniffed := http.DetectContentType(raw)
		if !strings.HasPrefix(sniffed, "image/") {
			return QRCode{}, fmt.Errorf("wechat %s: answer is %s, not an image", api, sniffed)
		}
		contentType = sniffed
	}
	return QRCode{ContentType: contentType, Data: raw}, nil
}

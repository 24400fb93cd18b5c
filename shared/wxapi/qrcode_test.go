package wxapi_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/wxapi"
)

// jpeg is the start of a JPEG file, enough for content sniffing.
var jpeg = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")

func answerImage(contentType string, body []byte) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		} else {
			w.Header()["Content-Type"] = nil // keep net/http from sniffing one
		}
		w.Header().Set("Content-Disposition", `attachment; filename="QRCode.jpg"`)
		_, _ = w.Write(body)
	}
}

func TestGetQRCodeImage(t *testing.T) {
	f := newFake(t, answerImage("image/jpeg", jpeg))
	c, _ := newClient(f.srv.URL)
	got, err := c.GetQRCode(context.Background(), authToken, "page/index?action=1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ContentType != "image/jpeg" || !bytes.Equal(got.Data, jpeg) {
		t.Errorf("got %q with %d bytes, want the JPEG", got.ContentType, len(got.Data))
	}
	r := f.requests()[0]
	if r.Method != http.MethodGet || r.Path != "/wxa/get_qrcode" || len(r.RawBody) != 0 {
		t.Errorf("request %s %s with body %q, want GET /wxa/get_qrcode without body", r.Method, r.Path, r.RawBody)
	}
	// The path is escaped exactly once.
	if !strings.Contains(r.RawQuery, "path=page%2Findex%3Faction%3D1") || r.Query.Get("path") != "page/index?action=1" ||
		r.Query.Get("access_token") != authToken || len(r.Query) != 2 {
		t.Errorf("query %q, want access_token and path=page%%2Findex%%3Faction%%3D1", r.RawQuery)
	}
}

func TestGetQRCodeHomePage(t *testing.T) {
	f := newFake(t, answerImage("image/jpeg", jpeg))
	c, _ := newClient(f.srv.URL)
	if _, err := c.GetQRCode(context.Background(), authToken, ""); err != nil {
		t.Fatal(err)
	}
	if q := f.requests()[0].Query; len(q) != 1 || q.Get("access_token") != authToken {
		t.Errorf("query %v, want access_token only", q)
	}
}

func TestGetQRCodeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, contentType string
		body              string
		code              int    // errcode expected; 0: see wantType
		wantType          string // content type of a success; "" for a non-WeChat error
	}{
		{"json error with charset", "application/json; charset=utf-8", `{"errcode":40001,"errmsg":"invalid credential"}`, 40001, ""},
		{"json error", "application/json", `{"errcode":86001,"errmsg":"no committed code"}`, 86001, ""},
		{"text/plain error", "text/plain", `{"errcode":85013,"errmsg":"x"}`, 85013, ""},
		{"text/plain error with charset", "Text/Plain; charset=UTF-8", `{"errcode":61007,"errmsg":"x"}`, 61007, ""},
		{"error labelled as an image", "image/jpeg", ` {"errcode":48001,"errmsg":"api unauthorized"}`, 48001, ""},
		{"json without errcode", "application/json", `{"errcode":0,"errmsg":"ok"}`, 0, ""},
		{"html", "text/html", "<html>busy</html>", 0, ""},
		{"empty image", "image/jpeg", "", 0, ""},
		{"octet-stream image", "application/octet-stream", string(jpeg), 0, "image/jpeg"},
		{"unlabelled image", "", string(jpeg), 0, "image/jpeg"},
		{"png", "image/png", "\x89PNG\r\n\x1a\n", 0, "image/png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, answerImage(tc.contentType, []byte(tc.body)))
			c, _ := newClient(f.srv.URL)
			got, err := c.GetQRCode(context.Background(), authToken, "index")
			switch {
			case tc.wantType != "":
				if err != nil || got.ContentType != tc.wantType || string(got.Data) != tc.body {
					t.Errorf("got (%q, %v), want the %s image", got.ContentType, err, tc.wantType)
				}
			case tc.code != 0:
				var we *wxapi.Error
				if !errors.As(err, &we) || we.Code != tc.code || we.API != "get_qrcode" {
					t.Errorf("err = %v, want WeChat errcode %d", err, tc.code)
				}
			default:
				if err == nil || wxapi.Code(err) != 0 {
					t.Errorf("err = %v, want a non-WeChat error", err)
				}
			}
			if err != nil && got.Data != nil {
				t.Errorf("error with data %q", got.Data)
			}
		})
	}
}

func TestGetQRCodeErrorsAreTyped(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"errcode":86001,"errmsg":"no committed code"}`))
	c, _ := newClient(f.srv.URL)
	_, err := c.GetQRCode(context.Background(), authToken, "")
	if !errors.Is(err, wxapi.ErrNoCommittedCode) {
		t.Errorf("err = %v, want ErrNoCommittedCode", err)
	}
}

// A read: -1 and 5xx are retried like Call retries them; business errors are not.
func TestGetQRCodeRetries(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			reply(w, http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`)
		case 2:
			reply(w, http.StatusBadGateway, "")
		default:
			answerImage("image/jpeg", jpeg)(n, w, r)
		}
	})
	c, logs := newClient(f.srv.URL)
	if _, err := c.GetQRCode(context.Background(), authToken, ""); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry logged:\n%s", logs)
	}

	f = newFake(t, always(http.StatusOK, `{"errcode":40001,"errmsg":"invalid credential"}`))
	c, _ = newClient(f.srv.URL)
	if _, err := c.GetQRCode(context.Background(), authToken, ""); !wxapi.IsInvalidToken(err) {
		t.Errorf("err = %v, want invalid token", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests for a business error, want 1", n)
	}
}

func TestGetQRCodeCancelDuringBackoff(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{"errcode":-1,"errmsg":"system error"}`))
	c, _ := newClient(f.srv.URL)
	c.Backoff = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.GetQRCode(ctx, authToken, "")
	if !errors.Is(err, context.DeadlineExceeded) || wxapi.Code(err) != 0 {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

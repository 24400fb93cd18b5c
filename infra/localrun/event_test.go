package localrun

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestNewHTTPEvent(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "http://api.example.com:8080/wechat/wx1/callback?signature=s&nonce=1&nonce=2&empty=&enc=a%2Bb", strings.NewReader("<xml/>"))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Add("X-Repeat", "one")
	req.Header.Add("X-Repeat", "two")
	req.Header.Add("Cookie", "a=1; b=2")
	req.Header.Add("Cookie", "c=3")
	req.Header.Set("User-Agent", "Mozilla/5.0")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	before := time.Now()

	ev, err := NewHTTPEvent(req, "POST /wechat/{appid}/callback", map[string]string{"appid": "wx1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "POST /wechat/{appid}/callback",
		RawPath:        "/wechat/wx1/callback",
		RawQueryString: "signature=s&nonce=1&nonce=2&empty=&enc=a%2Bb",
		Cookies:        []string{"a=1", "b=2", "c=3"},
		Headers: map[string]string{
			"content-type":      "text/xml; charset=utf-8",
			"x-repeat":          "one,two",
			"user-agent":        "Mozilla/5.0",
			"host":              "api.example.com:8080",
			"x-forwarded-for":   "203.0.113.9, 192.0.2.1",
			"x-forwarded-proto": "http",
			"x-forwarded-port":  "8080",
			"x-amzn-trace-id":   ev.Headers["x-amzn-trace-id"],
		},
		QueryStringParameters: map[string]string{"signature": "s", "nonce": "1,2", "empty": "", "enc": "a+b"},
		PathParameters:        map[string]string{"appid": "wx1"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     "POST /wechat/{appid}/callback",
			AccountID:    AccountID,
			Stage:        "$default",
			RequestID:    ev.RequestContext.RequestID,
			APIID:        APIID,
			DomainName:   "api.example.com",
			DomainPrefix: "api",
			Time:         ev.RequestContext.Time,
			TimeEpoch:    ev.RequestContext.TimeEpoch,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: "POST", Path: "/wechat/wx1/callback", Protocol: "HTTP/1.1",
				SourceIP: "192.0.2.1", UserAgent: "Mozilla/5.0",
			},
		},
		Body: "<xml/>",
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("event mismatch\n got: %+v\nwant: %+v", ev, want)
	}
	if !strings.HasPrefix(ev.Headers["x-amzn-trace-id"], "Root=1-") {
		t.Errorf("x-amzn-trace-id = %q", ev.Headers["x-amzn-trace-id"])
	}
	if len(ev.RequestContext.RequestID) != 16 {
		t.Errorf("requestId = %q, want API Gateway's 16-character shape", ev.RequestContext.RequestID)
	}
	ts, err := time.Parse(apiGatewayTimeFormat, ev.RequestContext.Time)
	if err != nil || ts.Unix() != ev.RequestContext.TimeEpoch/1000 || ev.RequestContext.TimeEpoch < before.UnixMilli() {
		t.Errorf("time %q / epoch %d inconsistent (%v)", ev.RequestContext.Time, ev.RequestContext.TimeEpoch, err)
	}

	// Request ids are unique.
	ev2, _ := NewHTTPEvent(httptest.NewRequest(http.MethodGet, "/", nil), "$default", nil, 0)
	if ev2.RequestContext.RequestID == ev.RequestContext.RequestID {
		t.Error("request id repeated")
	}
	if ev2.QueryStringParameters != nil || ev2.Cookies != nil || ev2.PathParameters != nil || ev2.Body != "" || ev2.IsBase64Encoded {
		t.Errorf("empty request fields not empty: %+v", ev2)
	}
}

func TestNewHTTPEventCopiesPathParams(t *testing.T) {
	params := map[string]string{"id": "1"}
	ev, err := NewHTTPEvent(httptest.NewRequest(http.MethodGet, "/items/1", nil), "GET /items/{id}", params, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev.PathParameters["id"] = "changed"
	if params["id"] != "1" {
		t.Error("event shares the caller's path parameter map")
	}
}

func TestNewHTTPEventBodyEncoding(t *testing.T) {
	binary := []byte{0x00, 0xff, 0x10, 'a'}
	invalidUTF8 := []byte("caf\xe9")
	for _, tc := range []struct {
		contentType string
		body        []byte
		base64      bool
	}{
		{"text/plain", []byte("hi"), false},
		{"text/html; charset=utf-8", []byte("<p>hé</p>"), false},
		{"application/json", []byte(`{"a":1}`), false},
		{"Application/JSON; charset=UTF-8", []byte(`{}`), false},
		{"application/xml", []byte("<a/>"), false},
		{"application/atom+xml", []byte("<feed/>"), false},
		{"application/vnd.api+json", []byte("{}"), false},
		{"application/x-www-form-urlencoded", []byte("a=1&b=2"), false},
		{"application/octet-stream", binary, true},
		{"image/png", []byte("png"), true},
		{"multipart/form-data; boundary=x", []byte("--x--"), true},
		{"", []byte("no type"), true},
		{"text/plain", invalidUTF8, true}, // JSON strings cannot carry it intact
	} {
		req := httptest.NewRequest(http.MethodPost, "/upload", bytes.NewReader(tc.body))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		ev, err := NewHTTPEvent(req, "POST /upload", nil, 0)
		if err != nil {
			t.Fatalf("%q: %v", tc.contentType, err)
		}
		if ev.IsBase64Encoded != tc.base64 {
			t.Errorf("%q: isBase64Encoded = %v, want %v", tc.contentType, ev.IsBase64Encoded, tc.base64)
		}
		got := []byte(ev.Body)
		if ev.IsBase64Encoded {
			if got, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
				t.Fatalf("%q: body not base64: %v", tc.contentType, err)
			}
		}
		if !bytes.Equal(got, tc.body) {
			t.Errorf("%q: body round trip %q != %q", tc.contentType, got, tc.body)
		}
	}
}

func TestNewHTTPEventBodyLimit(t *testing.T) {
	const limit = 16
	// Declared length over the limit: rejected without reading.
	req := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader(strings.Repeat("a", limit+1)))
	if _, err := NewHTTPEvent(req, "POST /upload", nil, limit); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("declared oversize: err = %v, want ErrBodyTooLarge", err)
	}
	// Unknown length (chunked): rejected while reading.
	req = httptest.NewRequest(http.MethodPost, "/upload", io.MultiReader(strings.NewReader(strings.Repeat("a", limit)), strings.NewReader("b")))
	req.ContentLength = -1
	if _, err := NewHTTPEvent(req, "POST /upload", nil, limit); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("streamed oversize: err = %v, want ErrBodyTooLarge", err)
	}
	// Exactly at the limit is fine.
	req = httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader(strings.Repeat("a", limit)))
	req.Header.Set("Content-Type", "text/plain")
	ev, err := NewHTTPEvent(req, "POST /upload", nil, limit)
	if err != nil || len(ev.Body) != limit {
		t.Errorf("at limit: err = %v, body len %d", err, len(ev.Body))
	}
}

func TestWriteHTTPResponse(t *testing.T) {
	rec := httptest.NewRecorder()
	err := WriteHTTPResponse(rec, events.APIGatewayV2HTTPResponse{
		StatusCode:        302,
		Headers:           map[string]string{"location": "/auth/done", "content-type": "text/html", "content-length": "999"},
		MultiValueHeaders: map[string][]string{"x-multi": {"a", "b"}},
		Cookies:           []string{"s=1; HttpOnly", "t=2"},
		Body:              "<p>moved</p>",
	})
	if err != nil {
		t.Fatal(err)
	}
	res := rec.Result()
	if res.StatusCode != 302 || rec.Body.String() != "<p>moved</p>" {
		t.Errorf("status %d body %q", res.StatusCode, rec.Body)
	}
	if res.Header.Get("Location") != "/auth/done" || res.Header.Get("Content-Type") != "text/html" {
		t.Errorf("headers = %v", res.Header)
	}
	if got := res.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("X-Multi = %q", got)
	}
	if got := res.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"s=1; HttpOnly", "t=2"}) {
		t.Errorf("Set-Cookie = %q", got)
	}
	if got := res.Header.Get("Content-Length"); got != "12" {
		t.Errorf("Content-Length = %q, want the real length 12", got)
	}

	// Defaults: status 200, no sniffed content type.
	rec = httptest.NewRecorder()
	if err := WriteHTTPResponse(rec, events.APIGatewayV2HTTPResponse{Body: "<html>x</html>"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Result().Header.Get("Content-Type") != "" {
		t.Errorf("default status %d, content-type %q", rec.Code, rec.Result().Header.Get("Content-Type"))
	}

	// Base64 bodies are decoded.
	raw := []byte{0, 1, 254, 255}
	rec = httptest.NewRecorder()
	if err := WriteHTTPResponse(rec, events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: base64.StdEncoding.EncodeToString(raw), IsBase64Encoded: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), raw) {
		t.Errorf("decoded body = %x", rec.Body.Bytes())
	}
}

func TestWriteHTTPResponseRejectsBadResponsesWithoutWriting(t *testing.T) {
	for name, resp := range map[string]events.APIGatewayV2HTTPResponse{
		"bad base64":       {StatusCode: 200, Body: "not base64!", IsBase64Encoded: true},
		"bad header name":  {StatusCode: 200, Headers: map[string]string{"bad name": "x"}},
		"header injection": {StatusCode: 200, Headers: map[string]string{"x-a": "1\r\nSet-Cookie: evil=1"}},
		"cookie injection": {StatusCode: 200, Cookies: []string{"a=1\nx: y"}},
		"status":           {StatusCode: 42},
	} {
		rec := httptest.NewRecorder()
		if err := WriteHTTPResponse(rec, resp); err == nil {
			t.Errorf("%s: no error", name)
		}
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 || rec.Flushed {
			t.Errorf("%s: wrote something: headers %v body %q", name, rec.Header(), rec.Body)
		}
	}
}

func TestParseHTTPResponse(t *testing.T) {
	resp, err := ParseHTTPResponse([]byte(`{"statusCode":404,"headers":{"a":"b"},"body":"nope","cookies":["c=1"]}`))
	if err != nil || resp.StatusCode != 404 || resp.Body != "nope" || resp.Headers["a"] != "b" || len(resp.Cookies) != 1 {
		t.Errorf("structured: %+v, %v", resp, err)
	}
	// Without statusCode API Gateway infers a 200 JSON response.
	for payload, body := range map[string]string{
		`{"message":"hi"}`: `{"message":"hi"}`,
		`"plain text"`:     "plain text",
		`[1,2]`:            "[1,2]",
		`null`:             "null",
	} {
		resp, err := ParseHTTPResponse([]byte(payload))
		if err != nil || resp.StatusCode != 200 || resp.Body != body || resp.Headers["content-type"] != "application/json" {
			t.Errorf("%s: %+v, %v", payload, resp, err)
		}
	}
	for _, bad := range []string{``, `{`, `not json`, `{"statusCode":"200"}`} {
		if _, err := ParseHTTPResponse([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

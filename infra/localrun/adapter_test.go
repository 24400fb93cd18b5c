package localrun

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestHTTPHandlerAdapter(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	var lcID string
	var hasDeadline bool
	h := HTTPHandler(func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got = ev
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			lcID = lc.AwsRequestID
		}
		_, hasDeadline = ctx.Deadline()
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"content-type": "text/plain"}, Body: "ok", Cookies: []string{"a=1"}}, nil
	})
	req := httptest.NewRequest(http.MethodPost, "/any/path?q=1", strings.NewReader(`{"x":1}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != 201 || rec.Body.String() != "ok" || rec.Header().Get("Set-Cookie") != "a=1" {
		t.Errorf("response %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if got.Version != "2.0" || got.RouteKey != "$default" || got.RequestContext.RouteKey != "$default" ||
		got.RawPath != "/any/path" || got.QueryStringParameters["q"] != "1" || got.Body != `{"x":1}` || got.IsBase64Encoded {
		t.Errorf("event = %+v", got)
	}
	if lcID == "" || lcID != got.RequestContext.RequestID || rec.Header().Get("Apigw-Requestid") != lcID {
		t.Errorf("lambda context request id %q, event %q, header %q", lcID, got.RequestContext.RequestID, rec.Header().Get("Apigw-Requestid"))
	}
	if !hasDeadline {
		t.Error("handler context has no deadline")
	}
}

func TestHTTPHandlerAdapterFailures(t *testing.T) {
	for name, h := range map[string]func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error){
		"error": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
		},
		"panic": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			panic("boom")
		},
		"malformed": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{Body: "%%%", IsBase64Encoded: true}, nil
		},
	} {
		rec := httptest.NewRecorder()
		HTTPHandler(h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		expectMessage(t, rec.Result(), rec.Body.Bytes(), http.StatusInternalServerError, "Internal Server Error")
		_ = name
	}

	called := false
	h := HTTPHandler(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		called = true
		return events.APIGatewayV2HTTPResponse{}, nil
	})
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("a", MaxBodySize+1)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	expectMessage(t, rec.Result(), rec.Body.Bytes(), http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	if called {
		t.Error("handler called for an oversized body")
	}
}

func TestRoutedHTTPHandler(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	h, err := RoutedHTTPHandler([]Route{{Method: "GET", Path: "/auth/start"}, {Method: "POST", Path: "/wechat/{appid}/callback"}},
		func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = ev
			return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wechat/wx9/callback", nil))
	if rec.Code != 200 || got.RouteKey != "POST /wechat/{appid}/callback" || got.PathParameters["appid"] != "wx9" {
		t.Errorf("status %d, event %+v", rec.Code, got)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wechat/wx9/callback", nil))
	expectMessage(t, rec.Result(), rec.Body.Bytes(), http.StatusNotFound, "Not Found")

	if _, err := RoutedHTTPHandler([]Route{{Method: "GET", Path: "nope"}}, nil); err == nil {
		t.Error("invalid route accepted")
	}
}

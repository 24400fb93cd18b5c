package localrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// iamServer serves one IAM route and one open route, recording the IAM context the handler saw.
func iamServer(t *testing.T) (*httptest.Server, *events.APIGatewayV2HTTPRequestContextAuthorizerDescription) {
	t.Helper()
	seen := &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
	h, err := RoutedHTTPHandler([]Route{{Method: "POST", Path: "/v1/things/{id}", IAM: true}, {Method: "GET", Path: "/open"}},
		func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
				*seen = *a
			}
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "served"}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, seen
}

func signed(t *testing.T, url string, body []byte, creds aws.Credentials, at time.Time) *http.Request {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

func doIAM(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestIAMRoutesNeedALocalSigV4Signature(t *testing.T) {
	srv, seen := iamServer(t)
	url := srv.URL + "/v1/things/a%20b?x=1&y=two"
	body := []byte(`{"a":1}`)

	status, out := doIAM(t, signed(t, url, body, LocalCredentials, time.Now()))
	if status != 200 || out != "served" || seen.IAM == nil || seen.IAM.UserARN != LocalCallerARN || seen.IAM.AccessKey != "dummy" {
		t.Fatalf("signed request: %d %q, IAM context %+v", status, out, seen.IAM)
	}

	unsigned, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	tampered := signed(t, url, body, LocalCredentials, time.Now())
	tampered.Body = io.NopCloser(bytes.NewReader([]byte(`{"a":2}`)))
	otherQuery := signed(t, url, body, LocalCredentials, time.Now())
	otherQuery.URL.RawQuery = "x=1&y=three"
	for name, req := range map[string]*http.Request{
		"unsigned":      unsigned,
		"wrong secret":  signed(t, url, body, aws.Credentials{AccessKeyID: "dummy", SecretAccessKey: "guess"}, time.Now()),
		"other key":     signed(t, url, body, aws.Credentials{AccessKeyID: "AKIAOTHER", SecretAccessKey: "dummy"}, time.Now()),
		"old":           signed(t, url, body, LocalCredentials, time.Now().Add(-20*time.Minute)),
		"body changed":  tampered,
		"query changed": otherQuery,
	} {
		*seen = events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
		if status, out := doIAM(t, req); status != http.StatusForbidden || !strings.Contains(out, "Forbidden") || seen.IAM != nil {
			t.Errorf("%s: %d %q, want 403 and no invocation", name, status, out)
		}
	}
	if status, _ := doIAM(t, mustReq(t, "GET", srv.URL+"/open")); status != 200 {
		t.Errorf("a route without IAM needs no signature: %d", status)
	}
}

// curl --aws-sigv4, as README shows it, passes the local check.
func TestIAMRoutesAcceptCurlSigV4(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	srv, seen := iamServer(t)
	out, err := exec.Command("curl", "-sS", "-w", " %{http_code}", "--aws-sigv4", "aws:amz:us-east-1:execute-api", "--user", "dummy:dummy",
		"-H", "Content-Type: application/json", "--data", `{"button":[]}`, srv.URL+"/v1/things/x?lang=zh_CN").CombinedOutput()
	if err != nil || string(out) != "served 200" || seen.IAM == nil {
		t.Fatalf("curl: %v %q, IAM context %+v", err, out, seen.IAM)
	}
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

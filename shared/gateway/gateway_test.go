package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/gateway"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

const (
	miniProgram     = "wx5a1c0e8d2b7f3a01"
	officialAccount = "wx3f6a8c1e2b9d4a04"
)

// env is the gateway behind the local API Gateway (routes with AWS_IAM, SigV4 checked), DynamoDB Local and
// the sandbox over real HTTP, with the default sandbox accounts authorized for tenant shop-1.
type env struct {
	wx      *sandbox.Sandbox
	store   *tokenstore.Store
	url     string
	compTok string
	base    string // the sandbox
	logs    *testenv.LogBuffer
}

var routes = []localrun.Route{
	{Method: "GET", Path: "/v1/authorizers", IAM: true}, {Method: "GET", Path: "/v1/authorizers/{appid}", IAM: true},
	{Method: "GET", Path: "/v1/authorizers/{appid}/wechat/{path+}", IAM: true}, {Method: "POST", Path: "/v1/authorizers/{appid}/wechat/{path+}", IAM: true},
	{Method: "GET", Path: "/v1/component/wechat/{path+}", IAM: true}, {Method: "POST", Path: "/v1/component/wechat/{path+}", IAM: true},
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testenv.DynamoDB(t)
	db := platform.NewDynamoDB(testenv.AWSConfig(t))
	e := &env{logs: &testenv.LogBuffer{}}
	e.store = tokenstore.New(db, testenv.Table(t, db))
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	var base string
	e.wx, base = testenv.Sandbox(t, func(c *sandbox.Config) { c.Logger = log })
	e.base = base
	api := &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Logger: log}
	comp, compTok := testenv.Component(t, e.wx, api, e.store)
	e.compTok = compTok
	testenv.AuthorizeAll(t, e.wx, api, e.store, e.compTok, "shop-1", sandbox.DefaultAccounts())
	h := &gateway.Handler{Accounts: e.store, Authorizers: credentials.NewAuthorizers(e.store, comp, api, credentials.Options{}),
		Component: comp, APIBase: base, Logger: log}
	routed, err := localrun.RoutedHTTPHandler(routes, h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(routed)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// call makes a SigV4-signed request (the local stack's dummy credentials), as a provider's service would.
func (e *env) call(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	return e.send(t, method, path, body, true)
}

func (e *env) send(t *testing.T, method, path, body string, sign bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if sign {
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), localrun.LocalCredentials, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errcode(t *testing.T, b []byte) int {
	t.Helper()
	var v struct {
		Code int `json:"errcode"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
	return v.Code
}

func TestForwardsJSONAndBinaryAnswersUnchanged(t *testing.T) {
	e := newEnv(t)
	tpl := e.wx.AddTemplate("1.0.0", "demo")

	// POST with a JSON body, the authorizer's token added.
	resp, b := e.call(t, "POST", "/v1/authorizers/"+miniProgram+"/wechat/wxa/commit",
		fmt.Sprintf(`{"template_id":%d,"ext_json":"{\"extAppid\":\"%s\"}","user_version":"1.0.0","user_desc":"via the gateway"}`, tpl, miniProgram))
	if resp.StatusCode != 200 || resp.Header.Get(gateway.UpstreamHeader) != "wechat" || errcode(t, b) != 0 {
		t.Fatalf("commit: %d %s %s", resp.StatusCode, resp.Header.Get(gateway.UpstreamHeader), b)
	}
	if got := e.wx.CodeStats(miniProgram).Commits; got != 1 {
		t.Fatalf("the sandbox saw %d commits", got)
	}
	// GET with the caller's query kept; a binary answer comes back byte for byte.
	resp, img := e.call(t, "GET", "/v1/authorizers/"+miniProgram+"/wechat/wxa/get_qrcode?path=pages%2Findex", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(img, []byte{0xff, 0xd8}) {
		t.Fatalf("get_qrcode: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(img))
	}
	a, _ := e.store.Authorizer(context.Background(), miniProgram)
	direct, err := http.Get(e.base + "/wxa/get_qrcode?path=pages%2Findex&access_token=" + a.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(direct.Body)
	direct.Body.Close()
	if !bytes.Equal(img, want) {
		t.Errorf("the QR code differs from WeChat's own answer (%d vs %d bytes)", len(img), len(want))
	}
	// A WeChat error is WeChat's answer, passed through as it is.
	resp, b = e.call(t, "GET", "/v1/authorizers/"+officialAccount+"/wechat/wxa/get_category", "")
	if resp.StatusCode != 200 || errcode(t, b) != 61007 {
		t.Errorf("an official account's get_category: %d %s", resp.StatusCode, b)
	}
	// The component's token: component_access_token under /cgi-bin/component/, access_token elsewhere.
	resp, b = e.call(t, "POST", "/v1/component/wechat/cgi-bin/component/api_get_authorizer_info",
		fmt.Sprintf(`{"component_appid":%q,"authorizer_appid":%q}`, testenv.ComponentAppID, officialAccount))
	if resp.StatusCode != 200 || errcode(t, b) != 0 || !strings.Contains(string(b), "鲜果时光") {
		t.Errorf("api_get_authorizer_info: %d %s", resp.StatusCode, b)
	}
	// Its answer carries the account's refresh token: taken out, and said so.
	if strings.Contains(string(b), "refresh_token") || strings.Contains(string(b), e.wx.RefreshToken(officialAccount)) ||
		resp.Header.Get(gateway.RedactedHeader) != "authorizer_refresh_token" {
		t.Errorf("api_get_authorizer_info passed a refresh token on (redacted %q): %s", resp.Header.Get(gateway.RedactedHeader), b)
	}
	resp, b = e.call(t, "GET", "/v1/component/wechat/wxa/gettemplatelist", "")
	if resp.StatusCode != 200 || errcode(t, b) != 0 || !strings.Contains(string(b), "template_list") {
		t.Errorf("gettemplatelist: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(e.logs.String(), a.AccessToken) || strings.Contains(e.logs.String(), e.compTok) {
		t.Error("a token appeared in the logs")
	}
}

func TestRejectedTokenIsRefreshedOnceForFiftyCallers(t *testing.T) {
	e := newEnv(t)
	path := "/v1/authorizers/" + miniProgram + "/wechat/cgi-bin/account/getaccountbasicinfo"
	if resp, b := e.call(t, "GET", path, ""); resp.StatusCode != 200 || errcode(t, b) != 0 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, b)
	}
	issued := len(e.wx.AuthorizerTokenIssues(miniProgram))
	calls := e.wx.Calls("getaccountbasicinfo")
	e.wx.InvalidateAccessTokens(miniProgram) // the stored token now answers 40001

	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for range 50 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", e.url+path, nil)
			sum := sha256.Sum256(nil)
			_ = v4.NewSigner().SignHTTP(context.Background(), localrun.LocalCredentials, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"errcode":0`) {
				errs <- fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error("a caller got", msg)
	}
	if t.Failed() {
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, "forwarded") && strings.Contains(l, "40001") || strings.Contains(l, "invalidat") || strings.Contains(l, "WARN") {
				t.Log(l)
			}
		}
	}
	if n := len(e.wx.AuthorizerTokenIssues(miniProgram)) - issued; n != 1 {
		t.Errorf("%d tokens issued for 50 callers after one 40001; want 1", n)
	}
	if n := e.wx.Calls("getaccountbasicinfo") - calls; n < 51 || n > 100 {
		t.Errorf("%d calls to WeChat for 50 callers: each may retry once, at most", n)
	}

	// A caller that keeps getting 40001 for the fresh token (here: WeChat resets it again at once) causes no
	// second refresh within RefreshEvery: WeChat's answer is passed on.
	e.wx.InvalidateAccessTokens(miniProgram)
	if resp, b := e.call(t, "GET", path, ""); resp.StatusCode != 200 || errcode(t, b) != 40001 {
		t.Errorf("second rejection within a minute: %d %s", resp.StatusCode, b)
	}
	if n := len(e.wx.AuthorizerTokenIssues(miniProgram)) - issued; n != 1 {
		t.Errorf("%d refreshes after a second rejection within a minute; want still 1", n)
	}
	// On the component route, a 40001 from an API that does not take the component token says nothing about it.
	before := e.wx.Calls("api_component_token")
	for range 3 {
		if resp, b := e.call(t, "GET", "/v1/component/wechat/cgi-bin/account/getaccountbasicinfo", ""); resp.StatusCode != 200 || errcode(t, b) != 40001 {
			t.Errorf("component token on an authorizer API: %d %s", resp.StatusCode, b)
		}
	}
	if n := e.wx.Calls("api_component_token") - before; n != 0 {
		t.Errorf("%d component token refreshes caused by another API's 40001", n)
	}
}

func TestRefusesTokensBadPathsAndUnsignedRequests(t *testing.T) {
	e := newEnv(t)
	before := e.wx.AllCalls()
	for name, c := range map[string]struct {
		method, path string
		status       int
		code         string
	}{
		"caller's access_token":           {"GET", "/v1/authorizers/" + miniProgram + "/wechat/wxa/get_category?access_token=mine", 400, "token_supplied"},
		"caller's component_access_token": {"GET", "/v1/component/wechat/wxa/gettemplatelist?Component_Access_Token=x", 400, "token_supplied"},
		"outside WeChat's API":            {"GET", "/v1/authorizers/" + miniProgram + "/wechat/internal/admin", 400, "bad_path"},
		"a token endpoint":                {"POST", "/v1/component/wechat/cgi-bin/component/api_query_auth", 400, "bad_path"},
		"the basic token endpoint":        {"GET", "/v1/authorizers/" + miniProgram + "/wechat/cgi-bin/token", 400, "bad_path"},
		"climbing":                        {"GET", "/v1/authorizers/" + miniProgram + "/wechat/cgi-bin/%2e%2e/token", 400, "bad_path"},
		"not an appid":                    {"GET", "/v1/authorizers/wx-nope/wechat/cgi-bin/account/getaccountbasicinfo", 400, "bad_appid"},
		"unknown account":                 {"GET", "/v1/authorizers/wx00000000000000ff", 404, "not_found"},
	} {
		resp, b := e.call(t, c.method, c.path, "")
		if resp.StatusCode != c.status || !strings.Contains(string(b), `"error":"`+c.code+`"`) || resp.Header.Get(gateway.UpstreamHeader) != "" {
			t.Errorf("%s: %d %s, want %d %s", name, resp.StatusCode, b, c.status, c.code)
		}
	}
	if resp, b := e.send(t, "GET", "/v1/authorizers/"+miniProgram+"/wechat/wxa/get_category", "", false); resp.StatusCode != 403 {
		t.Errorf("unsigned: %d %s", resp.StatusCode, b)
	}
	if after := e.wx.AllCalls(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused requests reached WeChat: before %v after %v", before, after)
	}
	// The handler itself serves nothing without API Gateway's IAM context.
	h := &gateway.Handler{Accounts: e.store}
	resp, _ := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RawPath: "/v1/authorizers",
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}}})
	if resp.StatusCode != 403 {
		t.Errorf("no IAM context: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestListsAccountsWithoutTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.store.Revoke(ctx, officialAccount, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, b := e.call(t, "GET", "/v1/authorizers", "")
	var list struct {
		Authorizers []gateway.Account `json:"authorizers"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil || len(list.Authorizers) != len(sandbox.DefaultAccounts()) {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	for _, appid := range []string{miniProgram, officialAccount} {
		a, _ := e.store.Authorizer(ctx, appid)
		for _, tok := range []string{a.AccessToken, a.RefreshToken} {
			if tok != "" && strings.Contains(string(b), tok) {
				t.Errorf("the list carries a token of %s", appid)
			}
		}
		if strings.Contains(string(b), "token") {
			t.Errorf("the list carries a token of %s", appid)
		}
	}
	resp, b = e.call(t, "GET", "/v1/authorizers/"+officialAccount, "")
	var one gateway.Account
	if resp.StatusCode != 200 || json.Unmarshal(b, &one) != nil || one.Status != tokenstore.StatusRevoked || one.Tenant != "shop-1" ||
		one.Kind != tokenstore.KindOfficialAccount || len(one.PermissionSets) == 0 || one.NickName != "鲜果时光" {
		t.Errorf("one: %d %s", resp.StatusCode, b)
	}
	// A revoked account's calls are refused by the platform, not sent to WeChat.
	resp, b = e.call(t, "GET", "/v1/authorizers/"+officialAccount+"/wechat/cgi-bin/account/getaccountbasicinfo", "")
	if resp.StatusCode != 409 || !strings.Contains(string(b), "not_authorized") {
		t.Errorf("revoked: %d %s", resp.StatusCode, b)
	}
}

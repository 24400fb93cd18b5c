package credentials_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// authorize stores one authorized sandbox account through the real exchange path and returns its appid.
func (e *env) authorize(t *testing.T) string {
	t.Helper()
	appid := e.wx.Accounts()[0].AppID
	code, err := e.wx.Authorize(context.Background(), appid, e.wx.CreatePreAuthCode())
	if err != nil {
		t.Fatal(err)
	}
	svc := authorization.New(e.store, e.instance(credentials.Options{}), e.api)
	if _, err := svc.Redirect(context.Background(), authorization.Redirect{Code: code}); err != nil {
		t.Fatal(err)
	}
	return appid
}

func (e *env) authorizers(opts credentials.Options) *credentials.Authorizers {
	return credentials.NewAuthorizers(e.store, e.instance(opts), e.api, opts)
}

// basicInfo is an API call made with an authorizer token (WeChat answers 40001/42001 for a bad one).
func (e *env) basicInfo(ctx context.Context, token string) error {
	return e.api.Call(ctx, "getaccountbasicinfo", "GET", "/cgi-bin/account/getaccountbasicinfo",
		map[string][]string{"access_token": {token}}, nil, nil)
}

func TestAuthorizerTokenRejectedTriggersExactlyOneRefresh(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	appid := e.authorize(t)
	ctx := context.Background()
	instances := make([]*credentials.Authorizers, 4)
	for i := range instances {
		instances[i] = e.authorizers(credentials.Options{Poll: 20 * time.Millisecond})
		if _, err := instances[i].Token(ctx, appid); err != nil {
			t.Fatal(err)
		}
	}
	// WeChat's clock passes the token's expiry: it answers 42001 while our instances still trust it.
	e.offset.Store(int64(3 * time.Hour))
	issuedBefore := len(e.wx.AuthorizerTokenIssues(appid))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := instances[i%len(instances)].Do(ctx, appid, func(tok string) error { return e.basicInfo(ctx, tok) }); err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	// (The skew expired the component token too: the first api_authorizer_token call is refused for it, the
	// component token is refreshed once and the call repeated. WeChat issues one authorizer token.)
	if n := len(e.wx.AuthorizerTokenIssues(appid)) - issuedBefore; n != 1 {
		t.Fatalf("WeChat issued %d authorizer tokens after the token was rejected, want exactly 1", n)
	}
	if n := e.wx.Calls("api_component_token"); n != 2 {
		t.Fatalf("api_component_token called %d times in all, want 2 (initial + one refresh after 42001)", n)
	}
	a, _ := e.store.Authorizer(ctx, appid)
	if a.RefreshToken != e.wx.RefreshToken(appid) || a.Status != tokenstore.StatusAuthorized {
		t.Fatal("after the refresh the stored refresh token is not WeChat's current one")
	}
}

func TestAuthorizerTokenOfUnknownAccount(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	_, err := e.authorizers(credentials.Options{}).Token(context.Background(), "wx0000000000000000")
	if err == nil {
		t.Fatal("a token for an account that never authorized")
	}
	if n := e.wx.Calls("api_authorizer_token"); n != 0 {
		t.Fatalf("WeChat called %d times for an unknown account", n)
	}
}

// Issue 7, item 6: a re-authorization lands while a refresh is in flight (WeChat has answered the refresh,
// the answer is on its way). The refresh's commit must not put the refresh token it used back over the new
// one: WeChat invalidated it with the re-authorization, and the account would be lost.
func TestReauthorizationDuringARefreshKeepsTheNewRefreshToken(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	appid := e.authorize(t)
	ctx := context.Background()
	before, _ := e.store.Authorizer(ctx, appid)
	if _, err := e.store.Invalidate(ctx, tokenstore.AuthorizerKey(appid), before.AccessToken); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	e.wx.SetFault("api_authorizer_token", sandbox.Fault{HoldAnswer: hold})
	got := make(chan error, 1)
	go func() {
		_, err := e.authorizers(credentials.Options{}).Token(ctx, appid)
		got <- err
	}()
	testenv.Eventually(t, 5*time.Second, "WeChat to process the refresh", func() bool { return e.wx.Served("api_authorizer_token") == 1 })

	// The merchant authorizes again meanwhile: a new refresh token; the one the refresh used is dead.
	code, err := e.wx.Authorize(ctx, appid, e.wx.CreatePreAuthCode())
	if err != nil {
		t.Fatal(err)
	}
	svc := authorization.New(e.store, e.instance(credentials.Options{}), e.api)
	if _, err := svc.Redirect(ctx, authorization.Redirect{Code: code}); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if err := <-got; err != nil {
		t.Fatalf("token during re-authorization: %v", err)
	}
	a, _ := e.store.Authorizer(ctx, appid)
	if a.RefreshToken != e.wx.RefreshToken(appid) || a.RefreshToken == before.RefreshToken {
		t.Fatal("the refresh put the old refresh token over the re-authorization's")
	}
}

// Issue 7, item 5: the lease write was applied but its answer lost. The getter must see its own lease as a
// grant and refresh at once, not wait out its own lease as if someone else held it.
func TestLostLeaseAnswerDoesNotMakeTheGetterWaitForItself(t *testing.T) {
	db, faults := testenv.DynamoDBWithFaults(t)
	e := newEnv(t, nil)
	e.store = tokenstore.New(db, testenv.Table(t, db))
	e.storeTicket(t)
	faults.LoseAnswers(1, func(op string, body []byte) bool {
		return op == "UpdateItem" && strings.Contains(string(body), "LeaseOwner")
	})
	c := e.instance(credentials.Options{LeaseFor: time.Minute, WaitFor: 2 * time.Second})
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("token: %v", err)
	}
	if faults.Lost() != 1 || e.wx.Calls("api_component_token") != 1 {
		t.Fatalf("answers lost %d, api_component_token calls %d; want 1 and 1", faults.Lost(), e.wx.Calls("api_component_token"))
	}
}

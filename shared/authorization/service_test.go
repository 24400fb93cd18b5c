package authorization_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	miniProgram     = "wx5a1c0e8d2b7f3a01"
	officialAccount = "wx3f6a8c1e2b9d4a04"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewJSONHandler(io.Discard, nil))) // keep test output readable
	os.Exit(m.Run())
}

// env: the ticket URL (authevents + this service) receiving the sandbox's pushes, and a second service
// instance playing the /auth/callback side, as two Lambda functions would.
type env struct {
	db       *dynamodb.Client
	faults   *testenv.DynamoDBFaults
	store    *tokenstore.Store
	wx       *sandbox.Sandbox
	api      *wxapi.Client
	push     *authorization.Service // behind the ticket URL
	callback *authorization.Service // behind /auth/callback
	offset   atomic.Int64           // the callback service's clock skew
}

func newEnv(t *testing.T, tweak func(*sandbox.Config)) *env {
	t.Helper()
	db, faults := testenv.DynamoDBWithFaults(t)
	e := &env{db: db, faults: faults, store: tokenstore.New(db, testenv.Table(t, db))}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	crypter, err := wxcrypt.New(testenv.Token, testenv.EncodingAESKey, testenv.ComponentAppID)
	if err != nil {
		t.Fatal(err)
	}
	h := &authevents.Handler{Crypter: crypter, Store: e.store, Logger: quiet}
	srv := httptest.NewServer(localrun.HTTPHandler(h.Handle))
	t.Cleanup(srv.Close)
	var base string
	e.wx, base = testenv.Sandbox(t, func(c *sandbox.Config) {
		c.PushURL = srv.URL
		c.Logger = quiet
		if tweak != nil {
			tweak(c)
		}
	})
	e.api = &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond, Logger: quiet}
	e.push = e.service(e.api)
	h.Authorizations = e.push
	e.callback = e.service(e.api)
	e.callback.Now = func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }
	ticket, err := e.wx.PushTicket(context.Background())
	if err != nil || ticket == "" {
		t.Fatalf("first ticket: %v", err)
	}
	// Stored by the push; stored here too for the tests that deliver pushes by hand (no push URL).
	if _, err := e.store.PutTicket(context.Background(), testenv.ComponentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) service(api *wxapi.Client) *authorization.Service {
	comp := credentials.NewComponent(e.store, api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	return authorization.New(e.store, comp, api)
}

// link is what /auth/start does for tenant: a pre_auth_code issued (and recorded) for it.
func (e *env) link(t *testing.T, tenant string) string {
	t.Helper()
	pre, _, err := e.callback.PreAuthCode(context.Background(), tenant)
	if err != nil {
		t.Fatalf("pre_auth_code for %s: %v", tenant, err)
	}
	return pre
}

// authorize is the merchant clicking Authorize on WeChat's page opened from a link with pre: it returns the
// auth code the redirect carries (the push is sent by the sandbox, before or after, per PushDelay).
func (e *env) authorize(t *testing.T, appid, pre string) string {
	t.Helper()
	code, err := e.wx.Authorize(context.Background(), appid, pre)
	if err != nil {
		t.Fatalf("authorize %s: %v", appid, err)
	}
	return code
}

func (e *env) redirect(t *testing.T, code, tenant, pre string) authorization.Result {
	t.Helper()
	res, err := e.callback.Redirect(context.Background(), authorization.Redirect{Code: code, Tenant: tenant, PreAuthCode: pre, WaitFor: 8 * time.Second})
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	return res
}

// pushed builds the `authorized` push WeChat sends for code (for tests that deliver it by hand).
func pushed(appid, code, pre string) authevents.Event {
	return authevents.Event{InfoType: "authorized", AuthorizerAppID: appid, AuthorizationCode: code, PreAuthCode: pre, CreateTime: time.Now().Unix()}
}

func (e *env) waitPushes(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the sandbox's pushes", func() bool { return len(e.wx.Pushes()) >= n })
	for _, p := range e.wx.Pushes() {
		if p.Err != nil {
			t.Fatalf("push %s failed: %v", p.InfoType, p.Err)
		}
	}
}

// checkConsistent asserts one consistent record: authorized, the tenant bound, and the tokens WeChat
// considers current.
func (e *env) checkConsistent(t *testing.T, appid, tenant string) tokenstore.Authorizer {
	t.Helper()
	a, err := e.store.Authorizer(context.Background(), appid)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != tokenstore.StatusAuthorized || a.Tenant != tenant {
		t.Fatalf("status %q tenant %q, want authorized/%q", a.Status, a.Tenant, tenant)
	}
	if a.RefreshToken == "" || a.RefreshToken != e.wx.RefreshToken(appid) {
		t.Fatal("stored refresh token is not WeChat's current one")
	}
	if len(a.PermissionSets) == 0 {
		t.Fatalf("permission sets missing: %+v", a.PermissionSets)
	}
	if _, err := e.api.AuthorizerToken(context.Background(), e.componentToken(t), testenv.ComponentAppID, appid, a.RefreshToken); err != nil {
		t.Fatalf("stored refresh token refused by WeChat: %v", err)
	}
	return a
}

func (e *env) componentToken(t *testing.T) string {
	t.Helper()
	tok, err := credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func kinds(t *testing.T, store *tokenstore.Store, appid string) []string {
	t.Helper()
	hist, err := store.History(context.Background(), appid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range hist {
		out = append(out, ev.Kind)
	}
	return out
}

func TestPushBeforeRedirect(t *testing.T) {
	e := newEnv(t, nil) // the sandbox pushes before it redirects
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	e.waitPushes(t, 2) // ticket + authorized
	pushedRec, err := e.store.Authorizer(context.Background(), miniProgram)
	if err != nil || pushedRec.Tenant != "t1" {
		t.Fatalf("after the push: %+v, %v (want stored and bound by the push alone)", pushedRec, err)
	}
	res := e.redirect(t, code, "t1", pre)
	if !res.Confirmed || res.Authorizer.Tenant != "t1" {
		t.Fatalf("redirect: confirmed %v, tenant %q", res.Confirmed, res.Authorizer.Tenant)
	}
	got := e.checkConsistent(t, miniProgram, "t1")
	if got.AccessToken != pushedRec.AccessToken || got.RefreshToken != pushedRec.RefreshToken {
		t.Fatal("the redirect replaced the tokens the push stored")
	}
	if got.Kind != tokenstore.KindMiniProgram || got.Info.NickName == "" {
		t.Fatalf("kind %q, name %q", got.Kind, got.Info.NickName)
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1", n)
	}
}

func TestRedirectBeforePush(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" }) // we deliver the push by hand, after the redirect
	pre := e.link(t, "t2")
	code := e.authorize(t, officialAccount, pre)
	done := make(chan authorization.Result)
	go func() { done <- e.redirect(t, code, "t2", pre) }()
	// The redirect exchanges the code and then waits for WeChat's word on which link was used.
	testenv.Eventually(t, 5*time.Second, "the redirect's exchange", func() bool {
		a, err := e.store.Authorizer(context.Background(), officialAccount)
		return err == nil && a.AuthCode == code
	})
	if a, _ := e.store.Authorizer(context.Background(), officialAccount); a.Tenant != "" {
		t.Fatalf("the redirect bound tenant %q by itself", a.Tenant)
	}
	if err := e.push.Authorized(context.Background(), pushed(officialAccount, code, pre)); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if !res.Confirmed || res.Authorizer.Kind != tokenstore.KindOfficialAccount {
		t.Fatalf("redirect result %+v", res)
	}
	e.checkConsistent(t, officialAccount, "t2")
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1", n)
	}
}

func TestPushAndRedirectAtTheSameTime(t *testing.T) {
	for round := range 6 {
		e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = time.Duration(round) * time.Millisecond })
		pre := e.link(t, "tenant-race")
		code := e.authorize(t, miniProgram, pre)
		if res := e.redirect(t, code, "tenant-race", pre); !res.Confirmed {
			t.Fatalf("round %d: redirect not confirmed", round)
		}
		e.waitPushes(t, 2)
		e.checkConsistent(t, miniProgram, "tenant-race")
		if n := e.wx.Calls("api_query_auth"); n != 1 {
			t.Fatalf("round %d: api_query_auth called %d times, want 1", round, n)
		}
	}
}

func TestUnauthorizeThenReauthorize(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	pre := e.link(t, "t1")
	e.redirect(t, e.authorize(t, miniProgram, pre), "t1", pre)
	first := e.checkConsistent(t, miniProgram, "t1")

	if err := e.wx.Revoke(ctx, miniProgram); err != nil {
		t.Fatal(err)
	}
	revoked, _ := e.store.Authorizer(ctx, miniProgram)
	if revoked.Status != tokenstore.StatusRevoked || revoked.AccessToken != "" || revoked.RefreshToken != "" {
		t.Fatalf("after unauthorized: status %q, tokens wiped: %v", revoked.Status, revoked.AccessToken == "" && revoked.RefreshToken == "")
	}
	if revoked.Tenant != "t1" || revoked.Info.NickName == "" {
		t.Fatal("revocation lost the tenant or the account info")
	}
	authz := credentials.NewAuthorizers(e.store, credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{}), e.api, credentials.Options{})
	var na *credentials.NotAuthorizedError
	if _, err := authz.Token(ctx, miniProgram); !errors.As(err, &na) || na.Status != tokenstore.StatusRevoked {
		t.Fatalf("token of a revoked account: %v", err)
	}

	pre = e.link(t, "t1")
	e.redirect(t, e.authorize(t, miniProgram, pre), "t1", pre)
	again := e.checkConsistent(t, miniProgram, "t1")
	if again.RefreshToken == first.RefreshToken {
		t.Fatal("re-authorization kept the old refresh token")
	}
	// The old refresh token is gone at WeChat too.
	_, err := e.api.AuthorizerToken(ctx, e.componentToken(t), testenv.ComponentAppID, miniProgram, first.RefreshToken)
	if !wxapi.IsCode(err, 61023) {
		t.Fatalf("old refresh token: want 61023, got %v", err)
	}
	if got := kinds(t, e.store, miniProgram); !slices.Equal(got, []string{"authorized", "tenant_bound", "revoked", "authorized"}) {
		t.Fatalf("history %v", got)
	}
}

func TestLateUnauthorizedPushDoesNotRevokeNewerAuthorization(t *testing.T) {
	e := newEnv(t, nil)
	pre := e.link(t, "t1")
	e.redirect(t, e.authorize(t, miniProgram, pre), "t1", pre)
	err := e.push.Unauthorized(context.Background(), authevents.Event{
		InfoType: "unauthorized", AuthorizerAppID: miniProgram, CreateTime: time.Now().Add(-time.Hour).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.checkConsistent(t, miniProgram, "t1")
}

func TestUnknownCodeFromTheRedirectIsLeftToThePushAndRefusedByIt(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	_, err := e.callback.Redirect(ctx, authorization.Redirect{Code: "no-such-code", Tenant: "t1", WaitFor: 100 * time.Millisecond})
	if !errors.Is(err, authorization.ErrNotConfirmed) {
		t.Fatalf("want ErrNotConfirmed (a redirect cannot judge a spent code), got %v", err)
	}
	// A second redirect with the same code learns WeChat's verdict from the claim, without asking again.
	if _, err := e.callback.Redirect(ctx, authorization.Redirect{Code: "no-such-code", WaitFor: 100 * time.Millisecond}); !errors.Is(err, authorization.ErrNotConfirmed) {
		t.Fatalf("second redirect: %v", err)
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1", n)
	}
	// A push naming an account that is not authorized can decide: the code is dead. It is acknowledged.
	if err := e.push.Authorized(ctx, pushed(miniProgram, "no-such-code", "")); err != nil {
		t.Fatalf("push of a dead code: %v (want acknowledged)", err)
	}
	if _, err := e.callback.Redirect(ctx, authorization.Redirect{Code: "no-such-code", WaitFor: 100 * time.Millisecond}); !errors.Is(err, authorization.ErrCodeFailed) {
		t.Fatalf("after the push's verdict: want ErrCodeFailed, got %v", err)
	}
	if _, err := e.store.Authorizer(ctx, miniProgram); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("a dead code stored an account: %v", err)
	}
}

func TestConcurrentAuthorizationsOfManyAccounts(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = 2 * time.Millisecond })
	accounts := e.wx.Accounts()
	var wg sync.WaitGroup
	for i, acc := range accounts {
		tenant := "tenant-" + acc.AppID
		pre := e.link(t, tenant)
		code := e.authorize(t, acc.AppID, pre)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.callback.Redirect(context.Background(), authorization.Redirect{Code: code, Tenant: tenant, PreAuthCode: pre, WaitFor: 8 * time.Second})
			if err != nil || !res.Confirmed {
				t.Errorf("account %d: confirmed %v, %v", i, res.Confirmed, err)
			}
		}()
	}
	wg.Wait()
	e.waitPushes(t, 1+len(accounts))
	for _, acc := range accounts {
		e.checkConsistent(t, acc.AppID, "tenant-"+acc.AppID)
	}
}

func TestTenantIsBoundByThePushEvenIfTheRedirectStopsWaiting(t *testing.T) {
	hold := make(chan struct{})
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = time.Millisecond })
	e.wx.SetFault("api_query_auth", sandbox.Fault{HoldAnswer: hold})
	pre := e.link(t, "t-late")
	code := e.authorize(t, miniProgram, pre)
	// The push has claimed the code and WeChat has answered its api_query_auth; the answer is on its way.
	testenv.Eventually(t, 5*time.Second, "the push's api_query_auth", func() bool { return e.wx.Served("api_query_auth") == 1 })
	_, err := e.callback.Redirect(context.Background(), authorization.Redirect{Code: code, Tenant: "t-late", PreAuthCode: pre, WaitFor: 200 * time.Millisecond})
	if !errors.Is(err, authorization.ErrNotConfirmed) {
		t.Fatalf("want the redirect to stop waiting while the push exchanges, got %v", err)
	}
	close(hold)
	e.waitPushes(t, 2)
	e.checkConsistent(t, miniProgram, "t-late")
}

func TestUnauthorizedBeforeTheAuthorizationIsStoredWins(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" }) // we deliver the pushes by hand, out of order
	ctx := context.Background()
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	authorizedAt := time.Now()
	// The merchant cancels; that push is processed before the authorization ever was.
	if err := e.push.Unauthorized(ctx, authevents.Event{InfoType: "unauthorized", AuthorizerAppID: miniProgram,
		CreateTime: authorizedAt.Add(2 * time.Second).Unix()}); err != nil {
		t.Fatal(err)
	}
	// The late `authorized` push must not bring the account back.
	ev := pushed(miniProgram, code, pre)
	ev.CreateTime = authorizedAt.Unix()
	if err := e.push.Authorized(ctx, ev); err != nil {
		t.Fatal(err)
	}
	a, err := e.store.Authorizer(ctx, miniProgram)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != tokenstore.StatusRevoked || a.RefreshToken != "" || a.AccessToken != "" {
		t.Fatalf("a late authorization revived a revoked account: status %s, tokens present: %v", a.Status, a.RefreshToken != "")
	}
}

func TestTenantSurvivesTheRedirectsOwnFailedExchange(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	e.wx.SetFault("api_query_auth", sandbox.Fault{BusyRate: 1})
	pre := e.link(t, "t-first")
	code := e.authorize(t, miniProgram, pre)
	// The redirect claims the code first; WeChat is busy, so its exchange fails, and the merchant sees an error.
	_, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "t-first", PreAuthCode: pre, WaitFor: time.Second})
	if err == nil || errors.Is(err, authorization.ErrCodeFailed) {
		t.Fatalf("want a passing (not final) failure, got %v", err)
	}
	e.wx.SetFault("api_query_auth", sandbox.Fault{})
	// The push arrives later, exchanges the code and binds the tenant its pre_auth_code was issued to.
	if err := e.push.Authorized(ctx, pushed(miniProgram, code, pre)); err != nil {
		t.Fatal(err)
	}
	e.checkConsistent(t, miniProgram, "t-first")
}

func TestFailureBeforeWeChatIsNotFinal(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	// Another instance is stuck refreshing the component token, and ours has expired: the exchange cannot
	// even start. That says nothing about the code.
	key := tokenstore.ComponentTokenKey(testenv.ComponentAppID)
	cred, _ := e.store.Credential(ctx, key)
	if _, err := e.store.Invalidate(ctx, key, cred.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.store.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "stuck", For: time.Hour, DueBefore: time.Now().Add(time.Hour)}); !ok {
		t.Fatal("set-up lease refused")
	}
	comp := credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{WaitFor: 200 * time.Millisecond})
	svc := authorization.New(e.store, comp, e.api)
	if err := svc.Authorized(ctx, pushed(miniProgram, code, pre)); err == nil {
		t.Fatal("want a passing failure (the push unacknowledged), got success")
	}
	if n := e.wx.Calls("api_query_auth"); n != 0 {
		t.Fatalf("the code was sent to WeChat %d times", n)
	}
	// The stuck instance gives up; WeChat's retry of the push exchanges the same code normally.
	if err := e.store.ReleaseLease(ctx, key, "stuck"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Authorized(ctx, pushed(miniProgram, code, pre)); err != nil {
		t.Fatalf("retry after a passing failure: %v", err)
	}
	e.checkConsistent(t, miniProgram, "t1")
}

func TestSpentCodeWithKnownAppidRecoversTheRefreshToken(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	pre := e.link(t, "t1")
	code := e.authorize(t, officialAccount, pre)
	// An exchange whose answer never reached us: WeChat has spent the code.
	if _, err := e.api.QueryAuth(ctx, e.componentToken(t), testenv.ComponentAppID, code); err != nil {
		t.Fatal(err)
	}
	if err := e.push.Authorized(ctx, pushed(officialAccount, code, pre)); err != nil {
		t.Fatal(err)
	}
	a := e.checkConsistent(t, officialAccount, "t1")
	if a.Info.NickName == "" {
		t.Fatal("recovered record has no account info")
	}
	// And its access token is fetched on first use.
	authz := credentials.NewAuthorizers(e.store, credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{}), e.api, credentials.Options{})
	if _, err := authz.Token(ctx, officialAccount); err != nil {
		t.Fatal(err)
	}
}

// Issue 7, item 1: the push's api_query_auth times out although WeChat processed it (the code is spent); the
// redirect then gets 61009 and, knowing no appid, must not end the authorization: WeChat's retry of the push
// stores the account.
func TestRedirectSeeing61009AfterThePushLostItsAnswerLeavesTheAccountToTheRetriedPush(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)

	e.wx.SetFault("api_query_auth", sandbox.Fault{LoseAnswerRate: 1})
	quick := *e.api
	quick.Timeout = 300 * time.Millisecond
	pushSide := e.service(&quick)
	if err := pushSide.Authorized(ctx, pushed(miniProgram, code, pre)); err == nil {
		t.Fatal("the push whose api_query_auth timed out was acknowledged")
	}
	if e.wx.Served("api_query_auth") != 1 {
		t.Fatal("set-up: WeChat did not process the push's api_query_auth")
	}
	e.wx.SetFault("api_query_auth", sandbox.Fault{})

	// The redirect, still within its wait, claims the released code and hears 61009.
	_, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre, WaitFor: 300 * time.Millisecond})
	if !errors.Is(err, authorization.ErrNotConfirmed) {
		t.Fatalf("redirect: want ErrNotConfirmed, got %v", err)
	}
	if n := e.wx.Calls("api_query_auth"); n != 2 {
		t.Fatalf("api_query_auth called %d times, want 2 (the push's and the redirect's)", n)
	}

	// WeChat retries the push: it names the account, recovers its refresh token and stores it.
	if err := pushSide.Authorized(ctx, pushed(miniProgram, code, pre)); err != nil {
		t.Fatalf("retried push: %v", err)
	}
	e.checkConsistent(t, miniProgram, "t1")
	if n := e.wx.Calls("api_query_auth"); n != 2 {
		t.Fatalf("the retried push called api_query_auth again (%d calls): the spent code was not remembered", n)
	}
	// A reload of the redirect's page now shows the account.
	a, err := e.callback.Outcome(ctx, code)
	if err != nil || !authorization.Confirmed(a, authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre}) {
		t.Fatalf("outcome for the reload: %+v, %v", a, err)
	}
}

// Issue 7, item 2: a slow WeChat must not keep the exchange past the invocation. With 6 s left and
// api_get_authorizer_info hanging, the account (with the refresh token WeChat issued) is durable before the
// deadline, and nothing is written after it (Lambda would have frozen the process).
func TestExchangeWithASlowWeChatIsStoredBeforeTheInvocationEnds(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	e.wx.SetFault("api_get_authorizer_info", sandbox.Fault{Latency: time.Minute})
	deadline := time.Now().Add(6 * time.Second)
	e.faults.CutAt(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre})
	if err != nil {
		t.Fatalf("redirect: %v", err)
	}
	if n := e.faults.CutHits(); n != 0 {
		t.Fatalf("%d DynamoDB requests came after the invocation's deadline", n)
	}
	e.faults.CutAt(time.Time{})
	a, err := e.store.Authorizer(context.Background(), miniProgram)
	if err != nil || a.RefreshToken != e.wx.RefreshToken(miniProgram) {
		t.Fatalf("the refresh token WeChat issued was not stored before the deadline: %v", err)
	}
}

// Issue 7, item 2: the invocation ends right after api_query_auth answered (here: while
// api_get_authorizer_info is in flight, nothing reaches the table any more). What WeChat issued for the
// single-use code was persisted on the claim first, so the next delivery, even a redirect that knows no
// appid, stores the account without asking WeChat for the code again.
func TestInvocationEndingAfterQueryAuthLeavesTheExchangeToTheNextDelivery(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	hold := make(chan struct{})
	e.wx.SetFault("api_get_authorizer_info", sandbox.Fault{HoldAnswer: hold})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre})
		first <- err
	}()
	testenv.Eventually(t, 5*time.Second, "api_get_authorizer_info", func() bool { return e.wx.Served("api_get_authorizer_info") == 1 })
	e.faults.CutAt(time.Now()) // the invocation is over: Lambda froze it
	close(hold)
	if err := <-first; err == nil {
		t.Fatal("the cut-off invocation reported success")
	}
	e.faults.CutAt(time.Time{})
	if _, err := e.store.Authorizer(context.Background(), miniProgram); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("set-up: the account was stored before the cut-off: %v", err)
	}

	// The next delivery comes after the first one's deadline (its claim lapsed): here a redirect of the same
	// code (a second tab), which cannot recover a spent code from WeChat on its own.
	e.offset.Store(int64(10 * time.Second))
	res, err := e.callback.Redirect(context.Background(), authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre})
	if err != nil {
		t.Fatalf("next delivery: %v", err)
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1 (the code is single-use)", n)
	}
	if res.Authorizer.RefreshToken != e.wx.RefreshToken(miniProgram) {
		t.Fatal("the refresh token WeChat issued for the code was lost")
	}
}

// Issue 7, item 3: a victim's auth_code replayed through another tenant's link (an attacker's own signed
// link) neither moves the account nor shows it.
func TestStolenAuthCodeThroughAnotherTenantsLinkNeitherMovesNorShowsTheAccount(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	victimPre := e.link(t, "victim")
	code := e.authorize(t, miniProgram, victimPre)
	if res := e.redirect(t, code, "victim", victimPre); !res.Confirmed {
		t.Fatal("the victim's own redirect was not confirmed")
	}
	attackerPre := e.link(t, "attacker")
	res, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "attacker", PreAuthCode: attackerPre, WaitFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Confirmed {
		t.Fatal("the attacker's redirect was confirmed: the page would show the victim's account")
	}
	e.checkConsistent(t, miniProgram, "victim")
	for _, ev := range mustHistory(t, e.store, miniProgram) {
		if ev.Kind == "tenant_moved" {
			t.Fatalf("history records a move: %+v", ev)
		}
	}
}

// Issue 7, item 3: the attacker replays the victim's code through their own link before WeChat's push has
// arrived (and before the victim's own redirect): the attacker's redirect may even exchange the code, but it
// binds nothing and shows nothing; the push binds the victim's tenant.
func TestStolenAuthCodeReplayedBeforeThePushBindsNothing(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	victimPre := e.link(t, "victim")
	code := e.authorize(t, officialAccount, victimPre)
	attackerPre := e.link(t, "attacker")
	r, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "attacker", PreAuthCode: attackerPre, WaitFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("attacker's redirect: %v", err)
	}
	if r.Confirmed || r.Authorizer.Tenant != "" {
		t.Fatalf("attacker's redirect: confirmed %v, tenant %q", r.Confirmed, r.Authorizer.Tenant)
	}
	if err := e.push.Authorized(ctx, pushed(officialAccount, code, victimPre)); err != nil {
		t.Fatal(err)
	}
	e.checkConsistent(t, officialAccount, "victim")
	if a, _ := e.callback.Outcome(ctx, code); authorization.Confirmed(a, authorization.Redirect{Code: code, Tenant: "attacker", PreAuthCode: attackerPre}) {
		t.Fatal("a reload of the attacker's page would show the account")
	}
}

func mustHistory(t *testing.T, store *tokenstore.Store, appid string) []tokenstore.Event {
	t.Helper()
	h, err := store.History(context.Background(), appid)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Issue 7, item 3: a genuine re-authorization through another tenant's link moves the account, and the move
// is kept in its history: to which tenant, from which, when.
func TestReauthorizationThroughAnotherTenantsLinkMovesTheAccountAndRecordsIt(t *testing.T) {
	e := newEnv(t, nil)
	preA := e.link(t, "tenant-a")
	e.redirect(t, e.authorize(t, miniProgram, preA), "tenant-a", preA)
	e.checkConsistent(t, miniProgram, "tenant-a")

	before := time.Now()
	preB := e.link(t, "tenant-b")
	if res := e.redirect(t, e.authorize(t, miniProgram, preB), "tenant-b", preB); !res.Confirmed {
		t.Fatal("tenant-b's redirect was not confirmed")
	}
	e.checkConsistent(t, miniProgram, "tenant-b")
	var moves []tokenstore.Event
	for _, ev := range mustHistory(t, e.store, miniProgram) {
		if ev.Kind == "tenant_moved" {
			moves = append(moves, ev)
		}
	}
	if len(moves) != 1 || moves[0].FromTenant != "tenant-a" || moves[0].Tenant != "tenant-b" || moves[0].At < before.Add(-time.Second).UnixMilli() {
		t.Fatalf("history of the move: %+v", moves)
	}
}

// Issue 7, item 3: api_create_preauthcode is bounded platform-wide, and a tenant's code is reused until an
// authorization spends it.
func TestPreAuthCodesAreReusedPerTenantAndBoundedPlatformWide(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	svc := e.service(e.api)
	svc.PreAuthPerMinute = 3
	minute := time.Now().Truncate(time.Minute).Add(30 * time.Second) // one clock minute for the whole budget
	svc.Now = func() time.Time { return minute }
	first, _, err := svc.PreAuthCode(ctx, "t0")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, _, err := svc.PreAuthCode(ctx, "t0")
		if err != nil || again != first {
			t.Fatalf("the tenant's code was not reused: %v", err)
		}
	}
	for _, tenant := range []string{"t1", "t2"} {
		if _, _, err := svc.PreAuthCode(ctx, tenant); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := svc.PreAuthCode(ctx, "t3"); !errors.Is(err, authorization.ErrBusy) {
		t.Fatalf("fourth new code in a minute: want ErrBusy, got %v", err)
	}
	if n := e.wx.Calls("api_create_preauthcode"); n != 3 {
		t.Fatalf("api_create_preauthcode called %d times, want 3", n)
	}
	// An authorization spends t0's code (WeChat's push says so): it is not offered again.
	code := e.authorize(t, miniProgram, first)
	if err := e.push.Authorized(ctx, pushed(miniProgram, code, first)); err != nil {
		t.Fatal(err)
	}
	minute = minute.Add(time.Minute) // the next minute's budget
	next, _, err := svc.PreAuthCode(ctx, "t0")
	if err != nil || next == first {
		t.Fatalf("a spent code was offered again (%v)", err)
	}
}

// Issue 7, item 5: the claim write was applied but its answer lost; the SDK's retry finds the claim held by
// this very request, which is a grant, not a competitor to wait for.
func TestLostAnswerToTheClaimWriteIsAGrant(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	e.faults.LoseAnswers(1, func(op string, body []byte) bool {
		return op == "UpdateItem" && strings.Contains(string(body), "AUTHCODE#") && !strings.Contains(string(body), "Exchange")
	})
	if err := e.push.Authorized(context.Background(), pushed(miniProgram, code, pre)); err != nil {
		t.Fatalf("push: %v", err)
	}
	if e.faults.Lost() != 1 {
		t.Fatal("set-up: no answer was lost")
	}
	e.checkConsistent(t, miniProgram, "t1")
}

// The redirect stored the account but could not finish the code's claim (its write failed; the invocation
// ended). WeChat's push, later, continues from what the claim kept: it must find this very authorization
// stored, finish the claim and bind the tenant, not take it for a newer one and acknowledge without binding.
func TestPushAfterTheRedirectStoredButDidNotFinishBindsTheTenant(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)
	granted := time.Now().Add(-2 * time.Second) // WeChat's CreateTime, seconds before the redirect arrived
	e.faults.Refuse(func(op string, body []byte) bool {
		return op == "UpdateItem" && strings.Contains(string(body), "AUTHCODE#") && strings.Contains(string(body), `"BOOL":true`)
	})
	if _, err := e.callback.Redirect(ctx, authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre}); err != nil {
		t.Fatal(err)
	}
	if e.faults.Refused() == 0 {
		t.Fatal("set-up: the claim's finish was not refused")
	}
	e.faults.Refuse(nil)
	stored, _ := e.store.Authorizer(ctx, miniProgram)
	if stored.AuthCode != code || stored.Tenant != "" {
		t.Fatalf("set-up: after the redirect %+v", stored)
	}
	// The push comes once the redirect's claim has lapsed (its clock is later).
	late := e.service(e.api)
	late.Now = func() time.Time { return time.Now().Add(time.Minute) }
	ev := pushed(miniProgram, code, pre)
	ev.CreateTime = granted.Unix()
	if err := late.Authorized(ctx, ev); err != nil {
		t.Fatal(err)
	}
	a := e.checkConsistent(t, miniProgram, "t1")
	if a.AuthorizedAt != granted.Truncate(time.Second).UnixMilli() {
		t.Errorf("AuthorizedAt %d, want WeChat's CreateTime %d", a.AuthorizedAt, granted.Truncate(time.Second).UnixMilli())
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Errorf("api_query_auth called %d times, want 1", n)
	}
}

// C1 is granted through tenant A's link; its redirect and push are delayed. C2, granted later through tenant
// B's link, is stored and bound. C1's late redirect must not put C1 (with a refresh token WeChat has since
// invalidated) over C2, nor its late push move the account back to A: the redirect cannot know when C1 was
// granted, only that it was after its page was rendered, and C2 was stored after that.
func TestLateRedirectOfAnOlderGrantDoesNotReplaceANewerAuthorization(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	rendered := time.Now().Add(-time.Minute)
	preA := e.link(t, "tenant-a")
	c1 := e.authorize(t, miniProgram, preA)
	preB := e.link(t, "tenant-b")
	c2 := e.authorize(t, miniProgram, preB)
	ev2 := pushed(miniProgram, c2, preB)
	ev2.CreateTime = rendered.Add(30 * time.Second).Unix()
	if err := e.push.Authorized(ctx, ev2); err != nil {
		t.Fatal(err)
	}
	e.checkConsistent(t, miniProgram, "tenant-b")

	res, err := e.callback.Redirect(ctx, authorization.Redirect{Code: c1, Tenant: "tenant-a", PreAuthCode: preA, IssuedAt: rendered, WaitFor: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("late redirect: %v", err)
	}
	if res.Confirmed {
		t.Fatal("the late redirect of the older grant was confirmed")
	}
	ev1 := pushed(miniProgram, c1, preA)
	ev1.CreateTime = rendered.Add(10 * time.Second).Unix()
	if err := e.push.Authorized(ctx, ev1); err != nil {
		t.Fatal(err)
	}
	a := e.checkConsistent(t, miniProgram, "tenant-b")
	if a.AuthCode != c2 {
		t.Fatal("the older authorization replaced the newer one")
	}
}

// A push that cannot finish now (the redirect holds the code, then its invocation dies mid-exchange, after
// WeChat spent the code) is acknowledged only once it is queued; the job completes it later, recovering the
// refresh token through api_get_authorizer_info, however many times WeChat would have retried the push.
func TestPushThatCannotFinishNowIsCompletedByItsJob(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	sq := testenv.SQS(t)
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("authz-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	queue := &jobs.Queue{SQS: sq, URL: aws.ToString(q.QueueUrl)}
	pre := e.link(t, "t1")
	code := e.authorize(t, miniProgram, pre)

	hold := make(chan struct{})
	e.wx.SetFault("api_query_auth", sandbox.Fault{HoldAnswer: hold})
	rctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	redirected := make(chan error, 1)
	go func() {
		_, err := e.callback.Redirect(rctx, authorization.Redirect{Code: code, Tenant: "t1", PreAuthCode: pre})
		redirected <- err
	}()
	testenv.Eventually(t, 5*time.Second, "the redirect's api_query_auth", func() bool { return e.wx.Served("api_query_auth") == 1 })

	pushSide := e.service(e.api)
	pushSide.Queue, pushSide.RetryBase = queue, time.Second
	if err := pushSide.Authorized(ctx, pushed(miniProgram, code, pre)); err != nil {
		t.Fatalf("push: %v (want acknowledged once queued)", err)
	}
	// The redirect's invocation ends: WeChat's answer comes back to a process that can no longer write.
	e.faults.CutAt(time.Now())
	close(hold)
	if err := <-redirected; err == nil {
		t.Fatal("set-up: the cut-off redirect succeeded")
	}
	e.faults.CutAt(time.Time{})

	out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 5})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("queued jobs: %d, %v", len(out.Messages), err)
	}
	var env jobs.Envelope
	body := aws.ToString(out.Messages[0].Body)
	if err := json.Unmarshal([]byte(body), &env); err != nil || env.Type != authorization.JobType {
		t.Fatalf("job %s", body)
	}
	worker := e.service(e.api)
	worker.Now = func() time.Time { return time.Now().Add(time.Minute) } // after the dead redirect's claim lapsed
	if err := worker.HandleJob(ctx, jobs.Message{ID: "m", Body: []byte(body), Type: env.Type, Attempt: env.Attempt}); err != nil {
		t.Fatalf("job: %v", err)
	}
	e.checkConsistent(t, miniProgram, "t1")
}

// flakyQueue refuses the first sends, then records them.
type flakyQueue struct {
	mu     sync.Mutex
	refuse int
	sent   []string // notification types
}

func (q *flakyQueue) Send(_ context.Context, v any, _ time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.refuse > 0 {
		q.refuse--
		return errors.New("queue unavailable")
	}
	j := v.(relay.Job)
	q.sent = append(q.sent, j.Delivery.Notification.Type)
	return nil
}

// A tenant is told of its account's authorization and revocation even when the first try to queue the
// notification fails: the push is left unacknowledged, and WeChat's repeat of it notifies.
func TestLifecycleNotificationsSurviveAFailedSend(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	hook := "https://shop.example.com/wx"
	if _, err := tenants.New(e.store.Table()).Set(ctx, "t1", tenants.Changes{Webhook: &hook}); err != nil {
		t.Fatal(err)
	}
	q := &flakyQueue{refuse: 1}
	e.push.Notifier = &lifecycle.Notifier{Tenants: tenants.New(e.store.Table()), Accounts: e.store, Queue: q}
	pre := e.link(t, "t1")
	ev := pushed(officialAccount, e.authorize(t, officialAccount, pre), pre)
	if err := e.push.Authorized(ctx, ev); err == nil {
		t.Fatal("the push was acknowledged though its notification was not queued")
	}
	if err := e.push.Authorized(ctx, ev); err != nil { // WeChat's repeat
		t.Fatal(err)
	}
	q.refuse = 1
	revoke := authevents.Event{InfoType: "unauthorized", AuthorizerAppID: officialAccount, CreateTime: time.Now().Add(2 * time.Second).Unix()}
	if err := e.push.Unauthorized(ctx, revoke); err == nil {
		t.Fatal("the revocation was acknowledged though its notification was not queued")
	}
	if err := e.push.Unauthorized(ctx, revoke); err != nil {
		t.Fatal(err)
	}
	// An older revocation arriving late tells nobody: a newer one is stored.
	old := revoke
	old.CreateTime -= 60
	if err := e.push.Unauthorized(ctx, old); err != nil {
		t.Fatal(err)
	}
	if want := []string{lifecycle.AccountAuthorized, lifecycle.AccountRevoked}; !slices.Equal(q.sent, want) {
		t.Fatalf("notifications %v, want %v", q.sent, want)
	}
}

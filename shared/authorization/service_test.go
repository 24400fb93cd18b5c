package authorization_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
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
	store    *tokenstore.Store
	wx       *sandbox.Sandbox
	api      *wxapi.Client
	callback *authorization.Service
}

func newEnv(t *testing.T, tweak func(*sandbox.Config)) *env {
	t.Helper()
	db := testenv.DynamoDB(t)
	e := &env{store: tokenstore.New(db, testenv.Table(t, db))}
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
	e.api = &wxapi.Client{BaseURL: base, Backoff: 10 * time.Millisecond, Logger: quiet}
	service := func() *authorization.Service {
		comp := credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
		return authorization.New(e.store, comp, e.api)
	}
	h.Authorizations = service()
	e.callback = service()
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

// authorize is the merchant clicking Authorize on WeChat's page: it returns the auth code that the
// redirect carries (the push is sent by the sandbox, before or after, per PushDelay).
func (e *env) authorize(t *testing.T, appid string) string {
	t.Helper()
	code, err := e.wx.Authorize(context.Background(), appid, e.wx.CreatePreAuthCode())
	if err != nil {
		t.Fatalf("authorize %s: %v", appid, err)
	}
	return code
}

func (e *env) redirect(t *testing.T, code, tenant string) tokenstore.Authorizer {
	t.Helper()
	a, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: code, Tenant: tenant, WaitFor: 8 * time.Second})
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	return a
}

func (e *env) waitPushes(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.wx.Pushes()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d pushes delivered, want %d", len(e.wx.Pushes()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	if a.AccessToken == "" || a.ExpiresAt < time.Now().Add(time.Hour).UnixMilli() {
		t.Fatal("no fresh access token stored")
	}
	if len(a.PermissionSets) == 0 || a.Info.NickName == "" {
		t.Fatalf("account info or permission sets missing: %+v", a)
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

func TestPushBeforeRedirect(t *testing.T) {
	e := newEnv(t, nil) // the sandbox pushes before it redirects
	code := e.authorize(t, miniProgram)
	e.waitPushes(t, 2) // ticket + authorized
	pushed, err := e.store.Authorizer(context.Background(), miniProgram)
	if err != nil || pushed.Tenant != "" {
		t.Fatalf("after the push: %+v, %v (want stored, no tenant yet)", pushed, err)
	}
	a := e.redirect(t, code, "t1")
	if a.Tenant != "t1" {
		t.Fatalf("redirect did not bind the tenant: %q", a.Tenant)
	}
	got := e.checkConsistent(t, miniProgram, "t1")
	if got.AccessToken != pushed.AccessToken || got.RefreshToken != pushed.RefreshToken {
		t.Fatal("the redirect replaced the tokens the push stored")
	}
	if got.Kind != tokenstore.KindMiniProgram {
		t.Fatalf("kind %q", got.Kind)
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1", n)
	}
}

func TestRedirectBeforePush(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = 300 * time.Millisecond })
	code := e.authorize(t, officialAccount)
	a := e.redirect(t, code, "t2")
	if a.Tenant != "t2" || a.Kind != tokenstore.KindOfficialAccount {
		t.Fatalf("redirect stored %+v", a)
	}
	e.waitPushes(t, 2)
	got := e.checkConsistent(t, officialAccount, "t2")
	if got.Version != a.Version {
		t.Fatalf("the late push rewrote the record (version %d -> %d)", a.Version, got.Version)
	}
	if n := e.wx.Calls("api_query_auth"); n != 1 {
		t.Fatalf("api_query_auth called %d times, want 1", n)
	}
}

func TestPushAndRedirectAtTheSameTime(t *testing.T) {
	for round := range 6 {
		e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = time.Duration(round) * time.Millisecond })
		code := e.authorize(t, miniProgram)
		e.redirect(t, code, "tenant-race")
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
	e.redirect(t, e.authorize(t, miniProgram), "t1")
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

	e.redirect(t, e.authorize(t, miniProgram), "t1")
	again := e.checkConsistent(t, miniProgram, "t1")
	if again.RefreshToken == first.RefreshToken {
		t.Fatal("re-authorization kept the old refresh token")
	}
	// The old refresh token is gone at WeChat too.
	_, err := e.api.AuthorizerToken(ctx, e.componentToken(t), testenv.ComponentAppID, miniProgram, first.RefreshToken)
	if !wxapi.IsCode(err, 61023) {
		t.Fatalf("old refresh token: want 61023, got %v", err)
	}
	hist, err := e.store.History(ctx, miniProgram)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hist, []string{"authorized", "revoked", "authorized"}) {
		t.Fatalf("history %v", hist)
	}
}

func TestLateUnauthorizedPushDoesNotRevokeNewerAuthorization(t *testing.T) {
	e := newEnv(t, nil)
	e.redirect(t, e.authorize(t, miniProgram), "t1")
	svc := e.callback
	err := svc.Unauthorized(context.Background(), authevents.Event{
		InfoType: "unauthorized", AuthorizerAppID: miniProgram, CreateTime: time.Now().Add(-time.Hour).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.checkConsistent(t, miniProgram, "t1")
}

func TestRefusedCodeStoresNothing(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: "no-such-code", Tenant: "t1"})
	if !errors.Is(err, authorization.ErrCodeFailed) {
		t.Fatalf("want ErrCodeFailed, got %v", err)
	}
	// A second delivery of the same bad code gets the recorded failure without calling WeChat again.
	calls := e.wx.Calls("api_query_auth")
	if _, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: "no-such-code"}); !errors.Is(err, authorization.ErrCodeFailed) {
		t.Fatalf("second delivery: %v", err)
	}
	if e.wx.Calls("api_query_auth") != calls {
		t.Fatal("a code known to be refused was exchanged again")
	}
}

func TestConcurrentAuthorizationsOfManyAccounts(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = 2 * time.Millisecond })
	accounts := e.wx.Accounts()
	var wg sync.WaitGroup
	for i, acc := range accounts {
		code := e.authorize(t, acc.AppID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: code, Tenant: "tenant-" + acc.AppID, WaitFor: 8 * time.Second}); err != nil {
				t.Errorf("account %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	e.waitPushes(t, 1+len(accounts))
	for _, acc := range accounts {
		e.checkConsistent(t, acc.AppID, "tenant-"+acc.AppID)
	}
}

func TestTenantIsBoundEvenIfTheRedirectStopsWaiting(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = 10 * time.Millisecond })
	e.wx.SetFault("api_query_auth", sandbox.Fault{Latency: 1500 * time.Millisecond})
	code := e.authorize(t, miniProgram)
	time.Sleep(300 * time.Millisecond) // the push has claimed the code and is exchanging it
	_, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: code, Tenant: "t-late", WaitFor: 200 * time.Millisecond})
	if !errors.Is(err, authorization.ErrTimeout) {
		t.Fatalf("want the redirect to time out while the push exchanges, got %v", err)
	}
	e.waitPushes(t, 2)
	e.checkConsistent(t, miniProgram, "t-late")
}

func TestUnauthorizedBeforeTheAuthorizationIsStoredWins(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" }) // we deliver the pushes by hand, out of order
	ctx := context.Background()
	code := e.authorize(t, miniProgram)
	authorizedAt := time.Now()
	// The merchant cancels; that push is processed before the authorization ever was.
	if err := e.callback.Unauthorized(ctx, authevents.Event{InfoType: "unauthorized", AuthorizerAppID: miniProgram,
		CreateTime: authorizedAt.Add(2 * time.Second).Unix()}); err != nil {
		t.Fatal(err)
	}
	// The late `authorized` push must not bring the account back.
	if err := e.callback.Authorized(ctx, authevents.Event{InfoType: "authorized", AuthorizerAppID: miniProgram,
		AuthorizationCode: code, CreateTime: authorizedAt.Unix()}); err != nil {
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
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = 400 * time.Millisecond })
	e.wx.SetFault("api_query_auth", sandbox.Fault{BusyRate: 1})
	code := e.authorize(t, miniProgram)
	// The redirect claims the code first; WeChat is busy, so its exchange fails, and the merchant sees an error.
	_, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: code, Tenant: "t-first"})
	if err == nil || errors.Is(err, authorization.ErrCodeFailed) {
		t.Fatalf("want a passing (not final) failure, got %v", err)
	}
	e.wx.SetFault("api_query_auth", sandbox.Fault{})
	// The push arrives later, exchanges the code and binds the tenant the redirect left on the claim.
	e.waitPushes(t, 2)
	e.checkConsistent(t, miniProgram, "t-first")
}

func TestReauthorizationFromAnotherTenantRebindsEvenIfTheRedirectStopsWaiting(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushDelay = 10 * time.Millisecond })
	e.redirect(t, e.authorize(t, miniProgram), "tenant-a")
	e.waitPushes(t, 2)
	e.wx.SetFault("api_query_auth", sandbox.Fault{Latency: 1500 * time.Millisecond})
	code := e.authorize(t, miniProgram)
	time.Sleep(300 * time.Millisecond) // the push is exchanging the new code
	if _, err := e.callback.Complete(context.Background(), authorization.Delivery{Code: code, Tenant: "tenant-b", WaitFor: 200 * time.Millisecond}); !errors.Is(err, authorization.ErrTimeout) {
		t.Fatalf("want the redirect to time out, got %v", err)
	}
	e.waitPushes(t, 3)
	e.checkConsistent(t, miniProgram, "tenant-b")
}

func TestFailureBeforeWeChatIsNotFinal(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	code := e.authorize(t, miniProgram)
	// Another instance is stuck refreshing the component token, and ours has expired: the exchange cannot
	// even start. That says nothing about the code.
	key := tokenstore.ComponentTokenKey(testenv.ComponentAppID)
	cred, _ := e.store.Credential(ctx, key)
	if _, err := e.store.Invalidate(ctx, key, cred.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.store.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "stuck", For: 2 * time.Second, DueBefore: time.Now().Add(time.Hour)}); !ok {
		t.Fatal("set-up lease refused")
	}
	comp := credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	svc := authorization.New(e.store, comp, e.api)
	svc.ClaimFor = time.Second
	if _, err := svc.Complete(ctx, authorization.Delivery{Code: code, Tenant: "t1"}); err == nil || errors.Is(err, authorization.ErrCodeFailed) {
		t.Fatalf("want a passing failure, got %v", err)
	}
	if n := e.wx.Calls("api_query_auth"); n != 0 {
		t.Fatalf("the code was sent to WeChat %d times", n)
	}
	// Once the stuck lease lapses, the same code is exchanged normally.
	time.Sleep(2 * time.Second)
	svc.ClaimFor = 20 * time.Second
	if _, err := svc.Complete(ctx, authorization.Delivery{Code: code, Tenant: "t1"}); err != nil {
		t.Fatalf("retry after a passing failure: %v", err)
	}
	e.checkConsistent(t, miniProgram, "t1")
}

func TestSpentCodeWithKnownAppidRecoversTheRefreshToken(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.PushURL = "" })
	ctx := context.Background()
	code := e.authorize(t, officialAccount)
	// An exchange whose answer never reached us: WeChat has spent the code.
	if _, err := e.api.QueryAuth(ctx, e.componentToken(t), testenv.ComponentAppID, code); err != nil {
		t.Fatal(err)
	}
	if err := e.callback.Authorized(ctx, authevents.Event{InfoType: "authorized", AuthorizerAppID: officialAccount,
		AuthorizationCode: code, CreateTime: time.Now().Unix()}); err != nil {
		t.Fatal(err)
	}
	a, err := e.store.Authorizer(ctx, officialAccount)
	if err != nil {
		t.Fatalf("the authorization was lost: %v", err)
	}
	if a.Status != tokenstore.StatusAuthorized || a.RefreshToken != e.wx.RefreshToken(officialAccount) || a.Info.NickName == "" {
		t.Fatalf("recovered record: status %s, refresh token current: %v, name %q", a.Status, a.RefreshToken == e.wx.RefreshToken(officialAccount), a.Info.NickName)
	}
	// And its access token is fetched on first use.
	authz := credentials.NewAuthorizers(e.store, credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{}), e.api, credentials.Options{})
	if _, err := authz.Token(ctx, officialAccount); err != nil {
		t.Fatal(err)
	}
}

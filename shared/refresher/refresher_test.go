package refresher_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/refresher"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	slog.SetDefault(quiet) // the services log through the default logger; keep test output readable
	os.Exit(m.Run())
}

type env struct {
	t     *testing.T
	store *tokenstore.Store
	table string
	wx    *sandbox.Sandbox
	base  string
	apps  []string
	opts  credentials.Options
	api   *wxapi.Client
}

// newEnv seeds n authorized accounts through the real authorization path (sandbox code -> exchange -> store).
func newEnv(t *testing.T, n int, opts credentials.Options, tweak func(*sandbox.Config)) *env {
	t.Helper()
	db := testenv.DynamoDB(t)
	e := &env{t: t, table: testenv.Table(t, db), opts: opts}
	e.store = tokenstore.New(db, e.table)
	accounts := sandbox.GeneratedAccounts(n)
	e.wx, e.base = testenv.Sandbox(t, func(c *sandbox.Config) {
		c.Accounts = accounts
		c.Logger = quiet
		if tweak != nil {
			tweak(c)
		}
	})
	e.api = e.client(3)
	ticket, err := e.wx.PushTicket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutTicket(context.Background(), testenv.ComponentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	svc := authorization.New(e.store, e.component(e.api), e.api)
	for _, acc := range accounts {
		code, err := e.wx.Authorize(context.Background(), acc.AppID, e.wx.CreatePreAuthCode())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Redirect(context.Background(), authorization.Redirect{Code: code}); err != nil {
			t.Fatal(err)
		}
		e.apps = append(e.apps, acc.AppID)
	}
	return e
}

// client is a WeChat client with a 1 s per-attempt timeout (short, so the sandbox's held requests time out).
func (e *env) client(attempts int) *wxapi.Client {
	return e.clientWithTimeout(attempts, time.Second)
}

func (e *env) clientWithTimeout(attempts int, timeout time.Duration) *wxapi.Client {
	return &wxapi.Client{BaseURL: e.base, Timeout: timeout, MaxAttempts: attempts, Backoff: 5 * time.Millisecond, Logger: quiet}
}

func (e *env) component(api *wxapi.Client) *credentials.Component {
	return credentials.NewComponent(e.store, api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{Now: e.opts.Now})
}

// instance is one process: its own component token, authorizer getter and refresher.
func (e *env) instance(api *wxapi.Client, window time.Duration, conc int) (*credentials.Authorizers, *refresher.Refresher) {
	comp := e.component(api)
	authz := credentials.NewAuthorizers(e.store, comp, api, e.opts)
	db := testenv.DynamoDB(e.t)
	return authz, &refresher.Refresher{DB: db, Table: e.table, Component: comp, Authorizers: authz,
		Window: window, Concurrency: conc, Logger: quiet, Now: e.opts.Now}
}

// invalidateAll makes every stored access token due now (as if WeChat had rejected them).
func (e *env) invalidateAll() {
	for _, app := range e.apps {
		a, err := e.store.Authorizer(context.Background(), app)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.store.Invalidate(context.Background(), tokenstore.AuthorizerKey(app), a.AccessToken); err != nil {
			e.t.Fatal(err)
		}
	}
}

// accepted reports whether WeChat accepts appid's stored access token right now.
func (e *env) accepted(appid string) (bool, tokenstore.Authorizer) {
	a, err := e.store.Authorizer(context.Background(), appid)
	if err != nil || a.AccessToken == "" {
		return false, a
	}
	err = e.api.Call(context.Background(), "getaccountbasicinfo", "GET", "/cgi-bin/account/getaccountbasicinfo",
		map[string][]string{"access_token": {a.AccessToken}}, nil, nil)
	return err == nil, a
}

func TestRotationUnderContentionLosesNoRefreshToken(t *testing.T) {
	// One clock for WeChat, the table's leases, the getters and the refreshers. It stands still while a round
	// runs, so every caller contends at the same instant and no lease can lapse because the machine is slow:
	// the outcome depends on the locking alone, not on timing. Between rounds it jumps to the next expiry.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	opts := credentials.Options{Poll: 5 * time.Millisecond, Now: now}
	e := newEnv(t, 20, opts, func(c *sandbox.Config) {
		c.RotateRefreshTokens = true
		c.Now = now
	})
	e.store.Now = now
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails instead of blocking
	defer cancel()

	for round := 1; round <= 3; round++ {
		// Every token is due (inside the refresh margin) but still valid.
		clock.Add(int64(sandbox.DefaultTokenTTL - 10*time.Minute))
		issuedBefore := map[string]int{}
		for _, app := range e.apps {
			issuedBefore[app] = len(e.wx.AuthorizerTokenIssues(app))
		}
		var wg sync.WaitGroup
		var errMu sync.Mutex
		var errs []error
		fail := func(err error) {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
		// 200 getters spread over 10 processes, each asking for random authorizers.
		for p := range 10 {
			authz, _ := e.instance(e.clientWithTimeout(3, 5*time.Second), 0, 0)
			for range 20 {
				wg.Go(func() {
					for range 10 {
						app := e.apps[rand.IntN(len(e.apps))]
						if _, err := authz.Token(ctx, app); err != nil {
							fail(fmt.Errorf("round %d, process %d, %s: %w", round, p, app, err))
						}
					}
				})
			}
		}
		// Two scheduled runs that overlap, from two other processes.
		for range 2 {
			_, ref := e.instance(e.clientWithTimeout(3, 5*time.Second), 30*time.Minute, 8)
			wg.Go(func() {
				if _, err := ref.Run(ctx); err != nil {
					fail(fmt.Errorf("round %d, scheduled run: %w", round, err))
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		for _, app := range e.apps {
			// WeChat saw exactly one refresh per account per expiry.
			if n := len(e.wx.AuthorizerTokenIssues(app)) - issuedBefore[app]; n != 1 {
				t.Errorf("round %d: %s refreshed %d times, want exactly 1", round, app, n)
			}
			a, err := e.store.Authorizer(context.Background(), app)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tokenstore.StatusAuthorized || a.RefreshToken != e.wx.RefreshToken(app) {
				t.Errorf("round %d: %s is %s, refresh token current: %v (a rotated refresh token was lost)", round, app, a.Status, a.RefreshToken == e.wx.RefreshToken(app))
			}
			if ok, _ := e.accepted(app); !ok {
				t.Errorf("round %d: WeChat refuses the stored access token of %s", round, app)
			}
		}
		if t.Failed() {
			return
		}
	}
}

func TestRunsConvergeDespiteFaults(t *testing.T) {
	e := newEnv(t, 20, credentials.Options{}, nil)
	e.invalidateAll()
	e.wx.SetFault("api_authorizer_token", sandbox.Fault{BusyRate: 0.05, TimeoutRate: 0.02, TimeoutHold: 2 * time.Second})
	// One attempt per call: every injected fault surfaces as a failed refresh, left for the next run.
	_, ref := e.instance(e.client(1), 10*time.Minute, 8)
	var failed int
	converged := false
	for run := 1; run <= 10 && !converged; run++ {
		rep, err := ref.Run(context.Background())
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if rep.NeedsReauth != 0 {
			t.Fatalf("run %d marked %d authorizers needs_reauth on transient faults", run, rep.NeedsReauth)
		}
		failed += rep.Failed
		converged = true
		for _, app := range e.apps {
			if ok, _ := e.accepted(app); !ok {
				converged = false
			}
		}
		t.Logf("run %d: %+v", run, rep)
	}
	if !converged {
		t.Fatal("10 runs did not bring every authorizer to a fresh token")
	}
	for _, app := range e.apps {
		if a, _ := e.store.Authorizer(context.Background(), app); a.Status != tokenstore.StatusAuthorized {
			t.Errorf("%s wrongly %s", app, a.Status)
		}
	}
	t.Logf("%d refreshes failed on injected faults and were retried by later runs", failed)
}

func TestRefusedRefreshTokenMarksExactlyThatAuthorizer(t *testing.T) {
	e := newEnv(t, 6, credentials.Options{}, nil)
	e.invalidateAll()
	victim := e.apps[3]
	e.wx.InvalidateRefreshToken(victim) // WeChat now answers 61023 for it
	_, ref := e.instance(e.client(3), 10*time.Minute, 4)
	rep, err := ref.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.NeedsReauth != 1 || rep.Refreshed != 5 {
		t.Fatalf("report %+v: want 1 needs_reauth and 5 refreshed", rep)
	}
	for _, app := range e.apps {
		a, _ := e.store.Authorizer(context.Background(), app)
		want := tokenstore.StatusAuthorized
		if app == victim {
			want = tokenstore.StatusNeedsReauth
		}
		if a.Status != want {
			t.Errorf("%s: status %s, want %s", app, a.Status, want)
		}
	}
	// It has left the due index: the next run does not try it again.
	calls := e.wx.Calls("api_authorizer_token")
	e.invalidateAll()
	rep, _ = ref.Run(context.Background())
	if rep.Due != 5 || e.wx.Calls("api_authorizer_token") != calls+5 {
		t.Fatalf("second run: %+v, %d WeChat calls; the needs_reauth account must not be retried", rep, e.wx.Calls("api_authorizer_token")-calls)
	}
}

func TestQuotaStopsTheRunsCalls(t *testing.T) {
	e := newEnv(t, 8, credentials.Options{}, nil)
	e.invalidateAll()
	e.wx.SetFault("api_authorizer_token", sandbox.Fault{DailyQuota: 3})
	_, ref := e.instance(e.client(3), 10*time.Minute, 1)
	rep, _ := ref.Run(context.Background())
	if !rep.Quota || rep.Refreshed != 3 || rep.Deferred != 5 {
		t.Fatalf("report %+v: want quota hit after 3 refreshes and 5 deferred", rep)
	}
	if n := e.wx.Calls("api_authorizer_token"); n != 4 {
		t.Fatalf("%d calls to api_authorizer_token, want 4 (3 + the one answered 45009)", n)
	}
}

func TestRunStopsTakingWorkNearItsDeadline(t *testing.T) {
	e := newEnv(t, 5, credentials.Options{}, nil)
	e.invalidateAll()
	_, ref := e.instance(e.client(3), 10*time.Minute, 2)
	ref.StopBefore = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute) // within StopBefore from the start
	defer cancel()
	rep, err := ref.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refreshed != 0 || e.wx.Calls("api_authorizer_token") != 0 {
		t.Fatalf("a run past its stop point refreshed: %+v", rep)
	}
	ref.StopBefore = 0
	rep, _ = ref.Run(context.Background())
	if rep.Refreshed != 5 {
		t.Fatalf("the next run should take the left work: %+v", rep)
	}
}

func TestFreshAuthorizersAreNotListed(t *testing.T) {
	// The due index is sparse and keyed by expiry: a run over fresh accounts costs one Query per shard,
	// whether there are 10 accounts or 40 (or 100,000).
	cost := map[int]int64{}
	for _, n := range []int{10, 40} {
		e := newEnv(t, n, credentials.Options{}, nil)
		awsCfg := testenv.AWSConfig(t)
		counter := testenv.NewCountingClient()
		awsCfg.HTTPClient = counter
		db := platform.NewDynamoDB(awsCfg)
		comp := e.component(e.api)
		if _, err := comp.Token(context.Background()); err != nil { // warm the component token outside the count
			t.Fatal(err)
		}
		ref := &refresher.Refresher{DB: db, Table: e.table, Component: comp,
			Authorizers: credentials.NewAuthorizers(e.store, comp, e.api, credentials.Options{}), Window: 10 * time.Minute, Logger: quiet}
		rep, err := ref.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Due != 0 || e.wx.Calls("api_authorizer_token") != 0 {
			t.Fatalf("fresh tokens were refreshed: %+v", rep)
		}
		cost[n] = counter.N.Load()
	}
	if cost[10] != tokenstore.DueShards || cost[40] != cost[10] {
		t.Fatalf("DynamoDB requests for a run over 10 and 40 fresh accounts: %d and %d; want %d each (one Query per shard)",
			cost[10], cost[40], tokenstore.DueShards)
	}
}

func TestRecoveryThatCannotAskWeChatMarksNothing(t *testing.T) {
	e := newEnv(t, 1, credentials.Options{}, func(c *sandbox.Config) { c.RotateRefreshTokens = true })
	app := e.apps[0]
	stored, _ := e.store.Authorizer(context.Background(), app)
	comp, _ := e.store.Credential(context.Background(), tokenstore.ComponentTokenKey(testenv.ComponentAppID))
	if _, err := e.api.AuthorizerToken(context.Background(), comp.AccessToken, testenv.ComponentAppID, app, stored.RefreshToken); err != nil {
		t.Fatal(err) // WeChat rotated; we still hold the old refresh token
	}
	e.invalidateAll()
	e.wx.SetFault("api_get_authorizer_info", sandbox.Fault{BusyRate: 1})
	_, ref := e.instance(e.client(1), 10*time.Minute, 1)
	rep, _ := ref.Run(context.Background())
	if rep.NeedsReauth != 0 || rep.Failed != 1 {
		t.Fatalf("report %+v: a busy WeChat must leave the account for the next run, not mark it", rep)
	}
	if a, _ := e.store.Authorizer(context.Background(), app); a.Status != tokenstore.StatusAuthorized {
		t.Fatalf("status %s", a.Status)
	}
	e.wx.SetFault("api_get_authorizer_info", sandbox.Fault{})
	if rep, _ = ref.Run(context.Background()); rep.Refreshed != 1 {
		t.Fatalf("next run: %+v, want the account recovered and refreshed", rep)
	}
}

package credentials_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

const (
	componentAppID  = testenv.ComponentAppID
	componentSecret = testenv.ComponentSecret
)

// env is one integration set-up: DynamoDB Local, a fresh table and a sandbox over real HTTP.
type env struct {
	store  *tokenstore.Store
	wx     *sandbox.Sandbox
	api    *wxapi.Client
	offset atomic.Int64 // sandbox clock skew, to age tokens without sleeping
}

func newEnv(t *testing.T, tweak func(*sandbox.Config)) *env {
	t.Helper()
	db := testenv.DynamoDB(t)
	e := &env{store: tokenstore.New(db, testenv.Table(t, db))}
	wx, base := testenv.Sandbox(t, func(c *sandbox.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }
		if tweak != nil {
			tweak(c)
		}
	})
	e.wx = wx
	e.api = &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond}
	return e
}

// clock is the sandbox's skewed clock, given to the table's leases too: tests move it instead of sleeping.
func (e *env) clock() func() time.Time {
	now := func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }
	e.store.Now = now
	return now
}

// storeTicket issues a ticket in the sandbox and stores it as the ticket handler would.
func (e *env) storeTicket(t *testing.T) {
	t.Helper()
	ticket, err := e.wx.PushTicket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutTicket(context.Background(), componentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
}

// instance is one process's view (a Lambda instance): its own memory cache and lease owner id.
func (e *env) instance(opts credentials.Options) *credentials.Component {
	return credentials.NewComponent(e.store, e.api, componentAppID, componentSecret, opts)
}

func TestComponentTokenFiftyColdCallersOneWeChatCall(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	// Slow WeChat so the callers really overlap the refresh.
	e.wx.SetFault("api_component_token", sandbox.Fault{Latency: 200 * time.Millisecond})

	const callers = 50
	tokens := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.instance(credentials.Options{Poll: 20 * time.Millisecond})
			<-start
			tokens[i], errs[i] = c.Token(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if tokens[i] == "" || tokens[i] != tokens[0] {
			t.Fatalf("caller %d got %q, caller 0 got %q: everyone must share one token", i, tokens[i], tokens[0])
		}
	}
	if n := e.wx.Calls("api_component_token"); n != 1 {
		t.Fatalf("api_component_token called %d times, want exactly 1", n)
	}
	// The token works against WeChat.
	if _, err := e.api.CreatePreAuthCode(context.Background(), tokens[0], componentAppID); err != nil {
		t.Fatalf("stored token rejected: %v", err)
	}
}

func TestComponentTokenSameProcessSharesOneRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	c := e.instance(credentials.Options{})
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Token(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.wx.Calls("api_component_token"); n != 1 {
		t.Fatalf("api_component_token called %d times, want 1", n)
	}
}

func TestComponentTokenDeadLeaseHolderIsReplaced(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	ctx := context.Background()
	now := e.clock()
	// A refresher takes the lease and dies without storing anything.
	_, ok, err := e.store.AcquireLease(ctx, tokenstore.LeaseRequest{
		Key: tokenstore.ComponentTokenKey(componentAppID), Owner: "dead-instance",
		For: time.Minute, DueBefore: now().Add(time.Hour),
	})
	if err != nil || !ok {
		t.Fatalf("set-up lease: ok=%v err=%v", ok, err)
	}
	e.offset.Add(int64(2 * time.Minute)) // the dead holder's lease has run out
	c := e.instance(credentials.Options{Now: now, WaitFor: 5 * time.Second, Poll: 25 * time.Millisecond})
	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatalf("token after dead holder: %v", err)
	}
	if tok == "" || e.wx.Calls("api_component_token") != 1 {
		t.Fatalf("want one refresh by the successor, got %d calls", e.wx.Calls("api_component_token"))
	}
	cred, _ := e.store.Credential(ctx, tokenstore.ComponentTokenKey(componentAppID))
	if cred.AccessToken != tok || cred.LeaseOwner != "" {
		t.Fatalf("stored credential %+v: want the successor's token and no lease", cred)
	}
}

func TestComponentTokenWaiterGivesUpWhenHolderNeverFinishes(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	ctx := context.Background()
	if _, ok, _ := e.store.AcquireLease(ctx, tokenstore.LeaseRequest{
		Key: tokenstore.ComponentTokenKey(componentAppID), Owner: "stuck", For: time.Hour, DueBefore: time.Now().Add(time.Hour),
	}); !ok {
		t.Fatal("set-up lease refused")
	}
	c := e.instance(credentials.Options{WaitFor: 300 * time.Millisecond, Poll: 20 * time.Millisecond})
	if _, err := c.Token(ctx); !errors.Is(err, credentials.ErrRefreshTimeout) {
		t.Fatalf("want ErrRefreshTimeout, got %v", err)
	}
	if n := e.wx.Calls("api_component_token"); n != 0 {
		t.Fatalf("WeChat called %d times while another caller held the lease", n)
	}
}

func TestComponentTokenWithoutTicketAsksForPush(t *testing.T) {
	e := newEnv(t, nil)
	c := e.instance(credentials.Options{})
	_, err := c.Token(context.Background())
	if !errors.Is(err, credentials.ErrNoTicket) {
		t.Fatalf("want ErrNoTicket, got %v", err)
	}
	if n := e.wx.Calls("api_start_push_ticket"); n != 1 {
		t.Fatalf("api_start_push_ticket called %d times, want 1", n)
	}
	if n := e.wx.Calls("api_component_token"); n != 0 {
		t.Fatalf("api_component_token called %d times without a ticket", n)
	}
	// The lease was given back: once a ticket arrives the next caller refreshes at once.
	e.storeTicket(t)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("after ticket: %v", err)
	}
}

func TestComponentTokenWithoutTicketAsksOnceForManyInstances(t *testing.T) {
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.instance(credentials.Options{Poll: 10 * time.Millisecond}).Token(context.Background()); !errors.Is(err, credentials.ErrNoTicket) {
				t.Errorf("want ErrNoTicket, got %v", err)
			}
		}()
	}
	wg.Wait()
	if n := e.wx.Calls("api_start_push_ticket"); n != 1 {
		t.Fatalf("api_start_push_ticket called %d times by 10 instances, want 1", n)
	}
}

func TestComponentTokenRejectedTokenTriggersExactlyOneRefresh(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.TokenGrace = time.Minute })
	e.storeTicket(t)
	ctx := context.Background()
	instances := make([]*credentials.Component, 5)
	for i := range instances {
		instances[i] = e.instance(credentials.Options{Poll: 20 * time.Millisecond})
	}
	first, err := instances[0].Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range instances[1:] { // every instance caches the first token
		if tok, _ := c.Token(ctx); tok != first {
			t.Fatalf("instance saw %q, want the shared token", tok)
		}
	}
	// WeChat's clock moves past the token's expiry: it now answers 42001, though our clock thinks it fresh.
	e.offset.Store(int64(3 * time.Hour))
	// The stored ticket is 12h-valid in the sandbox, so refreshing is possible.
	e.wx.ResetCalls()

	var wg sync.WaitGroup
	var used sync.Map
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := instances[i%len(instances)]
			err := c.Do(ctx, func(tok string) error {
				_, err := e.api.CreatePreAuthCode(ctx, tok, componentAppID)
				if err == nil {
					used.Store(tok, true)
				}
				return err
			})
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n := e.wx.Calls("api_component_token"); n != 1 {
		t.Fatalf("api_component_token called %d times after the token was rejected, want exactly 1", n)
	}
	count := 0
	used.Range(func(k, _ any) bool {
		count++
		if k.(string) == first {
			t.Error("the rejected token was used successfully")
		}
		return true
	})
	if count != 1 {
		t.Fatalf("%d different tokens succeeded, want 1", count)
	}
}

func TestComponentTokenIsRefreshedAheadOfExpiry(t *testing.T) {
	e := newEnv(t, nil)
	e.storeTicket(t)
	ctx := context.Background()
	c := e.instance(credentials.Options{Now: e.clock(), Margin: 20 * time.Minute})
	first, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Token(ctx); again != first {
		t.Fatal("a fresh token was refreshed")
	}
	e.offset.Add(int64(time.Hour + 45*time.Minute)) // now within the 20 min margin of its 2 h life
	second, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("a token within the refresh margin was not refreshed")
	}
	if n := e.wx.Calls("api_component_token"); n != 2 {
		t.Fatalf("want 2 calls (initial + ahead-of-expiry refresh), got %d", n)
	}
}

// A token WeChat rejected is never handed out again by the process that saw the rejection, even when marking
// it in the table failed: the next caller marks it, refreshes once and gets a new token without waiting out
// the lease timeout.
func TestRejectedTokenIsNotServedAgainWhenMarkingItFailed(t *testing.T) {
	db, faults := testenv.DynamoDBWithFaults(t)
	e := newEnv(t, nil)
	e.store = tokenstore.New(db, testenv.Table(t, db))
	e.storeTicket(t)
	ctx := context.Background()
	c := e.instance(credentials.Options{Poll: 20 * time.Millisecond, WaitFor: 3 * time.Second})
	first, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.wx.ResetCalls()
	marking := func(op string, body []byte) bool { return op == "UpdateItem" && bytes.Contains(body, []byte("DueAt")) }
	faults.Refuse(marking)
	if err := c.Invalidate(ctx, first); err == nil {
		t.Fatal("invalidation reached the table through the refusal")
	}
	faults.Refuse(nil)
	start := time.Now()
	tok, err := c.Token(ctx)
	if err != nil || tok == first || tok == "" {
		t.Fatalf("after the rejection: token changed %v, err %v", tok != first, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the new token took %s: the caller waited for a lease nobody held", took)
	}
	if n := e.wx.Calls("api_component_token"); n != 1 {
		t.Errorf("api_component_token called %d times, want 1", n)
	}
}

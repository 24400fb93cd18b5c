package refresher_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/refresher"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// BenchmarkScheduledRefresh refreshes BENCH_AUTHORIZERS (default 10,000) due authorizers in one scheduled run
// against DynamoDB Local and the sandbox with BENCH_LATENCY (default 50ms) on every WeChat call, and reports
// refreshes per second, WeChat calls per refresh and DynamoDB requests per refresh. Run it with `make bench`
// (or infra/scripts/with-emulators.sh go test -run=^$ -bench=ScheduledRefresh -benchtime=1x ./shared/refresher).
func BenchmarkScheduledRefresh(b *testing.B) {
	n := envInt("BENCH_AUTHORIZERS", 10000)
	latency, _ := time.ParseDuration(envStr("BENCH_LATENCY", "50ms"))
	conc := envInt("BENCH_CONCURRENCY", 48)

	awsCfg := testenv.AWSConfig(b)
	counter := testenv.NewCountingClient()
	awsCfg.HTTPClient = counter
	testenv.DynamoDB(b) // skip/fail clearly without the emulators
	db := platform.NewDynamoDB(awsCfg)
	table := testenv.Table(b, db)
	store := tokenstore.New(db, table)
	accounts := sandbox.GeneratedAccounts(n)
	wx, base := testenv.Sandbox(b, func(c *sandbox.Config) { c.Accounts = accounts; c.Logger = quiet })
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	api := &wxapi.Client{BaseURL: base, HTTP: httpc, Timeout: 5 * time.Second, Logger: quiet}
	ctx := context.Background()

	ticket, err := wx.PushTicket(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.PutTicket(ctx, testenv.ComponentAppID, ticket, time.Now().Unix()); err != nil {
		b.Fatal(err)
	}
	comp := credentials.NewComponent(store, api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	compToken, err := comp.Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Seed: every account authorized, its token already expired in our table (so all are due).
	seed := make(chan sandbox.Account)
	var wg sync.WaitGroup
	var seedErr atomic.Value
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for acc := range seed {
				code, err := wx.Authorize(ctx, acc.AppID, wx.CreatePreAuthCode())
				if err == nil {
					var info wxapi.AuthorizationInfo
					if info, err = api.QueryAuth(ctx, compToken, testenv.ComponentAppID, code); err == nil {
						_, err = store.PutAuthorization(ctx, tokenstore.Authorization{
							AppID: acc.AppID, Kind: acc.Kind, Info: tokenstore.AccountInfo{NickName: acc.NickName},
							AccessToken: info.AccessToken, RefreshToken: info.RefreshToken, AuthCode: code,
							ExpiresAt: time.Now().Add(-time.Minute), At: time.Now(),
						})
					}
				}
				if err != nil {
					seedErr.Store(err)
				}
			}
		}()
	}
	for _, acc := range accounts {
		seed <- acc
	}
	close(seed)
	wg.Wait()
	if err, _ := seedErr.Load().(error); err != nil {
		b.Fatalf("seeding: %v", err)
	}
	wx.SetFault("*", sandbox.Fault{Latency: latency})

	b.ResetTimer()
	for range b.N {
		wx.ResetCalls()
		ddbBefore := counter.N.Load()
		authz := credentials.NewAuthorizers(store, comp, api, credentials.Options{})
		ref := &refresher.Refresher{DB: db, Table: table, Component: comp, Authorizers: authz, Concurrency: conc, Logger: quiet}
		start := time.Now()
		rep, err := ref.Run(ctx)
		wall := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Refreshed != n {
			b.Fatalf("refreshed %d of %d: %+v", rep.Refreshed, n, rep)
		}
		wechat := 0
		for _, ep := range []string{"api_authorizer_token", "api_component_token", "api_get_authorizer_info"} {
			wechat += wx.Calls(ep)
		}
		ddb := counter.N.Load() - ddbBefore
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(rep.Refreshed)/wall.Seconds(), "refreshes/s")
		b.ReportMetric(float64(wechat)/float64(rep.Refreshed), "wechat-calls/refresh")
		b.ReportMetric(float64(ddb)/float64(rep.Refreshed), "ddb-requests/refresh")
		// Make the next iteration's accounts due again.
		if b.N > 1 {
			b.StopTimer()
			for _, acc := range accounts {
				a, _ := store.Authorizer(ctx, acc.AppID)
				_, _ = store.Invalidate(ctx, tokenstore.AuthorizerKey(acc.AppID), a.AccessToken)
			}
			b.StartTimer()
		}
	}
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

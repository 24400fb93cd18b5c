package campaigns_test

import (
	"context"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/campaigns"
)

// BenchmarkCampaign runs one campaign over BENCH_APPS (default 1,000) mini programs against DynamoDB Local,
// the SQS emulator and the sandbox (audits take BENCH_AUDIT_DELAY, default 2s; no faults), with
// BENCH_WORKERS (default 8) pollers feeding the jobs consumer, and reports the wall time until every app is
// submitted for audit and until every app is released, WeChat calls per app and DynamoDB requests per app
// (the message callback's audit events included). Run it with `make bench`, or:
//
//	infra/scripts/with-emulators.sh go test -run='^$' -bench=Campaign -benchtime=1x ./shared/campaigns
func BenchmarkCampaign(b *testing.B) {
	n := envInt("BENCH_APPS", 1000)
	delay, _ := time.ParseDuration(envStr("BENCH_AUDIT_DELAY", "2s"))
	workers := envInt("BENCH_WORKERS", 8)
	counter := testenv.NewCountingClient()
	timing := fast
	timing.AuditCheck = time.Hour // the happy path: every audit's event arrives
	e := newEnv(b, options{apps: n, timing: timing, httpc: counter, tweak: func(c *sandbox.Config) { c.AuditDelay = delay }})
	tpl := e.wx.AddTemplate("1.2.0", "bench")
	ctx := context.Background()
	stop := e.run(b, workers, false, time.Second)
	defer stop()
	b.ResetTimer()
	for i := range b.N {
		id := "bench-" + strconv.Itoa(i)
		e.wx.ResetCalls()
		ddb := counter.N.Load()
		start := time.Now()
		e.start(b, e.campaign(id, tpl, nil))
		e.waitApps(b, id, 5*time.Minute, "every app submitted", func(a campaigns.App) bool { return a.SubmittedAt != 0 })
		submitted := time.Since(start)
		e.waitApps(b, id, 5*time.Minute, "every app released", func(a campaigns.App) bool { return a.State == campaigns.StateReleased })
		released := time.Since(start)
		calls := e.wx.AllCalls()
		total := 0
		var names []string
		for k, v := range calls {
			total += v
			names = append(names, k+"="+strconv.Itoa(v))
		}
		sort.Strings(names)
		perApp := float64(total) / float64(n)
		b.ReportMetric(submitted.Seconds(), "s-all-submitted")
		b.ReportMetric(released.Seconds(), "s-all-released")
		b.ReportMetric(perApp, "wechat-calls/app")
		b.ReportMetric(float64(counter.N.Load()-ddb)/float64(n), "dynamodb-requests/app")
		b.Logf("%d apps: all submitted after %v, all released after %v (audits take %v); WeChat calls %v", n,
			submitted.Round(time.Millisecond), released.Round(time.Millisecond), delay, names)
		_ = ctx
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

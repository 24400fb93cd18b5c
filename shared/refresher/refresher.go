// Package refresher is the scheduled token refresh (functions/refresh, on an EventBridge schedule): first the
// component token, then every authorizer whose access token expires within the window.
//
// Due authorizers are found through the sparse, sharded `due` index (DueShard, DueAt), never by scanning:
// each shard is one Query for what expires before the window's end, so a run costs what is due, not what is
// stored, and shards can be split across workers. Each refresh goes through the same per-authorizer lease as
// on-demand getters (credentials.Authorizers), so a scheduled run, an overlapping run and hundreds of
// getters never refresh one account twice. A run that nears its deadline stops taking new work; the rest is
// still due at the next run.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Refresher runs scheduled refreshes.
type Refresher struct {
	DB        *dynamodb.Client
	Table     string
	Component interface {
		Token(context.Context) (string, error)
	}
	Authorizers *credentials.Authorizers

	Window      time.Duration // refresh what expires within this; default 30m (> schedule period + margin)
	Concurrency int           // refreshes in flight; default 32
	// StopBefore: stop taking new work when the run's deadline is this close; default 30s (longer than one
	// refresh can take: its WeChat part is bounded at 3/4 of the 30 s lease, its write runs on).
	StopBefore time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	// Sweeps is other scheduled work run after each scheduled refresh (the release campaigns' sweep).
	Sweeps []func(context.Context) error
}

// Report is one run's outcome.
type Report struct {
	Due         int           `json:"due"`          // authorizers found due
	Refreshed   int           `json:"refreshed"`    // refreshed by this run
	Skipped     int           `json:"skipped"`      // already fresh, or being refreshed by someone else
	Failed      int           `json:"failed"`       // transient failures: retried next run
	NeedsReauth int           `json:"needs_reauth"` // marked needs_reauth (61023, 61003, ...)
	Deferred    int           `json:"deferred"`     // not attempted: deadline near or quota exhausted
	Quota       bool          `json:"quota"`        // WeChat answered 45009: calls stopped for this run
	Component   string        `json:"component"`    // component token: "ok" or the error
	Duration    time.Duration `json:"-"`
	DurationMs  int64         `json:"duration_ms"`
}

// due is what the index gives for one authorizer.
type due struct {
	PK    string `dynamodbav:"PK"` // AUTHORIZER#<appid>
	DueAt int64  `dynamodbav:"DueAt"`
	AppID string `dynamodbav:"-"`
}

// Run does one scheduled refresh.
func (r *Refresher) Run(ctx context.Context) (Report, error) { return r.run(ctx, r.logger()) }

func (r *Refresher) run(ctx context.Context, log *slog.Logger) (Report, error) {
	start := r.now()
	ctx = logging.With(ctx, log)
	var rep Report

	if _, err := r.Component.Token(ctx); err != nil {
		// Without a component token no authorizer can be refreshed; the next run (or a getter) retries.
		rep.Component = err.Error()
		rep.Duration = time.Since(start)
		rep.DurationMs = rep.Duration.Milliseconds()
		r.report(ctx, rep)
		return rep, fmt.Errorf("component token: %w", err)
	}
	rep.Component = "ok"

	window := r.Window
	if window == 0 {
		window = 30 * time.Minute
	}
	dueBefore := start.Add(window)
	conc := r.Concurrency
	if conc <= 0 {
		conc = 32
	}

	work := make(chan due, conc)
	var (
		counts  [5]atomic.Int64 // refreshed, skipped, failed, needsReauth, deferred
		quota   atomic.Bool
		wg      sync.WaitGroup
		listErr error
		listMu  sync.Mutex
	)
	const (
		cRefreshed = iota
		cSkipped
		cFailed
		cNeedsReauth
		cDeferred
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if quota.Load() || r.nearDeadline(ctx) {
					counts[cDeferred].Add(1)
					continue
				}
				refreshed, err := r.Authorizers.RefreshIfDue(ctx, d.AppID, dueBefore)
				var na *credentials.NotAuthorizedError
				switch {
				case err == nil && refreshed:
					counts[cRefreshed].Add(1)
				case err == nil:
					counts[cSkipped].Add(1)
				case errors.As(err, &na) && na.Status == tokenstore.StatusNeedsReauth:
					counts[cNeedsReauth].Add(1)
					log.Warn("authorizer needs re-authorization", "authorizer_appid", d.AppID, "error", err.Error())
				case errors.As(err, &na):
					counts[cSkipped].Add(1) // revoked since it was listed
				case wxapi.IsQuota(err):
					quota.Store(true)
					counts[cDeferred].Add(1)
					log.Error("WeChat daily quota exhausted (45009): no more refresh calls this run", "authorizer_appid", d.AppID)
				default:
					counts[cFailed].Add(1)
					log.Warn("authorizer refresh failed; retried next run", "authorizer_appid", d.AppID, "error", err.Error())
				}
			}
		}()
	}

	// One lister per shard; the workers drain them all.
	var listers sync.WaitGroup
	var found atomic.Int64
	for shard := range tokenstore.DueShards {
		listers.Add(1)
		go func() {
			defer listers.Done()
			n, err := r.listShard(ctx, "S"+fmt.Sprint(shard), dueBefore, work)
			found.Add(int64(n))
			if err != nil {
				listMu.Lock()
				listErr = errors.Join(listErr, err)
				listMu.Unlock()
			}
		}()
	}
	listers.Wait()
	close(work)
	wg.Wait()

	rep.Due = int(found.Load())
	rep.Refreshed = int(counts[cRefreshed].Load())
	rep.Skipped = int(counts[cSkipped].Load())
	rep.Failed = int(counts[cFailed].Load())
	rep.NeedsReauth = int(counts[cNeedsReauth].Load())
	rep.Deferred = int(counts[cDeferred].Load())
	rep.Quota = quota.Load()
	rep.Duration = time.Since(start)
	rep.DurationMs = rep.Duration.Milliseconds()
	r.report(ctx, rep)
	return rep, listErr
}

// listShard queries one shard of the due index for what expires before dueBefore and feeds it to work.
func (r *Refresher) listShard(ctx context.Context, shard string, dueBefore time.Time, work chan<- due) (int, error) {
	keyCond := expression.Key("DueShard").Equal(expression.Value(shard)).
		And(expression.Key("DueAt").LessThanEqual(expression.Value(dueBefore.Unix())))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).Build()
	if err != nil {
		return 0, fmt.Errorf("build due query: %w", err)
	}
	p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
		TableName: aws.String(r.Table), IndexName: aws.String(table.DueIndex),
		KeyConditionExpression:   expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	n := 0
	for p.HasMorePages() {
		if r.nearDeadline(ctx) {
			return n, nil
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("query due shard %s: %w", shard, err)
		}
		var items []due
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return n, fmt.Errorf("decode due shard %s: %w", shard, err)
		}
		for _, d := range items {
			appID, ok := strings.CutPrefix(d.PK, "AUTHORIZER#")
			if !ok {
				continue // only authorizers are indexed today; other credentials would get their own refresher
			}
			d.AppID = appID
			select {
			case work <- d:
				n++
			case <-ctx.Done():
				return n, ctx.Err()
			}
		}
	}
	return n, nil
}

func (r *Refresher) nearDeadline(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return false
	}
	stop := r.StopBefore
	if stop == 0 {
		stop = 30 * time.Second
	}
	return time.Until(dl) < stop
}

// report writes the run's figures as one structured log line in CloudWatch embedded metric format, so the
// counts become metrics (namespace wxtpp, dimension Function=refresh) without any API call.
func (r *Refresher) report(ctx context.Context, rep Report) {
	defs := []map[string]string{}
	for _, name := range []string{"Due", "Refreshed", "Skipped", "Failed", "NeedsReauth", "Deferred"} {
		defs = append(defs, map[string]string{"Name": name, "Unit": "Count"})
	}
	defs = append(defs, map[string]string{"Name": "DurationMs", "Unit": "Milliseconds"})
	emf := map[string]any{
		"Timestamp": time.Now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace": "wxtpp", "Dimensions": [][]string{{"Function"}}, "Metrics": defs,
		}},
	}
	level := slog.LevelInfo
	if rep.Failed > 0 || rep.NeedsReauth > 0 || rep.Quota || rep.Component != "ok" {
		level = slog.LevelWarn
	}
	logging.From(ctx).LogAttrs(ctx, level, "refresh run",
		slog.Any("_aws", emf), slog.String("Function", "refresh"),
		slog.Int("Due", rep.Due), slog.Int("Refreshed", rep.Refreshed), slog.Int("Skipped", rep.Skipped),
		slog.Int("Failed", rep.Failed), slog.Int("NeedsReauth", rep.NeedsReauth), slog.Int("Deferred", rep.Deferred),
		slog.Bool("QuotaExhausted", rep.Quota), slog.String("ComponentToken", rep.Component),
		slog.Int64("DurationMs", rep.Duration.Milliseconds()))

	// The platform-wide counts (namespace Wxtpp) the dashboard and the RefreshFailures alarm read. A failure is
	// a token this run could not refresh and someone must look at: transient failures, accounts newly marked
	// needs_reauth, and the component token (without it nothing is refreshed).
	failures := rep.Failed + rep.NeedsReauth
	if rep.Component != "ok" {
		failures++
	}
	metrics.Count(logging.From(ctx), map[string]float64{
		metrics.RefreshRuns:     1,
		metrics.TokensRefreshed: float64(rep.Refreshed),
		metrics.RefreshFailures: float64(failures),
	})
	r.reportComponentAge(ctx)
}

// ComponentTokenLifetime is how long WeChat's component tokens live (expires_in 7200).
const ComponentTokenLifetime = 2 * time.Hour

// reportComponentAge emits how old the stored component token is: past ComponentTokenLifetime (or with no
// token at all) nothing keeps it fresh, and the ComponentTokenAge alarm fires.
func (r *Refresher) reportComponentAge(ctx context.Context) {
	c, ok := r.Component.(interface {
		Expiry(context.Context) (time.Time, error)
	})
	if !ok {
		return
	}
	exp, err := c.Expiry(ctx)
	if err != nil {
		logging.From(ctx).Warn("component token expiry not read", "error", err.Error())
		return
	}
	age := ComponentTokenLifetime.Seconds() * 10 // none stored: far past its lifetime
	if !exp.IsZero() {
		age = ComponentTokenLifetime.Seconds() - exp.Sub(r.now()).Seconds()
	}
	metrics.Seconds(logging.From(ctx), map[string]float64{metrics.ComponentTokenAge: max(age, 0.001)})
}

func (r *Refresher) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Refresher) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

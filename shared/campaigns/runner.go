// Package campaigns is the release pipeline: one campaign job commits a mini-program template to many
// authorized mini programs, submits each for audit, and releases each the moment its audit passes.
//
// A campaign job is validated (Parse), recorded, and fanned out into one campaign_app job per mini program.
// Each app walks [domains, testers] -> commit -> [privacy guideline] -> submit_audit -> (audit event) ->
// release, one conditional write per step on its record (CAMPAIGN#<id> / APP#<appid>): the job takes the app
// with a lease before calling WeChat, and a step whose answer was lost is checked with WeChat before it is
// tried again, so a redelivered, duplicated or concurrent message never commits, submits or releases twice.
// Waits (the privacy scan, another audit, the audit quota, rate limits) are message delays; the sweeper
// (Sweep, on the refresher's schedule) re-enqueues apps whose next step stalled or whose audit event never
// came, and keeps each campaign's counts.
package campaigns

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Job types.
const (
	JobCampaign = "campaign"         // start a campaign (operators; campaign.schema.json)
	JobRetry    = "campaign_retry"   // resume a campaign's failed and blocked apps (operators)
	JobRelease  = "campaign_release" // release a campaign's approved and gray apps (operators)
	JobFanout   = "campaign_fanout"  // the rest of a large campaign's fan-out (internal)
	JobApp      = "campaign_app"     // one mini program's next step (internal)
)

// WeChat is the code-management API (wxapi.Client).
type WeChat interface {
	Commit(ctx context.Context, token string, r wxapi.CommitRequest) error
	SubmitAudit(ctx context.Context, token string, r wxapi.SubmitAuditRequest) (int64, error)
	GetAuditStatus(ctx context.Context, token string, auditID int64) (wxapi.AuditStatus, error)
	GetLatestAuditStatus(ctx context.Context, token string) (wxapi.AuditStatus, error)
	UndoCodeAudit(ctx context.Context, token string) error
	QueryQuota(ctx context.Context, token string) (wxapi.Quota, error)
	Release(ctx context.Context, token string) error
	GrayRelease(ctx context.Context, token string, g wxapi.GrayRelease) error
	GrayReleasePlan(ctx context.Context, token string) (wxapi.GrayReleasePlan, error)
	VersionInfo(ctx context.Context, token string) (wxapi.VersionInfo, error)
	ModifyDomain(ctx context.Context, token string, r wxapi.DomainRequest) (wxapi.Domains, error)
	ModifyDomainDirectly(ctx context.Context, token string, r wxapi.DomainRequest) (wxapi.Domains, error)
	SetWebviewDomain(ctx context.Context, token, action string, domains []string) ([]string, error)
	SetWebviewDomainDirectly(ctx context.Context, token, action string, domains []string) ([]string, error)
	BindTester(ctx context.Context, token, wechatID string) (string, error)
	SetPrivacySetting(ctx context.Context, token string, s wxapi.PrivacySetting) error
	GetCategory(ctx context.Context, token string) ([]wxapi.AuditCategory, error)
	GetPage(ctx context.Context, token string) ([]string, error)
}

// Tokens gives an authorizer's access token, retrying once with a fresh one after 40001 (credentials).
type Tokens interface {
	Do(ctx context.Context, appID string, fn func(token string) error) error
}

// Timing is how long things wait. Zero fields take the defaults in DefaultTiming.
type Timing struct {
	Lease      time.Duration // how long a job holds an app while it calls WeChat (beyond the job's own run)
	Stall      time.Duration // a step not moving for this long is re-enqueued by the sweeper
	AuditCheck time.Duration // an audit without its event for this long is asked for with get_auditstatus
	RetryBase  time.Duration // first delay after a transient failure; tripled each time, capped at 15 min
	ScanWait   time.Duration // the privacy scan after a commit (61039)
	BusyWait   time.Duration // another audit running (85009) under the wait policy
	QuotaWait  time.Duration // the audit quota used up (85085)
	QuotaTTL   time.Duration // how long the quota estimate is trusted before queryquota is asked again
}

// DefaultTiming is for WeChat as it is: audits take hours.
var DefaultTiming = Timing{
	Lease: 3 * time.Minute, Stall: 10 * time.Minute, AuditCheck: 6 * time.Hour, RetryBase: 10 * time.Second,
	ScanWait: time.Minute, BusyWait: 15 * time.Minute, QuotaWait: 15 * time.Minute, QuotaTTL: 10 * time.Minute,
}

func (t Timing) withDefaults() Timing {
	d := DefaultTiming
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Lease, &d.Lease}, {&t.Stall, &d.Stall}, {&t.AuditCheck, &d.AuditCheck}, {&t.RetryBase, &d.RetryBase},
		{&t.ScanWait, &d.ScanWait}, {&t.BusyWait, &d.BusyWait}, {&t.QuotaWait, &d.QuotaWait}, {&t.QuotaTTL, &d.QuotaTTL},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// MaxFailures is how many transient failures in a row an app's step may have before the app fails with
// the last one (rate limits and waits do not count).
const MaxFailures = 8

// Runner runs the campaign jobs.
type Runner struct {
	Store    *Store
	Accounts *tokenstore.Store // the authorized accounts: targets
	Audits   *audits.Store
	Tokens   Tokens
	WeChat   WeChat
	Queue    *jobs.Queue
	Timing   Timing
	Logger   *slog.Logger
	Now      func() time.Time
	// Notifier tells tenants when their apps are released or fail (nil: nobody is told).
	Notifier *lifecycle.Notifier

	specs sync.Map // campaign id -> Spec: a campaign's spec never changes
}

// New returns a runner over t.
func New(t *table.Table, accounts *tokenstore.Store, tokens Tokens, wechat WeChat, queue *jobs.Queue) *Runner {
	return &Runner{Store: &Store{T: t}, Accounts: accounts, Audits: audits.New(t), Tokens: tokens, WeChat: wechat, Queue: queue}
}

// Handlers are the job handlers to register with the jobs consumer.
func (r *Runner) Handlers() map[string]jobs.Handler {
	return map[string]jobs.Handler{
		JobCampaign: r.HandleCampaign,
		JobFanout:   r.HandleFanout,
		JobApp:      r.HandleApp,
		JobRetry:    r.HandleRetry,
		JobRelease:  r.HandleRelease,
	}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) timing() Timing { return r.Timing.withDefaults() }

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/tenants"
)

// JobType is the job that retries a delivery the webhook did not take.
const JobType = "relay"

// MaxAttempts bounds the deliveries of one push (the first, inline, included); then the job goes to the
// dead-letter queue with the last failure as its reason.
const MaxAttempts = 6

// Job is a delivery to retry. Attempt counts the deliveries made so far.
type Job struct {
	jobs.Envelope
	Delivery Delivery `json:"delivery"`
}

// NewJob is the retry of d after its first, inline, delivery failed.
func NewJob(d Delivery) Job {
	return Job{Envelope: jobs.Envelope{Type: JobType, Version: jobs.Version, Attempt: 1}, Delivery: d}
}

// Retrier runs relay jobs: retries of relayed messages, and lifecycle notifications (shared/lifecycle, whose
// first delivery is a job too). The tenant's webhook and secret are read again (they may have changed), and a
// reply is ignored (WeChat's 5 s for a passive reply are long gone).
type Retrier struct {
	Client    *Client
	Tenants   *tenants.Store
	RetryBase time.Duration // jobs.Backoff's base; 0 = jobs.DefaultRetryBase
}

// Handle runs one relay job.
func (r *Retrier) Handle(ctx context.Context, m jobs.Message) error {
	var j Job
	if err := m.Decode(&j); err != nil {
		return err
	}
	d := j.Delivery
	if d.ID == "" || d.Tenant == "" {
		return jobs.Permanent(errors.New("relay job without delivery_id or tenant"))
	}
	log := logging.From(ctx).With("delivery_id", d.ID, "tenant", d.Tenant, "authorizer_appid", d.AppID)
	t, err := r.Tenants.Get(ctx, d.Tenant)
	if errors.Is(err, tenants.ErrNotFound) {
		return jobs.Permanent(fmt.Errorf("tenant %s no longer exists", d.Tenant))
	}
	if err != nil {
		return err
	}
	if t.Webhook == "" {
		log.Warn("tenant has no webhook any more; delivery dropped on purpose")
		return nil
	}
	if _, err := r.Client.Deliver(ctx, t.Webhook, t.SigningSecret, d); err != nil { // a reply now is too late
		return jobs.Retry(jobs.Backoff(r.RetryBase, m.Attempt+1), MaxAttempts, fmt.Errorf("delivery %s: %w", d.ID, err))
	}
	log.Info("delivered to the webhook by the jobs function", "attempt", m.Attempt+1)
	return nil
}

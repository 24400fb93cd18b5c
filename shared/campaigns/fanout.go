package campaigns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// AppJob is one mini program's next step. Reason says what sent it (fanout, audit_event, sweep, retry,
// release, wait, again) for the logs; the app's record, not the job, says what to do.
type AppJob struct {
	jobs.Envelope
	CampaignID string `json:"campaign_id"`
	AppID      string `json:"appid"`
	Reason     string `json:"reason,omitempty"`
}

func appJob(id, appid, reason string) AppJob {
	return AppJob{Envelope: jobs.Envelope{Type: JobApp, Version: jobs.Version}, CampaignID: id, AppID: appid, Reason: reason}
}

// FanoutJob continues a fan-out from target From on.
type FanoutJob struct {
	jobs.Envelope
	CampaignID string `json:"campaign_id"`
	From       int    `json:"from"`
}

// CampaignRef is the body of the operator jobs that name a campaign (campaign_retry, campaign_release).
type CampaignRef struct {
	jobs.Envelope
	CampaignID string `json:"campaign_id"`
}

// fanoutReserve is the time a fan-out leaves itself before its invocation ends: the rest goes to a
// campaign_fanout job.
const fanoutReserve = 15 * time.Second

// fanoutChunk is how many apps are created and enqueued at a time.
const fanoutChunk = 200

var campaignIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// HandleCampaign starts a campaign: validates it (an invalid one is recorded as rejected, with the reason,
// and goes to the dead-letter queue; nothing is committed), records it with its resolved targets, and fans
// it out. A repeated delivery continues the fan-out where it stands.
func (r *Runner) HandleCampaign(ctx context.Context, m jobs.Message) error {
	spec, err := Parse(m.Body)
	if err != nil {
		if IsInvalid(err) {
			r.reject(ctx, m.Body, err)
			return jobs.Permanent(err)
		}
		return err
	}
	ctx = logging.With(ctx, logging.From(ctx).With("campaign_id", spec.CampaignID))
	c, targets, err := r.create(ctx, spec)
	if err != nil {
		return err
	}
	if c.State != CampaignFanningOut {
		logging.From(ctx).Info("campaign already fanned out; repeated job ignored", "state", c.State)
		return nil
	}
	return r.fanout(ctx, spec.CampaignID, targets, c.FannedOut)
}

// HandleFanout continues a large campaign's fan-out.
func (r *Runner) HandleFanout(ctx context.Context, m jobs.Message) error {
	var j FanoutJob
	if err := m.Decode(&j); err != nil {
		return err
	}
	c, err := r.Store.Campaign(ctx, j.CampaignID)
	if errors.Is(err, table.ErrNotFound) {
		return jobs.Permanent(fmt.Errorf("campaign %q does not exist", j.CampaignID))
	}
	if err != nil {
		return err
	}
	if c.State != CampaignFanningOut {
		return nil
	}
	targets, _, err := r.storedTargets(ctx, j.CampaignID)
	if err != nil {
		return err
	}
	ctx = logging.With(ctx, logging.From(ctx).With("campaign_id", j.CampaignID))
	return r.fanout(ctx, j.CampaignID, targets, c.FannedOut)
}

// targetList is one TARGETS#<n> item: a chunk of the resolved targets (an item holds at most 400 KB).
type targetList struct {
	Targets  []Target `dynamodbav:"Targets"`
	SpecHash string   `dynamodbav:"SpecHash"`
}

// targetsPerItem keeps a chunk well under DynamoDB's item size (an appid and a tenant id take ~60 bytes).
const targetsPerItem = 2000

// storedTargets reads the resolved targets, in order, and the hash of the campaign that stored them ("" if
// none is stored).
func (r *Runner) storedTargets(ctx context.Context, id string) ([]Target, string, error) {
	var out []Target
	hash := ""
	err := r.Store.T.QueryPrefix(ctx, campaignKey(id).PK, "TARGETS#", func(it map[string]types.AttributeValue) error {
		var t targetList
		if err := attributevalue.UnmarshalMap(it, &t); err != nil {
			return err
		}
		out, hash = append(out, t.Targets...), t.SpecHash
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("read targets of campaign %s: %w", id, err)
	}
	return out, hash, nil
}

// storeTargets records the resolved targets in chunks, unless another campaign stored targets under the id.
// A chunk already stored by a concurrent delivery of the same job is kept.
func (r *Runner) storeTargets(ctx context.Context, id, hash string, targets []Target) error {
	for i := 0; i == 0 || i*targetsPerItem < len(targets); i++ {
		chunk := targets[i*targetsPerItem : min((i+1)*targetsPerItem, len(targets))]
		cond := expression.AttributeNotExists(expression.Name("PK")).Or(expression.Name("SpecHash").Equal(expression.Value(hash)))
		err := r.Store.T.PutAt(ctx, targetsKey(id, i), targetList{Targets: chunk, SpecHash: hash}, &cond)
		if table.Refused(err) {
			return jobs.Permanent(fmt.Errorf("campaign id %q is taken by another campaign; choose a new id", id))
		}
		if err != nil {
			return fmt.Errorf("record targets of campaign %s: %w", id, err)
		}
	}
	return nil
}

// reject records an invalid campaign, when it names a usable campaign id, so the operator sees why.
func (r *Runner) reject(ctx context.Context, body []byte, why error) {
	var ref CampaignRef
	_ = json.Unmarshal(body, &ref)
	log := logging.From(ctx)
	if !campaignIDRE.MatchString(ref.CampaignID) {
		log.Warn("campaign job rejected", "reason", why.Error())
		return
	}
	now := r.now().UnixMilli()
	c := Campaign{ID: ref.CampaignID, State: CampaignRejected, Reason: why.Error(), CreatedAt: now, UpdatedAt: now}
	// Never over a campaign that exists: a bad job under a used id must not hide it.
	cond := expression.AttributeNotExists(expression.Name("PK"))
	err := r.Store.T.PutAt(ctx, campaignKey(ref.CampaignID), c, &cond)
	switch {
	case table.Refused(err):
		log.Warn("campaign job rejected; a campaign with its id exists and is kept", "campaign_id", ref.CampaignID, "reason", why.Error())
	case err != nil:
		log.Error("rejected campaign not recorded", "campaign_id", ref.CampaignID, "error", err.Error())
	default:
		log.Warn("campaign job rejected", "campaign_id", ref.CampaignID, "reason", why.Error())
	}
}

// create records the campaign and its resolved targets, or finds them recorded by an earlier delivery of
// the same job. Another campaign under the same id is refused; a rejected one is replaced.
func (r *Runner) create(ctx context.Context, spec Spec) (Campaign, []Target, error) {
	hash := spec.hash()
	old, err := r.Store.Campaign(ctx, spec.CampaignID)
	switch {
	case err == nil && old.SpecHash == hash:
		t, _, err := r.storedTargets(ctx, spec.CampaignID)
		return old, t, err
	case err == nil && old.State != CampaignRejected:
		return Campaign{}, nil, jobs.Permanent(fmt.Errorf("campaign id %q is taken by another campaign (state %s); choose a new id", spec.CampaignID, old.State))
	case err != nil && !errors.Is(err, table.ErrNotFound):
		return Campaign{}, nil, err
	}
	targets, err := r.targets(ctx, spec)
	if err != nil {
		return Campaign{}, nil, err
	}
	// The targets first, so that a campaign record always has them.
	if err := r.storeTargets(ctx, spec.CampaignID, hash, targets); err != nil {
		return Campaign{}, nil, err
	}
	stored := spec
	stored.Envelope, stored.Targets = jobs.Envelope{}, Targets{}
	specJSON, err := json.Marshal(stored)
	if err != nil {
		return Campaign{}, nil, fmt.Errorf("encode spec: %w", err)
	}
	now := r.now()
	c := Campaign{ID: spec.CampaignID, State: CampaignFanningOut, SpecJSON: string(specJSON), SpecHash: hash,
		Total: len(targets), CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli(),
		DueShard: dueShard(spec.CampaignID), DueAt: now.Add(r.timing().Stall).Unix()}
	cond := expression.AttributeNotExists(expression.Name("PK")).Or(expression.Name("State").Equal(expression.Value(CampaignRejected)))
	err = r.Store.T.PutAt(ctx, campaignKey(spec.CampaignID), c, &cond)
	if table.Refused(err) { // a concurrent delivery recorded it, or another campaign took the id meanwhile
		if c, err = r.Store.Campaign(ctx, spec.CampaignID); err != nil {
			return Campaign{}, nil, err
		}
		if c.SpecHash != hash {
			return Campaign{}, nil, jobs.Permanent(fmt.Errorf("campaign id %q is taken by another campaign; choose a new id", spec.CampaignID))
		}
		targets, _, err = r.storedTargets(ctx, spec.CampaignID)
		return c, targets, err
	}
	if err != nil {
		return Campaign{}, nil, fmt.Errorf("record campaign %s: %w", spec.CampaignID, err)
	}
	logging.From(ctx).Info("campaign recorded", "targets", len(targets), "template_id", spec.TemplateID, "user_version", spec.UserVersion)
	return c, targets, nil
}

// targets resolves the campaign's mini programs, ordered by appid. An appid that is not an authorized mini
// program stays a target: it fails with the reason, where the operator sees it.
func (r *Runner) targets(ctx context.Context, spec Spec) ([]Target, error) {
	if len(spec.Targets.AppIDs) > 0 {
		ids := slices.Clone(spec.Targets.AppIDs)
		slices.Sort(ids)
		out := make([]Target, len(ids))
		for i, id := range ids {
			out[i] = Target{AppID: id}
		}
		return out, nil
	}
	accts, err := r.Accounts.Authorizers(ctx, spec.Targets.Tenant)
	if err != nil {
		return nil, fmt.Errorf("resolve targets: %w", err)
	}
	var out []Target
	for _, a := range accts {
		if a.Kind == tokenstore.KindMiniProgram && a.Status == tokenstore.StatusAuthorized {
			out = append(out, Target{AppID: a.AppID, Tenant: a.Tenant})
		}
	}
	return out, nil
}

// fanout creates the apps from target from on and enqueues their first step, a chunk at a time, handing
// the rest to a campaign_fanout job when the invocation runs short of time.
func (r *Runner) fanout(ctx context.Context, id string, targets []Target, from int) error {
	log := logging.From(ctx)
	if len(targets) == 0 {
		// Nothing to release: done at once, rather than left fanning out.
		upd := expression.Set(expression.Name("State"), expression.Value(CampaignFinished)).
			Set(expression.Name("DoneAt"), expression.Value(r.now().UnixMilli())).
			Remove(expression.Name("DueShard")).Remove(expression.Name("DueAt"))
		cond := expression.Name("State").Equal(expression.Value(CampaignFanningOut))
		if _, err := r.Store.T.Update(ctx, campaignKey(id), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
			return fmt.Errorf("finish campaign %s: %w", id, err)
		}
		log.Warn("campaign has no targets: finished")
		return nil
	}
	for from < len(targets) {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < fanoutReserve {
			log.Info("fan-out continues in another job", "from", from, "of", len(targets))
			return r.Queue.Send(ctx, FanoutJob{Envelope: jobs.Envelope{Type: JobFanout, Version: jobs.Version}, CampaignID: id, From: from}, 0)
		}
		end := min(from+fanoutChunk, len(targets))
		if err := r.createApps(ctx, id, targets[from:end]); err != nil {
			return err
		}
		upd := expression.Set(expression.Name("FannedOut"), expression.Value(end)).
			Set(expression.Name("UpdatedAt"), expression.Value(r.now().UnixMilli()))
		if end == len(targets) {
			upd = upd.Set(expression.Name("State"), expression.Value(CampaignRunning))
		}
		cond := expression.Name("FannedOut").LessThan(expression.Value(end))
		if _, err := r.Store.T.Update(ctx, campaignKey(id), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
			return fmt.Errorf("record fan-out of campaign %s: %w", id, err)
		}
		from = end
	}
	log.Info("campaign fanned out", "apps", len(targets))
	return nil
}

// createApps creates the apps that do not exist yet and enqueues their first step. An app whose job is not
// sent (a crash in between) is found by the sweeper when its DueAt passes.
func (r *Runner) createApps(ctx context.Context, id string, targets []Target) error {
	now := r.now()
	created := make([]bool, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, t := range targets {
		g.Go(func() error {
			a := App{CampaignID: id, AppID: t.AppID, Tenant: t.Tenant, State: StatePending, Version: 1,
				UpdatedAt: now.UnixMilli(), DueShard: dueShard(t.AppID), DueAt: now.Add(r.timing().Stall).Unix()}
			cond := expression.AttributeNotExists(expression.Name("PK"))
			err := r.Store.T.PutAt(gctx, appKey(id, t.AppID), a, &cond)
			if table.Refused(err) {
				return nil // an earlier delivery created it
			}
			if err != nil {
				return fmt.Errorf("create app %s of campaign %s: %w", t.AppID, id, err)
			}
			created[i] = true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var batch []any
	for i, t := range targets {
		if created[i] {
			batch = append(batch, appJob(id, t.AppID, "fanout"))
		}
	}
	if err := r.Queue.SendBatch(ctx, batch, 0); err != nil {
		logging.From(ctx).Warn("some app jobs not enqueued; the sweeper will", "error", err.Error())
	}
	return nil
}

package campaigns

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
)

// SweepResult says what a sweep did.
type SweepResult struct {
	Apps      int // apps re-enqueued: a stalled step, a lost job, an audit whose event did not come
	Campaigns int // campaigns counted
	Finished  int // campaigns found finished
}

// Sweep finds, through the due index, the apps whose DueAt has passed and enqueues them again (their job
// decides what is due: asking WeChat for an audit's status, or continuing a step), and counts each running
// campaign's apps by state, marking it finished when every app is released, failed or blocked. Each item is
// claimed with a conditional write first, so sweeps running at once enqueue it once.
func (r *Runner) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	var failed error // what went wrong, after everything else was swept
	now := r.now()
	var batch []any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.Queue.SendBatch(ctx, batch, 0)
		batch = batch[:0]
		return err
	}
	for shard := range dueShards {
		keyCond := expression.Key("DueShard").Equal(expression.Value("C" + strconv.Itoa(shard))).
			And(expression.Key("DueAt").LessThanEqual(expression.Value(now.Unix())))
		expr, err := expression.NewBuilder().WithKeyCondition(keyCond).Build()
		if err != nil {
			return res, fmt.Errorf("build sweep query: %w", err)
		}
		var due []map[string]types.AttributeValue
		err = r.Store.T.Query(ctx, &dynamodb.QueryInput{
			IndexName: aws.String(table.DueIndex), KeyConditionExpression: expr.KeyCondition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}, func(it map[string]types.AttributeValue) error { due = append(due, it); return nil })
		if err != nil {
			failed = errors.Join(failed, fmt.Errorf("sweep shard %d: %w", shard, err))
			continue
		}
		for _, it := range due {
			pk, sk := str(it["PK"]), str(it["SK"])
			id, ok := strings.CutPrefix(pk, "CAMPAIGN#")
			if !ok {
				continue
			}
			if sk == "CAMPAIGN" {
				fin, err := r.count(ctx, id)
				if err != nil { // one campaign's trouble does not hold up the rest of the sweep
					logging.From(ctx).Error("campaign not counted", "campaign_id", id, "error", err.Error())
					failed = errors.Join(failed, err)
					continue
				}
				res.Campaigns++
				if fin {
					res.Finished++
				}
				continue
			}
			appid, ok := strings.CutPrefix(sk, "APP#")
			if !ok {
				continue
			}
			// Claim: push DueAt on, unless another sweep did.
			old, _ := strconv.ParseInt(str(it["DueAt"]), 10, 64)
			cond := expression.Name("DueAt").Equal(expression.Value(old))
			upd := expression.Set(expression.Name("DueAt"), expression.Value(now.Add(r.timing().Stall).Unix()))
			if _, err := r.Store.T.Update(ctx, table.Key{PK: pk, SK: sk}, upd, &cond, types.ReturnValueNone); table.Refused(err) {
				continue
			} else if err != nil {
				failed = errors.Join(failed, fmt.Errorf("claim %s of campaign %s: %w", appid, id, err))
				continue
			}
			batch = append(batch, appJob(id, appid, reasonSweep))
			res.Apps++
			if len(batch) == 100 {
				failed = errors.Join(failed, flush())
			}
		}
	}
	failed = errors.Join(failed, flush())
	if res.Apps > 0 || res.Finished > 0 {
		logging.From(ctx).Info("campaign sweep", "apps_enqueued", res.Apps, "campaigns_counted", res.Campaigns, "campaigns_finished", res.Finished)
	}
	return res, failed
}

// SweepFunc is r.Sweep as scheduled work (refresher.Refresher.Sweeps).
func SweepFunc(r *Runner) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := r.Sweep(ctx)
		return err
	}
}

func str(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

// count tallies a campaign's apps, stores the counts, and marks the campaign finished when every app is.
// A fan-out that stalled is continued.
func (r *Runner) count(ctx context.Context, id string) (bool, error) {
	c, err := r.Store.Campaign(ctx, id)
	if err != nil {
		return false, err
	}
	now := r.now()
	if c.State == CampaignFanningOut {
		job := FanoutJob{Envelope: jobs.Envelope{Type: JobFanout, Version: jobs.Version}, CampaignID: id, From: c.FannedOut}
		if err := r.Queue.Send(ctx, job, 0); err != nil {
			return false, err
		}
	}
	apps, err := r.Store.Apps(ctx, id)
	if err != nil {
		return false, err
	}
	counts := Count(apps)
	all := c.State == CampaignRunning && len(apps) == c.Total
	settled, waiting := all, 0
	for _, a := range apps {
		switch {
		case a.State == StateApproved || a.State == StateGray:
			waiting++
		case !Final(a.State):
			settled = false
		}
	}
	finished := settled && waiting == 0
	upd := expression.Set(expression.Name("Counts"), expression.Value(counts)).
		Set(expression.Name("CountedAt"), expression.Value(now.UnixMilli()))
	switch {
	case settled:
		// Off the due index: nothing moves until an operator job puts it back.
		state := CampaignFinished
		if waiting > 0 {
			state = CampaignAwaiting
		}
		upd = upd.Set(expression.Name("State"), expression.Value(state)).
			Set(expression.Name("DoneAt"), expression.Value(now.UnixMilli())).
			Remove(expression.Name("DueShard")).Remove(expression.Name("DueAt"))
	default:
		// Counted again after Stall: reading every app is the sweep's largest cost.
		upd = upd.Set(expression.Name("DueAt"), expression.Value(now.Add(r.timing().Stall).Unix()))
	}
	cond := expression.Name("State").Equal(expression.Value(c.State)).And(expression.Name("Gen").Equal(expression.Value(c.Gen)))
	if _, err := r.Store.T.Update(ctx, campaignKey(id), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
		return false, fmt.Errorf("record counts of campaign %s: %w", id, err)
	}
	if settled {
		logging.From(ctx).Info("campaign settled", "campaign_id", id, "released", counts[StateReleased],
			"failed", counts[StateFailed], "blocked", counts[StateBlocked], "awaiting_release", waiting)
	}
	return finished, nil
}

package campaigns

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
)

// The operator's jobs: {"type":"campaign_retry","campaign_id":"..."} resumes the failed and blocked apps
// where they failed (a rejected audit is submitted again, without a new commit); {"type":"campaign_release",
// "campaign_id":"..."} fully releases the approved (manual mode) and gray-released apps.

// HandleRetry runs a campaign_retry job.
func (r *Runner) HandleRetry(ctx context.Context, m jobs.Message) error {
	return r.operate(ctx, m, "retry", func(a App) (string, bool) {
		if a.State != StateFailed && a.State != StateBlocked {
			return "", false
		}
		switch a.FailedStep {
		case StatePending, StateCommitting, StateSubmitting, StateReleasing:
			return a.FailedStep, true
		case StateAuditing:
			if a.ErrCode == 0 && strings.HasPrefix(a.ErrMsg, "audit ") {
				return StateSubmitting, true // rejected or withdrawn: submit again (the code is committed)
			}
			return StateAuditing, true // failed while following the audit: ask WeChat again
		}
		return StatePending, true
	}, reasonRetry)
}

// HandleRelease runs a campaign_release job.
func (r *Runner) HandleRelease(ctx context.Context, m jobs.Message) error {
	return r.operate(ctx, m, "release", func(a App) (string, bool) {
		return StateReleasing, a.State == StateApproved || a.State == StateGray
	}, reasonRelease)
}

// operate moves each app that pick selects to the state it says (conditionally on the app as read, so a
// job running it meanwhile wins) and enqueues it.
func (r *Runner) operate(ctx context.Context, m jobs.Message, what string, pick func(App) (string, bool), reason string) error {
	var ref CampaignRef
	if err := m.Decode(&ref); err != nil {
		return err
	}
	if _, err := r.spec(ctx, ref.CampaignID); err != nil {
		return err
	}
	apps, err := r.Store.Apps(ctx, ref.CampaignID)
	if err != nil {
		return err
	}
	now := r.now()
	var batch []any
	for _, a := range apps {
		to, ok := pick(a)
		if !ok {
			continue
		}
		// Tried stays: a call whose answer was lost before the app failed is checked before it is made again.
		ch := (&change{}).Set("State", to).Remove("Failures", "Note", "ErrCode", "ErrMsg", "FailedStep", "Owner", "LeaseUntil").
			due(a.AppID, now.Add(r.timing().Stall))
		if reason == reasonRelease {
			ch.Set("FullRelease", true).Remove("Tried")
		}
		_, err := r.Store.write(ctx, a.CampaignID, a.AppID, ch, expression.Name("Version").Equal(expression.Value(a.Version)))
		if table.Refused(err) {
			continue // it moved meanwhile
		}
		if err != nil {
			return fmt.Errorf("%s %s of campaign %s: %w", what, a.AppID, a.CampaignID, err)
		}
		batch = append(batch, appJob(a.CampaignID, a.AppID, reason))
	}
	if err := r.Queue.SendBatch(ctx, batch, 0); err != nil {
		logging.From(ctx).Warn("some apps not enqueued; the sweeper will", "error", err.Error())
	}
	// A finished or waiting campaign runs again, and a count read before this cannot close it.
	if len(batch) > 0 {
		upd := expression.Set(expression.Name("State"), expression.Value(CampaignRunning)).
			Set(expression.Name("DueShard"), expression.Value(dueShard(ref.CampaignID))).
			Set(expression.Name("DueAt"), expression.Value(now.Unix())).
			Add(expression.Name("Gen"), expression.Value(1))
		cond := expression.Name("State").In(expression.Value(CampaignFinished), expression.Value(CampaignAwaiting), expression.Value(CampaignRunning))
		if _, err := r.Store.T.Update(ctx, campaignKey(ref.CampaignID), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
			return err
		}
	}
	logging.From(ctx).Info("campaign "+what, "campaign_id", ref.CampaignID, "apps", len(batch))
	return nil
}

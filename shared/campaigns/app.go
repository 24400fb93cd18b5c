package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Why an app job was sent.
const (
	reasonFanout  = "fanout"
	reasonEvent   = "audit_event"
	reasonSweep   = "sweep"
	reasonRetry   = "retry"
	reasonRelease = "release"
	reasonWait    = "wait"
	reasonAgain   = "again"
)

// HandleApp runs a campaign_app job: the app's next steps, as far as they go without waiting.
func (r *Runner) HandleApp(ctx context.Context, m jobs.Message) error {
	var j AppJob
	if err := m.Decode(&j); err != nil {
		return err
	}
	if j.CampaignID == "" || j.AppID == "" {
		return jobs.Permanent(errors.New("campaign_app job without campaign_id or appid"))
	}
	log := logging.From(ctx).With("campaign_id", j.CampaignID, "authorizer_appid", j.AppID, "reason", j.Reason)
	ctx = logging.With(ctx, log)
	spec, err := r.spec(ctx, j.CampaignID)
	if err != nil {
		return err
	}
	var a App
	var latest *audits.Latest
	if j.Reason == reasonEvent {
		a, latest, err = r.Store.AppAndAudit(ctx, j.CampaignID, j.AppID)
	} else {
		a, err = r.Store.App(ctx, j.CampaignID, j.AppID)
	}
	if errors.Is(err, table.ErrNotFound) {
		return jobs.Permanent(fmt.Errorf("%s is not in campaign %s", j.AppID, j.CampaignID))
	}
	if err != nil {
		return err
	}
	return r.advance(ctx, spec, a, latest, j.Reason)
}

// spec reads a campaign's spec once per process: it never changes.
func (r *Runner) spec(ctx context.Context, id string) (Spec, error) {
	if s, ok := r.specs.Load(id); ok {
		return s.(Spec), nil
	}
	c, err := r.Store.Campaign(ctx, id)
	if errors.Is(err, table.ErrNotFound) {
		return Spec{}, jobs.Permanent(fmt.Errorf("campaign %q does not exist", id))
	}
	if err != nil {
		return Spec{}, err
	}
	if c.State == CampaignRejected {
		return Spec{}, jobs.Permanent(fmt.Errorf("campaign %q was rejected: %s", id, c.Reason))
	}
	s, err := c.Spec()
	if err != nil {
		return Spec{}, jobs.Permanent(err)
	}
	r.specs.Store(id, s)
	return s, nil
}

// advance takes the app, if it has something to do now, and runs its steps.
// latest, if not nil, is the app's latest audit read with it.
func (r *Runner) advance(ctx context.Context, spec Spec, a App, latest *audits.Latest, reason string) error {
	log := logging.From(ctx)
	for range 3 {
		now := r.now()
		switch {
		case Final(a.State) || a.State == StateApproved || a.State == StateGray:
			return nil // done, or waiting for the operator's release
		case a.State == StateAuditing:
			if latest == nil {
				l, err := r.Audits.Latest(ctx, a.AppID)
				if err != nil && !errors.Is(err, table.ErrNotFound) {
					return err
				}
				if err == nil {
					latest = &l
				}
			}
			// Ask WeChat when the operator says so, or when the event is overdue.
			ask := reason == reasonRetry || (reason == reasonSweep || reason == reasonAgain) &&
				!now.Before(time.Unix(a.SubmittedAt, 0).Add(r.timing().AuditCheck))
			if !hasVerdict(latest, a) && !ask {
				return nil // the audit runs; its event (or the sweeper, after AuditCheck) brings the app back
			}
		}
		if a.Owner != "" && a.LeaseUntil > now.UnixMilli() {
			if reason == reasonEvent {
				// The holder may have looked before the event was recorded: look again after its lease.
				delay := time.Duration(a.LeaseUntil-now.UnixMilli())*time.Millisecond + time.Second
				return r.Queue.Send(ctx, appJob(a.CampaignID, a.AppID, reasonEvent), delay)
			}
			log.Debug("app held by another job", "state", a.State)
			return nil
		}
		x := &run{r: r, spec: spec, owner: newOwner(), uncertain: a.Tried != 0, latest: latest, reason: reason}
		x.log = log.With("owner", x.owner)
		leaseUntil := now.Add(r.timing().Lease)
		ch := (&change{}).Set("Owner", x.owner).Set("LeaseUntil", leaseUntil.UnixMilli()).
			due(a.AppID, leaseUntil.Add(r.timing().Stall))
		if a.State == StatePending && !spec.needsSetup() {
			// Nothing to set up: straight to the commit, in the same write.
			ch.Set("State", StateCommitting).Set("SetupDone", true).Set("Tried", now.UnixMilli())
		}
		taken, err := r.Store.write(ctx, a.CampaignID, a.AppID, ch, expression.Name("Version").Equal(expression.Value(a.Version)))
		if table.Refused(err) {
			if a, err = r.Store.App(ctx, a.CampaignID, a.AppID); err != nil {
				return err
			}
			latest = nil // read again with the app's new state
			continue
		}
		if err != nil {
			return fmt.Errorf("take %s of campaign %s: %w", a.AppID, a.CampaignID, err)
		}
		x.a = taken
		// The steps stop well before the lease lapses, so nobody else takes the app while we call WeChat.
		sctx, cancel := context.WithDeadline(ctx, leaseUntil.Add(-leaseMargin))
		defer cancel()
		return x.steps(sctx)
	}
	return nil
}

// hasVerdict reports whether an event after the app's submission says passed or rejected.
func hasVerdict(l *audits.Latest, a App) bool {
	return l != nil && (l.Status == audits.StatusPassed || l.Status == audits.StatusFailed) && l.EventAt >= a.SubmittedAt
}

func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// run is one job holding one app.
type run struct {
	r      *Runner
	spec   Spec
	a      App
	owner  string
	reason string // why the job was sent
	log    *slog.Logger
	// uncertain: the state's WeChat action may have been sent by an earlier holder, answer unknown.
	uncertain bool
	latest    *audits.Latest // the latest audit as read when an auditing app was taken
	undone    bool           // this run withdrew a running audit (on_pending undo): once only
	claimed   bool           // this run holds the mini program for the campaign (audits.Claim)
	stop      bool           // the app was let go (waiting, final, or lost)
}

// errLost: another job took the app (our lease lapsed). It has it now; we stop.
var errLost = errors.New("the app was taken by another job")

// errNoTime: too little of the lease or the invocation is left to make a WeChat call; nothing was sent.
var errNoTime = errors.New("too little time left for a WeChat call")

// steps runs the app's steps until one waits or ends.
func (x *run) steps(ctx context.Context) error {
	for !x.stop {
		var err error
		switch x.a.State {
		case StatePending:
			err = x.setup(ctx)
		case StateCommitting:
			err = x.commit(ctx)
		case StateSubmitting:
			err = x.submit(ctx)
		case StateAuditing:
			err = x.audit(ctx)
		case StateReleasing:
			err = x.release(ctx)
		default:
			err = x.finish(ctx, x.a.State, &change{})
		}
		if errors.Is(err, errLost) {
			x.log.Warn("app taken over by another job; stopping")
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// leaseMargin is kept between the end of the steps and the lease's end, for the last write.
const leaseMargin = 5 * time.Second

// callBudget is what one WeChat call may take with its token and retries (a read retries 3 times, 5 s each):
// with less left before the steps' deadline, the call is not made.
const callBudget = 16 * time.Second

// call makes one WeChat call with the app's token. A -1 (WeChat busy; nothing was done) is tried again a
// couple of times right away.
func (x *run) call(ctx context.Context, fn func(token string) error) error {
	for attempt := 1; ; attempt++ {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < min(callBudget, x.r.timing().Lease/3) {
			return errNoTime
		}
		err := x.r.Tokens.Do(ctx, x.a.AppID, fn)
		if !wxapi.IsCode(err, -1) || attempt == 3 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 150 * time.Millisecond):
		}
	}
}

// detached is a context for recording what happened: it outlives the steps' deadline (a call that went
// through must be recorded), briefly.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// write changes the app while we hold it.
func (x *run) write(ctx context.Context, ch *change) error {
	wctx, cancel := detached(ctx)
	defer cancel()
	a, err := x.r.Store.write(wctx, x.a.CampaignID, x.a.AppID, ch, expression.Name("Owner").Equal(expression.Value(x.owner)))
	if table.Refused(err) {
		x.stop = true
		return errLost
	}
	if err != nil {
		return fmt.Errorf("record %s of campaign %s: %w", x.a.AppID, x.a.CampaignID, err)
	}
	x.a = a
	return nil
}

// arm records, before a commit, submit_audit or release call, that it may be sent from now on: whoever
// continues after a lost answer asks WeChat first. next arms a state as it enters it; a wait that knows
// nothing was sent disarms it, and the run after the wait arms it again here. Already armed, it stays as it
// is: the earliest time counts.
func (x *run) arm(ctx context.Context) error {
	if x.a.Tried != 0 {
		return nil
	}
	return x.write(ctx, (&change{}).Set("Tried", x.r.now().UnixMilli()))
}

// next moves the app on to state, still held, and arms it (see arm): its action follows in this run.
func (x *run) next(ctx context.Context, state string, ch *change) error {
	ch.Set("State", state).Set("Tried", x.r.now().UnixMilli()).Remove("Failures", "Note")
	if err := x.write(ctx, ch); err != nil {
		return err
	}
	x.uncertain = false
	x.log.Info("app moved on", "state", state)
	return nil
}

// finish lets the app go in state: auditing (until its event, or AuditCheck), approved or gray (until the
// operator releases), or a final state.
func (x *run) finish(ctx context.Context, state string, ch *change) error {
	ch.Set("State", state).Remove("Owner", "LeaseUntil", "Failures")
	if _, keep := ch.set["Tried"]; !keep {
		ch.Remove("Tried")
	}
	switch state {
	case StateAuditing:
		ch.due(x.a.AppID, time.Unix(x.a.SubmittedAt, 0).Add(x.r.timing().AuditCheck))
		if at, ok := ch.set["SubmittedAt"].(int64); ok {
			ch.due(x.a.AppID, time.Unix(at, 0).Add(x.r.timing().AuditCheck))
		}
	default:
		ch.due(x.a.AppID, time.Time{})
	}
	if err := x.write(ctx, ch); err != nil {
		return err
	}
	x.stop = true
	x.log.Info("app let go", "state", state)
	switch state {
	case StateReleased:
		metrics.Count(x.log, map[string]float64{metrics.CampaignAppsReleased: 1})
		x.notify(ctx, lifecycle.CampaignAppReleased, state, ch)
	case StateFailed, StateBlocked:
		metrics.Count(x.log, map[string]float64{metrics.CampaignAppsFailed: 1})
		x.notify(ctx, lifecycle.CampaignAppFailed, state, ch)
	}
	return nil
}

// notify tells the app's tenant that it is released or failed (once per app and state: the delivery id is
// the same for a repeat).
func (x *run) notify(ctx context.Context, typ, state string, ch *change) {
	d := map[string]any{"campaign_id": x.a.CampaignID, "state": state, "user_version": x.spec.UserVersion}
	for _, f := range []struct{ field, key string }{{"ErrCode", "errcode"}, {"ErrMsg", "errmsg"}, {"FailedStep", "failed_step"}} {
		if v, ok := ch.set[f.field]; ok {
			d[f.key] = v
		}
	}
	x.r.Notifier.Notify(ctx, lifecycle.Event{Type: typ, Tenant: x.a.Tenant, AppID: x.a.AppID, At: x.r.now(),
		Key: x.a.CampaignID + "/" + state + "/" + fmt.Sprint(x.a.Version), Details: d})
}

// let lets the app go in its state, to be run again after delay (a wait, or a retry), with a note saying
// what it waits for. tried says whether a call may have been sent without its answer (Tried is kept for the
// next run to check) or not (cleared).
func (x *run) let(ctx context.Context, reason string, delay time.Duration, note string, tried bool, more ...func(*change)) error {
	ch := (&change{}).Remove("Owner", "LeaseUntil").due(x.a.AppID, x.r.now().Add(delay+x.r.timing().Stall))
	if note != "" {
		ch.Set("Note", note)
	}
	if !tried {
		ch.Remove("Tried")
	}
	for _, m := range more {
		m(ch)
	}
	if err := x.write(ctx, ch); err != nil {
		return err
	}
	x.stop = true
	wctx, cancel := detached(ctx)
	defer cancel()
	if err := x.r.Queue.Send(wctx, appJob(x.a.CampaignID, x.a.AppID, reason), delay); err != nil {
		x.log.Warn("next run not enqueued; the sweeper will", "error", err.Error())
	}
	return nil
}

// fail ends the app failed (or blocked) at its current step, with WeChat's errcode and errmsg or the reason.
// tried keeps the note that a call may have been sent (a retry then asks WeChat first).
func (x *run) fail(ctx context.Context, state string, code int, msg string, tried bool) error {
	return x.failAt(ctx, x.a.State, state, code, msg, tried)
}

// failAt is fail with the step a retry resumes at.
func (x *run) failAt(ctx context.Context, step, state string, code int, msg string, tried bool) error {
	x.log.Warn("app failed", "state", state, "failed_step", step, "errcode", code, "errmsg", msg)
	ch := (&change{}).Set("FailedStep", step).Set("ErrCode", code).Set("ErrMsg", msg)
	if tried && x.a.Tried != 0 {
		ch.Set("Tried", x.a.Tried)
	}
	return x.finish(ctx, state, ch)
}

// problem handles a failed step. sent says WeChat may have acted on the call although it failed (a timeout
// after sending); then the next run asks WeChat before acting again.
func (x *run) problem(ctx context.Context, err error, sent bool) error {
	t := x.r.timing()
	if errors.Is(err, errNoTime) {
		return x.let(ctx, reasonAgain, 0, "", true) // nothing sent now; an earlier uncertainty stays
	}
	metrics.Count(x.log, map[string]float64{metrics.CampaignStepFailures: 1})
	unknown := sent && wxapi.Code(err) == 0 // a timeout or a lost connection after sending
	var na *credentials.NotAuthorizedError
	switch {
	case errors.As(err, &na) || wxapi.NeedsReauth(err) || wxapi.IsCode(err, 61007, 48001):
		return x.fail(ctx, StateBlocked, wxapi.Code(err), "the merchant must authorize the platform again (with permission set 18): "+err.Error(), unknown)
	case errors.Is(err, table.ErrNotFound):
		return x.fail(ctx, StateFailed, 0, "not an authorized account of this platform", false)
	case wxapi.IsCode(err, 45009):
		return x.let(ctx, reasonWait, t.QuotaWait, "daily API quota used up (45009)", false)
	case wxapi.IsCode(err, 45011):
		n := x.a.Failures + 1 // grows the backoff; a rate limit never fails the app
		return x.let(ctx, reasonWait, backoff(t.RetryBase, n), "rate limited (45011)", false, func(ch *change) { ch.Set("Failures", n) })
	case wxapi.IsCode(err, -1) || wxapi.IsTransient(err):
		n := x.a.Failures + 1
		if n >= MaxFailures {
			return x.fail(ctx, StateFailed, wxapi.Code(err), fmt.Sprintf("gave up after %d tries: %v", n, err), unknown)
		}
		x.log.Warn("step failed; trying again later", "state", x.a.State, "failures", n, "error", err.Error())
		return x.let(ctx, reasonAgain, backoff(t.RetryBase, n), "", unknown || x.uncertain, func(ch *change) { ch.Set("Failures", n) })
	case wxapi.Code(err) != 0:
		var we *wxapi.Error
		errors.As(err, &we)
		return x.fail(ctx, StateFailed, we.Code, we.Msg, false)
	}
	return err // the table or the queue: the job is delivered again
}

// backoff is base tripled n-1 times, at most SQS's longest delay.
func backoff(base time.Duration, n int) time.Duration { return jobs.Backoff(base, n) }

// setup sets the domains and testers, then moves on to the commit. Each call sets the same lists again on a
// retry; "nothing changed" answers count as done.
func (x *run) setup(ctx context.Context) error {
	s := x.spec
	unchanged := func(err error) bool { return wxapi.IsCode(err, 85017, 89019) }
	if !x.a.SetupDone {
		if d := s.Domains; d != nil {
			req := wxapi.DomainRequest{Action: actionOr(d.Action), DomainList: d.DomainList}
			err := x.call(ctx, func(tok string) error {
				var err error
				if d.Directly {
					_, err = x.r.WeChat.ModifyDomainDirectly(ctx, tok, req)
				} else {
					_, err = x.r.WeChat.ModifyDomain(ctx, tok, req)
				}
				return err
			})
			if err != nil && !unchanged(err) {
				return x.problem(ctx, err, false)
			}
		}
		if w := s.WebviewDomains; w != nil {
			err := x.call(ctx, func(tok string) error {
				var err error
				if w.Directly {
					_, err = x.r.WeChat.SetWebviewDomainDirectly(ctx, tok, actionOr(w.Action), w.Domains)
				} else {
					_, err = x.r.WeChat.SetWebviewDomain(ctx, tok, actionOr(w.Action), w.Domains)
				}
				return err
			})
			if err != nil && !unchanged(err) {
				return x.problem(ctx, err, false)
			}
		}
		for _, id := range s.Testers {
			err := x.call(ctx, func(tok string) error { _, err := x.r.WeChat.BindTester(ctx, tok, id); return err })
			if err != nil && !wxapi.IsCode(err, 85004) { // 85004: already a tester
				return x.problem(ctx, err, false)
			}
		}
	}
	return x.next(ctx, StateCommitting, (&change{}).Set("SetupDone", true))
}

func actionOr(a string) string {
	if a == "" {
		return wxapi.DomainSet
	}
	return a
}

// clockSlack is how far WeChat's clock may be behind ours when we compare its times with our tries.
const clockSlack = 2 * time.Minute

// after reports whether WeChat's time (unix seconds) is not before our try (unix ms), within clockSlack.
func after(wxSeconds, triedMs int64) bool {
	return wxSeconds*1000 >= triedMs-clockSlack.Milliseconds()
}

// claim holds the mini program for this campaign, so that two campaigns never commit over each other: it
// is taken over only from a campaign whose app is done or waits for its operator. tookOver reports that
// another campaign held it (its code may be the 体验版 now).
func (x *run) claim(ctx context.Context) (ok, tookOver bool, err error) {
	if x.claimed {
		return true, false, nil
	}
	for range 3 {
		holder, err := x.r.Audits.Claim(ctx, x.a.AppID, x.a.CampaignID, "")
		if err != nil {
			return false, false, err
		}
		if holder == "" {
			x.claimed = true
			return true, tookOver, nil
		}
		other, err := x.r.Store.App(ctx, holder, x.a.AppID)
		if err != nil && !errors.Is(err, table.ErrNotFound) {
			return false, false, err
		}
		if err == nil && !Final(other.State) && other.State != StateApproved && other.State != StateGray {
			x.log.Info("mini program held by another campaign", "holder", holder, "holder_state", other.State)
			return false, false, nil
		}
		if holder, err = x.r.Audits.Claim(ctx, x.a.AppID, x.a.CampaignID, holder); err != nil {
			return false, false, err
		}
		if holder == "" {
			x.claimed, tookOver = true, true
			return true, true, nil
		}
	}
	return false, false, nil
}

// commit commits the template as the app's 体验版, unless an earlier holder's commit went through.
func (x *run) commit(ctx context.Context) error {
	if x.uncertain {
		var vi wxapi.VersionInfo
		err := x.call(ctx, func(tok string) (err error) { vi, err = x.r.WeChat.VersionInfo(ctx, tok); return })
		if err != nil {
			return x.problem(ctx, err, false)
		}
		if vi.ExpInfo.ExpVersion == x.spec.UserVersion && after(vi.ExpInfo.ExpTime, x.a.Tried) {
			x.log.Info("an earlier commit went through; not committing again")
			return x.next(ctx, StateSubmitting, (&change{}).Set("CommittedAt", vi.ExpInfo.ExpTime))
		}
	}
	if ok, _, err := x.claim(ctx); err != nil {
		return err
	} else if !ok {
		return x.let(ctx, reasonWait, x.r.timing().BusyWait, "another campaign is releasing this mini program", x.uncertain)
	}
	ext, err := x.spec.extJSON(Target{AppID: x.a.AppID, Tenant: x.a.Tenant})
	if err != nil {
		return x.fail(ctx, StateFailed, 0, err.Error(), false)
	}
	req := wxapi.CommitRequest{TemplateID: x.spec.TemplateID, ExtJSON: ext, UserVersion: x.spec.UserVersion, UserDesc: x.spec.UserDesc}
	if err := x.arm(ctx); err != nil {
		return err
	}
	err = x.call(ctx, func(tok string) error { return x.r.WeChat.Commit(ctx, tok, req) })
	if err != nil {
		return x.problem(ctx, err, true)
	}
	return x.next(ctx, StateSubmitting, (&change{}).Set("CommittedAt", x.r.now().Unix()))
}

const scanNote = "privacy scan after the commit still running (61039)"

// submit sets the privacy guideline, takes one audit from the quota and submits the audit, unless an
// earlier holder's submission went through.
func (x *run) submit(ctx context.Context) error {
	t := x.r.timing()
	if x.uncertain {
		done, err := x.ours(ctx, x.a.Tried, false)
		if err != nil {
			return x.problem(ctx, err, false)
		}
		if done {
			return nil
		}
	}
	ok, tookOver, err := x.claim(ctx)
	switch {
	case err != nil:
		return err
	case !ok:
		return x.let(ctx, reasonWait, t.BusyWait, "another campaign is releasing this mini program", x.uncertain)
	case tookOver:
		// Another campaign committed since: commit ours again.
		return x.next(ctx, StateCommitting, &change{})
	}
	if p := x.spec.Privacy; p != nil && !x.a.PrivacySet {
		err := x.call(ctx, func(tok string) error { return x.r.WeChat.SetPrivacySetting(ctx, tok, x.spec.privacySetting()) })
		if errors.Is(err, wxapi.ErrPrivacyScanPending) {
			return x.let(ctx, reasonWait, t.ScanWait, scanNote, x.uncertain)
		}
		if err != nil {
			return x.problem(ctx, err, false)
		}
		if err := x.write(ctx, (&change{}).Set("PrivacySet", true)); err != nil {
			return err
		}
	}
	req := x.spec.submitRequest()
	if x.spec.Audit.DeriveItemList {
		items, err := x.deriveItems(ctx)
		if err != nil {
			return x.problem(ctx, err, false)
		}
		req.ItemList = items
	}
	ok, err = x.r.takeQuota(ctx, x)
	if err != nil {
		return x.problem(ctx, err, false)
	}
	if !ok {
		return x.let(ctx, reasonWait, t.QuotaWait, quotaNote, x.uncertain)
	}
	if err := x.arm(ctx); err != nil {
		x.r.giveBackQuota(ctx)
		return err
	}
	var id int64
	err = x.call(ctx, func(tok string) (err error) { id, err = x.r.WeChat.SubmitAudit(ctx, tok, req); return })
	if err != nil && wxapi.Code(err) != 0 || errors.Is(err, errNoTime) {
		x.r.giveBackQuota(ctx) // WeChat answered, or nothing was sent: no audit was used
	}
	switch {
	case err == nil:
		return x.submitted(ctx, id, x.r.now().Unix())
	case errors.Is(err, wxapi.ErrPrivacyScanPending):
		return x.let(ctx, reasonWait, t.ScanWait, scanNote, false)
	case errors.Is(err, wxapi.ErrAuditQuota):
		if qerr := x.r.quotaGone(ctx); qerr != nil {
			x.log.Warn("audit quota not recorded as used up", "error", qerr.Error())
		}
		return x.let(ctx, reasonWait, t.QuotaWait, quotaNote, false)
	case errors.Is(err, wxapi.ErrAuditPending):
		// Ours, after a lost answer? Then it is submitted; otherwise the campaign's policy.
		since := x.a.CommittedAt * 1000
		if since == 0 {
			since = x.a.Tried
		}
		if done, cerr := x.ours(ctx, since, true); cerr != nil || done {
			if cerr != nil {
				return x.problem(ctx, cerr, false)
			}
			return nil
		}
		return x.pending(ctx)
	}
	return x.problem(ctx, err, true)
}

// ours asks WeChat whether the latest audit is of our code, submitted at or after since (unix ms): by an
// earlier try whose answer was lost, or (running only) by anyone since our commit. Then the app is recorded
// as submitted and done is true.
func (x *run) ours(ctx context.Context, since int64, running bool) (done bool, err error) {
	var st wxapi.AuditStatus
	err = x.call(ctx, func(tok string) (err error) { st, err = x.r.WeChat.GetLatestAuditStatus(ctx, tok); return })
	if errors.Is(err, wxapi.ErrNoAudit) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	isRunning := st.Status == wxapi.AuditInReview || st.Status == wxapi.AuditDelayed
	if st.UserVersion != x.spec.UserVersion || since == 0 || !after(st.SubmitAuditTime, since) ||
		st.Status == wxapi.AuditWithdrawn || running && !isRunning {
		return false, nil
	}
	x.log.Info("the latest audit is of our code; not submitting again", "auditid", st.AuditID)
	return true, x.submitted(ctx, st.AuditID, st.SubmitAuditTime)
}

const quotaNote = "audit quota used up (85085): submissions paused"

// pending applies the campaign's policy for an audit already running (85009).
func (x *run) pending(ctx context.Context) error {
	switch x.spec.onPending() {
	case OnPendingFail:
		return x.fail(ctx, StateFailed, 85009, "another audit of this mini program is running (on_pending: fail)", false)
	case OnPendingUndo:
		if !x.undone {
			err := x.call(ctx, func(tok string) error { return x.r.WeChat.UndoCodeAudit(ctx, tok) })
			if err == nil || wxapi.IsCode(err, 87012) { // 87012: it was rejected meanwhile; nothing to withdraw
				x.undone = true
				x.log.Info("withdrew the running audit (on_pending: undo)")
				return x.next(ctx, StateSubmitting, &change{})
			}
			if !wxapi.IsCode(err, 87013) { // 87013: no undo left today or this month; wait instead
				return x.problem(ctx, err, false)
			}
		}
	}
	return x.let(ctx, reasonWait, x.r.timing().BusyWait, "another audit of this mini program is running (85009)", false)
}

// submitted records the audit and lets the app wait for its verdict. A job sent for an audit event acts on
// the verdict it read, in a job of its own.
func (x *run) submitted(ctx context.Context, auditID, at int64) error {
	if err := x.finish(ctx, StateAuditing, (&change{}).Set("AuditID", auditID).Set("SubmittedAt", at).Remove("Note")); err != nil {
		return err
	}
	x.log.Info("submitted for audit", "auditid", auditID)
	metrics.Count(x.log, map[string]float64{metrics.CampaignAppsSubmitted: 1})
	if x.reason == reasonEvent {
		wctx, cancel := detached(ctx)
		defer cancel()
		if err := x.r.Queue.Send(wctx, appJob(x.a.CampaignID, x.a.AppID, reasonEvent), 0); err != nil {
			x.log.Warn("audit event not acted on; the sweeper will", "error", err.Error())
		}
	}
	return nil
}

// deriveItems builds item_list from the app's first category and first page, as an operator would by hand.
func (x *run) deriveItems(ctx context.Context) ([]wxapi.AuditItem, error) {
	var cats []wxapi.AuditCategory
	var pages []string
	err := x.call(ctx, func(tok string) (err error) { cats, err = x.r.WeChat.GetCategory(ctx, tok); return })
	if err == nil {
		err = x.call(ctx, func(tok string) (err error) { pages, err = x.r.WeChat.GetPage(ctx, tok); return })
	}
	if err != nil {
		return nil, err
	}
	if len(cats) == 0 || len(pages) == 0 {
		return nil, &wxapi.Error{API: "submit_audit", Code: 85008, Msg: "no category or page to derive item_list from"}
	}
	return []wxapi.AuditItem{{Address: pages[0], AuditCategory: cats[0]}}, nil
}

// audit acts on the audit's verdict. A passed event is taken at its word (a release WeChat refuses is checked
// again); a rejection is confirmed with WeChat (privacy-guideline reviews use the same events), as is an
// audit whose event did not come.
func (x *run) audit(ctx context.Context) error {
	if l := x.latest; l != nil && l.Status == audits.StatusPassed && l.EventAt >= x.a.SubmittedAt {
		return x.passed(ctx)
	}
	var st wxapi.AuditStatus
	err := x.call(ctx, func(tok string) (err error) { st, err = x.r.WeChat.GetAuditStatus(ctx, tok, x.a.AuditID); return })
	if err != nil {
		return x.problem(ctx, err, false)
	}
	switch st.Status {
	case wxapi.AuditPassed:
		return x.passed(ctx)
	case wxapi.AuditRejected:
		return x.fail(ctx, StateFailed, 0, "audit rejected: "+st.Reason, false)
	case wxapi.AuditWithdrawn:
		return x.fail(ctx, StateFailed, 0, "audit withdrawn", false)
	}
	note := "audit running"
	if st.Status == wxapi.AuditDelayed {
		note = "audit delayed: " + st.Reason
	}
	return x.finish(ctx, StateAuditing, (&change{}).Set("Note", note))
}

// passed releases (auto, gray) or waits for the operator (manual).
func (x *run) passed(ctx context.Context) error {
	if x.spec.mode() == ModeManual {
		return x.finish(ctx, StateApproved, (&change{}).Remove("Note"))
	}
	return x.next(ctx, StateReleasing, &change{})
}

// release releases the audited version (or gray-releases it), unless an earlier holder's release went
// through. FullRelease is set when the operator asked for the full release of an approved or gray app.
func (x *run) release(ctx context.Context) error {
	gray := x.spec.mode() == ModeGray && !x.a.FullRelease
	if x.uncertain {
		done, err := x.released(ctx, gray)
		if err != nil {
			return x.problem(ctx, err, false)
		}
		if done {
			x.log.Info("an earlier release went through; not releasing again")
			return x.releasedAs(ctx, gray)
		}
	}
	if err := x.arm(ctx); err != nil {
		return err
	}
	err := x.call(ctx, func(tok string) error {
		if gray {
			r := x.spec.Release
			return x.r.WeChat.GrayRelease(ctx, tok, wxapi.GrayRelease{Percentage: r.GrayPercentage,
				SupportDebugerFirst: r.SupportDebugerFirst, SupportExperiencerFirst: r.SupportExperiencerFirst})
		}
		return x.r.WeChat.Release(ctx, tok)
	})
	switch {
	case err == nil:
		return x.releasedAs(ctx, gray)
	case gray && wxapi.IsCode(err, 85079):
		// No live version: a first release has no users to spare, so it is released in full.
		x.log.Info("no live version to gray-release from; releasing in full")
		return x.next(ctx, StateReleasing, (&change{}).Set("FullRelease", true))
	case errors.Is(err, wxapi.ErrNoAuditedVersion) || errors.Is(err, wxapi.ErrReleaseNotAllowed) || wxapi.IsCode(err, 85080):
		// Released by someone else, or the audit is not what the event said: ask.
		return x.recheck(ctx, err, gray)
	}
	return x.problem(ctx, err, true)
}

func (x *run) releasedAs(ctx context.Context, gray bool) error {
	if gray {
		return x.finish(ctx, StateGray, (&change{}).Remove("Note"))
	}
	return x.finish(ctx, StateReleased, (&change{}).Set("ReleasedAt", x.r.now().Unix()).Remove("Note"))
}

// released asks WeChat whether our release (or gray release) went through after we tried it.
func (x *run) released(ctx context.Context, gray bool) (bool, error) {
	if gray {
		var p wxapi.GrayReleasePlan
		err := x.call(ctx, func(tok string) (err error) { p, err = x.r.WeChat.GrayReleasePlan(ctx, tok); return })
		return err == nil && p.Status == 1 && after(p.CreateTimestamp, x.a.Tried), err
	}
	var vi wxapi.VersionInfo
	err := x.call(ctx, func(tok string) (err error) { vi, err = x.r.WeChat.VersionInfo(ctx, tok); return })
	return err == nil && vi.ReleaseInfo.ReleaseVersion == x.spec.UserVersion && after(vi.ReleaseInfo.ReleaseTime, x.a.Tried), err
}

// recheck follows a release refused with 85019/85020/85080: already live, still in audit, or a real failure.
func (x *run) recheck(ctx context.Context, cause error, gray bool) error {
	if done, err := x.released(ctx, gray); err != nil {
		return x.problem(ctx, err, false)
	} else if done {
		return x.releasedAs(ctx, gray)
	}
	var st wxapi.AuditStatus
	err := x.call(ctx, func(tok string) (err error) { st, err = x.r.WeChat.GetAuditStatus(ctx, tok, x.a.AuditID); return })
	if err != nil {
		return x.problem(ctx, err, false)
	}
	switch st.Status {
	case wxapi.AuditInReview, wxapi.AuditDelayed:
		return x.finish(ctx, StateAuditing, (&change{}).Set("Note", "the audit event came early; audit still running"))
	case wxapi.AuditRejected:
		return x.failAt(ctx, StateAuditing, StateFailed, 0, "audit rejected: "+st.Reason, false)
	}
	var we *wxapi.Error
	errors.As(cause, &we)
	return x.fail(ctx, StateFailed, we.Code, we.Msg, false)
}

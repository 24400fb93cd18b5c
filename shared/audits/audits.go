// Package audits records what WeChat says about a mini program's code audits: weapp_audit_success,
// weapp_audit_fail (with Reason and ScreenShot), weapp_audit_delay, and the privacy-interface application
// result (wxa_privacy_apply), pushed to the message URL. The events carry no auditid, so they are recorded on
// the account's latest audit, with their times and reasons, for the release pipeline to act on; each event is
// also kept in the audit's history.
package audits

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
)

// Audit event names.
const (
	EventSuccess      = "weapp_audit_success"
	EventFail         = "weapp_audit_fail"
	EventDelay        = "weapp_audit_delay"
	EventPrivacyApply = "wxa_privacy_apply"
)

// IsAuditEvent reports whether event is one of the four recorded here.
func IsAuditEvent(event string) bool {
	switch event {
	case EventSuccess, EventFail, EventDelay, EventPrivacyApply:
		return true
	}
	return false
}

// Statuses of the latest audit, from its latest event.
const (
	StatusPassed  = "passed"
	StatusFailed  = "failed"
	StatusDelayed = "delayed"
)

// Event is one audit event as pushed.
type Event struct {
	Event      string
	CreateTime int64             // WeChat's, seconds
	At         int64             // SuccTime / FailTime / DelayTime, seconds (CreateTime if absent)
	Reason     string            // fail and delay
	ScreenShot string            // fail: media ids separated by |
	Fields     map[string]string // wxa_privacy_apply: its fields as pushed (their names are not documented reliably)
}

// Latest is the account's latest audit, as far as WeChat's events tell.
type Latest struct {
	AppID      string            `dynamodbav:"AppID"`
	Status     string            `dynamodbav:"Status,omitempty"` // passed, failed, delayed
	LastEvent  string            `dynamodbav:"LastEvent,omitempty"`
	EventAt    int64             `dynamodbav:"EventAt,omitempty"` // CreateTime of the latest audit event, seconds
	SuccTime   int64             `dynamodbav:"SuccTime,omitempty"`
	FailTime   int64             `dynamodbav:"FailTime,omitempty"`
	DelayTime  int64             `dynamodbav:"DelayTime,omitempty"`
	Reason     string            `dynamodbav:"Reason,omitempty"`
	ScreenShot string            `dynamodbav:"ScreenShot,omitempty"`
	Privacy    map[string]string `dynamodbav:"Privacy,omitempty"` // the latest wxa_privacy_apply
	PrivacyAt  int64             `dynamodbav:"PrivacyAt,omitempty"`
	// Campaign is the release campaign that submitted the latest audit: its event continues that campaign.
	Campaign  string `dynamodbav:"Campaign,omitempty"`
	UpdatedAt int64  `dynamodbav:"UpdatedAt"` // unix ms
}

// LatestKey is the item of an account's latest audit (next to the account's own item).
func LatestKey(appid string) table.Key {
	return table.Key{PK: "AUTHORIZER#" + appid, SK: "AUDIT#LATEST"}
}

// historyTTL keeps audit events a year.
const historyTTL = 365 * 24 * time.Hour

// Store records audit events.
type Store struct {
	t   *table.Table
	Now func() time.Time
}

// New returns a Store on t.
func New(t *table.Table) *Store { return &Store{t: t, Now: time.Now} }

// Record records ev on appid's latest audit and returns the latest audit as it now is. An event older than
// the one recorded (pushes arrive out of order and are retried) goes to the history only: the latest audit
// never moves backwards, and recorded is false.
func (s *Store) Record(ctx context.Context, appid string, ev Event) (l Latest, recorded bool, err error) {
	now := s.Now()
	if ev.At == 0 {
		ev.At = ev.CreateTime
	}
	if err := s.history(ctx, appid, ev, now); err != nil {
		return Latest{}, false, err
	}
	upd := expression.Set(expression.Name("AppID"), expression.Value(appid)).
		Set(expression.Name("UpdatedAt"), expression.Value(now.UnixMilli()))
	var cond expression.ConditionBuilder
	if ev.Event == EventPrivacyApply {
		upd = upd.Set(expression.Name("Privacy"), expression.Value(ev.Fields)).Set(expression.Name("PrivacyAt"), expression.Value(ev.CreateTime))
		cond = expression.AttributeNotExists(expression.Name("PrivacyAt")).Or(expression.Name("PrivacyAt").LessThanEqual(expression.Value(ev.CreateTime)))
	} else {
		upd = upd.Set(expression.Name("LastEvent"), expression.Value(ev.Event)).Set(expression.Name("EventAt"), expression.Value(ev.CreateTime))
		switch ev.Event {
		case EventSuccess:
			upd = upd.Set(expression.Name("Status"), expression.Value(StatusPassed)).Set(expression.Name("SuccTime"), expression.Value(ev.At)).
				Remove(expression.Name("Reason")).Remove(expression.Name("ScreenShot"))
		case EventFail:
			upd = upd.Set(expression.Name("Status"), expression.Value(StatusFailed)).Set(expression.Name("FailTime"), expression.Value(ev.At)).
				Set(expression.Name("Reason"), expression.Value(ev.Reason)).Set(expression.Name("ScreenShot"), expression.Value(ev.ScreenShot))
		case EventDelay:
			upd = upd.Set(expression.Name("Status"), expression.Value(StatusDelayed)).Set(expression.Name("DelayTime"), expression.Value(ev.At)).
				Set(expression.Name("Reason"), expression.Value(ev.Reason))
		default:
			return Latest{}, false, fmt.Errorf("record audit event: %q is not an audit event", ev.Event)
		}
		cond = expression.AttributeNotExists(expression.Name("EventAt")).Or(expression.Name("EventAt").LessThanEqual(expression.Value(ev.CreateTime)))
	}
	out, err := s.t.Update(ctx, LatestKey(appid), upd, &cond, types.ReturnValueAllNew)
	if table.Refused(err) {
		return Latest{}, false, nil // an older event: in the history, not on the latest audit
	}
	if err != nil {
		return Latest{}, false, fmt.Errorf("record %s of %s: %w", ev.Event, appid, err)
	}
	if err := attributevalue.UnmarshalMap(out, &l); err != nil {
		return Latest{}, false, fmt.Errorf("decode latest audit of %s: %w", appid, err)
	}
	return l, true, nil
}

// Claim makes campaign the one that releases appid (its audit events are taken to it): if no campaign holds
// it or campaign does, or, with from set, if from holds it (a takeover). Otherwise nothing changes and
// holder names the campaign that holds it.
func (s *Store) Claim(ctx context.Context, appid, campaign, from string) (holder string, err error) {
	upd := expression.Set(expression.Name("AppID"), expression.Value(appid)).
		Set(expression.Name("Campaign"), expression.Value(campaign)).
		Set(expression.Name("UpdatedAt"), expression.Value(s.Now().UnixMilli()))
	cond := expression.AttributeNotExists(expression.Name("Campaign")).Or(expression.Name("Campaign").Equal(expression.Value(campaign)))
	if from != "" {
		cond = expression.Name("Campaign").Equal(expression.Value(from))
	}
	_, err = s.t.Update(ctx, LatestKey(appid), upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		var l Latest
		if old := table.RefusedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &l); err != nil {
				return "", fmt.Errorf("decode latest audit of %s: %w", appid, err)
			}
		}
		if l.Campaign == campaign {
			return "", nil
		}
		return l.Campaign, nil
	}
	if err != nil {
		return "", fmt.Errorf("claim %s for campaign %s: %w", appid, campaign, err)
	}
	return "", nil
}

func (s *Store) history(ctx context.Context, appid string, ev Event, now time.Time) error {
	// Keyed by WeChat's time and the event: a retried push writes the same item again.
	item := map[string]any{
		"PK": LatestKey(appid).PK, "SK": "AUDIT#EVENT#" + strconv.FormatInt(ev.CreateTime, 10) + "#" + ev.Event,
		"Event": ev.Event, "CreateTime": ev.CreateTime, "At": ev.At, "PurgeAt": now.Add(historyTTL).Unix(),
	}
	if ev.Reason != "" {
		item["Reason"] = ev.Reason
	}
	if ev.ScreenShot != "" {
		item["ScreenShot"] = ev.ScreenShot
	}
	if len(ev.Fields) > 0 {
		item["Fields"] = ev.Fields
	}
	if err := s.t.Put(ctx, item); err != nil {
		return fmt.Errorf("record %s of %s in the audit history: %w", ev.Event, appid, err)
	}
	return nil
}

// Latest reads appid's latest audit, or table.ErrNotFound.
func (s *Store) Latest(ctx context.Context, appid string) (Latest, error) {
	var l Latest
	if err := s.t.Get(ctx, LatestKey(appid), &l); err != nil {
		return Latest{}, fmt.Errorf("read latest audit of %s: %w", appid, err)
	}
	return l, nil
}

package campaigns

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/wxapi"
)

// The provider's monthly audit quota is shared by all its mini programs. Asking queryquota before every
// submission would double the calls of a campaign; instead the answer is kept in one item and each
// submission takes one from it, and queryquota is asked again only when the estimate is older than QuotaTTL
// or used up. WeChat's 85085 sets it to zero: submissions pause until a fresh answer shows audits left.

var quotaKey = table.Key{PK: "QUOTA#AUDIT", SK: "QUOTA"}

type quota struct {
	Rest      int   `dynamodbav:"Rest"`
	Limit     int   `dynamodbav:"Limit"`
	CheckedAt int64 `dynamodbav:"CheckedAt"` // unix ms of the queryquota answer (or the 85085)
}

// takeQuota takes one audit for x's submission. false: the quota is used up (as of a recent answer).
func (r *Runner) takeQuota(ctx context.Context, x *run) (bool, error) {
	for range 3 {
		fresh := r.now().Add(-r.timing().QuotaTTL).UnixMilli()
		cond := expression.Name("Rest").GreaterThan(expression.Value(0)).
			And(expression.Name("CheckedAt").GreaterThan(expression.Value(fresh)))
		_, err := r.Store.T.Update(ctx, quotaKey, expression.Add(expression.Name("Rest"), expression.Value(-1)), &cond, types.ReturnValueNone)
		if err == nil {
			return true, nil
		}
		if !table.Refused(err) {
			return false, fmt.Errorf("take an audit from the quota: %w", err)
		}
		var q quota
		old := table.RefusedItem(err)
		if old != nil {
			if err := attributevalue.UnmarshalMap(old, &q); err != nil {
				return false, fmt.Errorf("decode audit quota: %w", err)
			}
			if q.CheckedAt > fresh {
				return false, nil // used up, as WeChat said recently
			}
		}
		// Stale or never asked: ask WeChat, and store the answer minus ours unless someone stored a newer one.
		var got wxapi.Quota
		if err := x.call(ctx, func(tok string) (err error) { got, err = r.WeChat.QueryQuota(ctx, tok); return }); err != nil {
			return false, err
		}
		x.log.Info("audit quota asked", "rest", got.Rest, "limit", got.Limit)
		rest := got.Rest
		if rest > 0 {
			rest--
		}
		put := expression.AttributeNotExists(expression.Name("PK"))
		if old != nil {
			put = expression.Name("CheckedAt").Equal(expression.Value(q.CheckedAt))
		}
		err = r.Store.T.PutAt(ctx, quotaKey, quota{Rest: rest, Limit: got.Limit, CheckedAt: r.now().UnixMilli()}, &put)
		if table.Refused(err) {
			continue // another job stored a fresher answer: take from that
		}
		if err != nil {
			return false, fmt.Errorf("record audit quota: %w", err)
		}
		return got.Rest > 0, nil
	}
	return false, fmt.Errorf("take an audit from the quota: too much contention")
}

// giveBackQuota returns an audit WeChat did not use (the submission was refused).
func (r *Runner) giveBackQuota(ctx context.Context) {
	cond := expression.AttributeExists(expression.Name("PK"))
	_, _ = r.Store.T.Update(ctx, quotaKey, expression.Add(expression.Name("Rest"), expression.Value(1)), &cond, types.ReturnValueNone)
}

// quotaGone records WeChat's 85085: none left, as of now.
func (r *Runner) quotaGone(ctx context.Context) error {
	upd := expression.Set(expression.Name("Rest"), expression.Value(0)).
		Set(expression.Name("CheckedAt"), expression.Value(r.now().UnixMilli()))
	_, err := r.Store.T.Update(ctx, quotaKey, upd, nil, types.ReturnValueNone)
	return err
}

// Quota is the audit quota as the platform last saw it.
type Quota struct {
	Rest, Limit int
	CheckedAt   int64 // unix ms; 0: never asked
}

// AuditQuota reads the stored estimate (for status displays).
func (s *Store) AuditQuota(ctx context.Context) (Quota, error) {
	var q quota
	err := s.T.Get(ctx, quotaKey, &q)
	if err != nil && err != table.ErrNotFound {
		return Quota{}, fmt.Errorf("read audit quota: %w", err)
	}
	return Quota{Rest: q.Rest, Limit: q.Limit, CheckedAt: q.CheckedAt}, nil
}

package authorization

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Claim is the item that coordinates every delivery of one authorization code: the browser redirect, WeChat's
// push and the push's retries. Whoever holds the claim exchanges the code; the others wait for its outcome.
// The claim also keeps what the exchange has learned, so that a holder cut off by its deadline loses nothing:
// api_query_auth's answer is written here before any further call, and WeChat's "this code is spent" is noted
// for the delivery that can still recover from it.
type Claim struct {
	Code  string `dynamodbav:"Code"`
	Owner string `dynamodbav:"Owner"` // unique per claim request
	Until int64  `dynamodbav:"Until"` // unix ms: the holder's deadline; after it the claim can be taken over
	// PreAuthCode is the pre_auth_code the authorization used, and GrantedAt when (unix seconds), from WeChat's
	// push (never from a browser).
	PreAuthCode string `dynamodbav:"PreAuthCode,omitempty"`
	GrantedAt   int64  `dynamodbav:"GrantedAt,omitempty"`
	// Exchange is api_query_auth's answer, persisted the moment it arrived.
	Exchange *Exchange `dynamodbav:"Exchange,omitempty"`
	// Spent: WeChat answered that the code is used or expired to a delivery that did not know the account
	// (the redirect). Only a delivery that names the account (the push) may then finish the claim.
	Spent      bool   `dynamodbav:"Spent,omitempty"`
	Done       bool   `dynamodbav:"Done"`
	AppID      string `dynamodbav:"AppID,omitempty"`      // done: the account stored
	FailReason string `dynamodbav:"FailReason,omitempty"` // done: why the code will never be exchanged
}

// Exchange is what api_query_auth returned for a code.
type Exchange struct {
	AppID          string `dynamodbav:"AppID"`
	AccessToken    string `dynamodbav:"AccessToken,omitempty"`
	ExpiresAt      int64  `dynamodbav:"ExpiresAt,omitempty"` // unix ms
	RefreshToken   string `dynamodbav:"RefreshToken"`
	PermissionSets []int  `dynamodbav:"PermissionSets,omitempty"`
}

func exchangeOf(info wxapi.AuthorizationInfo, now time.Time) Exchange {
	return Exchange{
		AppID: info.Appid(), AccessToken: info.AccessToken, RefreshToken: info.RefreshToken,
		ExpiresAt:      now.Add(time.Duration(info.ExpiresIn) * time.Second).UnixMilli(),
		PermissionSets: info.PermissionSets(),
	}
}

func claimKey(code string) table.Key { return table.Key{PK: "AUTHCODE#" + code, SK: "AUTHCODE"} }

// claimTTL keeps a claim (and the verdict on its code) well past the code's own 10-minute life.
const claimTTL = 24 * time.Hour

// claims reads and writes Claim items.
type claims struct {
	t   *table.Table
	now func() time.Time
}

// take claims code for owner until the given time, if it is free: never claimed, or claimed by a holder
// whose deadline passed without finishing. A spent claim is only handed to a delivery that can recover
// (canRecover: it knows the account). It returns the claim as it now is (granted) or as it was (refused).
// The push's word (preAuthCode, grantedAt) is recorded either way.
func (c claims) take(ctx context.Context, code, owner string, until time.Time, canRecover bool, preAuthCode string, grantedAt time.Time) (Claim, bool, error) {
	now := c.now()
	lapsed := expression.Name("Done").Equal(expression.Value(false)).
		And(expression.Name("Until").LessThan(expression.Value(now.UnixMilli())))
	if !canRecover {
		lapsed = lapsed.And(expression.AttributeNotExists(expression.Name("Spent")))
	}
	cond := expression.AttributeNotExists(expression.Name("PK")).Or(lapsed)
	upd := expression.Set(expression.Name("Code"), expression.Value(code)).
		Set(expression.Name("Owner"), expression.Value(owner)).
		Set(expression.Name("Until"), expression.Value(until.UnixMilli())).
		Set(expression.Name("Done"), expression.Value(false)).
		Set(expression.Name("PurgeAt"), expression.Value(now.Add(claimTTL).Unix()))
	if preAuthCode != "" {
		upd = upd.Set(expression.Name("PreAuthCode"), expression.Value(preAuthCode)).
			Set(expression.Name("GrantedAt"), expression.Value(grantedAt.Unix()))
	}
	out, err := c.t.Update(ctx, claimKey(code), upd, &cond, types.ReturnValueAllNew)
	if table.Refused(err) {
		var cl Claim
		if old := table.RefusedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &cl); err != nil {
				return Claim{}, false, fmt.Errorf("decode code claim: %w", err)
			}
		}
		// Refused, and the holder is this very request: our write was applied, its answer lost, and the SDK's
		// retry found our own claim. That is a grant, not a competitor to wait for.
		if cl.Owner == owner && !cl.Done {
			return cl, true, nil
		}
		if preAuthCode != "" && cl.PreAuthCode == "" && !cl.Done {
			if err := c.notePush(ctx, code, preAuthCode, grantedAt); err != nil {
				return Claim{}, false, err
			}
			cl.PreAuthCode, cl.GrantedAt = preAuthCode, grantedAt.Unix()
		}
		return cl, false, nil
	}
	if err != nil {
		return Claim{}, false, fmt.Errorf("claim auth code: %w", err)
	}
	var cl Claim
	if err := attributevalue.UnmarshalMap(out, &cl); err != nil {
		return Claim{}, false, fmt.Errorf("decode code claim: %w", err)
	}
	return cl, true, nil
}

// notePush records, on a claim someone else holds, which pre_auth_code WeChat's push says the authorization
// used and when, so the holder binds the tenant when it finishes even if the push stops waiting.
func (c claims) notePush(ctx context.Context, code, preAuthCode string, grantedAt time.Time) error {
	cond := expression.AttributeExists(expression.Name("PK"))
	upd := expression.Set(expression.Name("PreAuthCode"), expression.Value(preAuthCode)).
		Set(expression.Name("GrantedAt"), expression.Value(grantedAt.Unix()))
	if _, err := c.t.Update(ctx, claimKey(code), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
		return fmt.Errorf("note pre_auth_code on auth code claim: %w", err)
	}
	return nil
}

// recordExchange persists api_query_auth's answer on the claim owner holds.
func (c claims) recordExchange(ctx context.Context, code, owner string, x Exchange) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner)).And(expression.Name("Done").Equal(expression.Value(false)))
	upd := expression.Set(expression.Name("Exchange"), expression.Value(x))
	if _, err := c.t.Update(ctx, claimKey(code), upd, &cond, types.ReturnValueNone); err != nil {
		return fmt.Errorf("record exchange on auth code claim: %w", err)
	}
	return nil
}

// markSpent notes that WeChat called the code spent, and gives the claim up for a delivery that can recover.
func (c claims) markSpent(ctx context.Context, code, owner string) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner)).And(expression.Name("Done").Equal(expression.Value(false)))
	upd := expression.Set(expression.Name("Spent"), expression.Value(true)).Set(expression.Name("Until"), expression.Value(0))
	if _, err := c.t.Update(ctx, claimKey(code), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
		return fmt.Errorf("mark auth code spent: %w", err)
	}
	return nil
}

// finish records the outcome of the claim owner holds: the account stored, or (failReason) why the code will
// never be exchanged. The persisted exchange is dropped: the account item holds the tokens now. It returns
// the finished claim, or a zero Claim if owner no longer held it.
func (c claims) finish(ctx context.Context, code, owner, appID, failReason string) (Claim, error) {
	cond := expression.Name("Owner").Equal(expression.Value(owner))
	upd := expression.Set(expression.Name("Done"), expression.Value(true)).Remove(expression.Name("Exchange"))
	if appID != "" {
		upd = upd.Set(expression.Name("AppID"), expression.Value(appID))
	}
	if failReason != "" {
		upd = upd.Set(expression.Name("FailReason"), expression.Value(failReason))
	}
	out, err := c.t.Update(ctx, claimKey(code), upd, &cond, types.ReturnValueAllNew)
	if table.Refused(err) {
		return Claim{}, nil
	}
	if err != nil {
		return Claim{}, fmt.Errorf("finish auth code claim: %w", err)
	}
	var cl Claim
	if err := attributevalue.UnmarshalMap(out, &cl); err != nil {
		return Claim{}, fmt.Errorf("decode code claim: %w", err)
	}
	return cl, nil
}

// release gives a claim up after a failure that may pass (WeChat busy, a deadline), so another delivery or
// WeChat's retry can try again.
func (c claims) release(ctx context.Context, code, owner string) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner)).And(expression.Name("Done").Equal(expression.Value(false)))
	upd := expression.Set(expression.Name("Until"), expression.Value(0))
	if _, err := c.t.Update(ctx, claimKey(code), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
		return fmt.Errorf("release auth code claim: %w", err)
	}
	return nil
}

// get reads a code's claim, or table.ErrNotFound.
func (c claims) get(ctx context.Context, code string) (Claim, error) {
	var cl Claim
	if err := c.t.Get(ctx, claimKey(code), &cl); err != nil {
		return Claim{}, fmt.Errorf("read auth code claim: %w", err)
	}
	return cl, nil
}

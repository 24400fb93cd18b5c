package authorization

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
)

// The pre_auth_code records. A pre_auth_code is issued for one tenant's authorization link, and WeChat's
// `authorized` push names the pre_auth_code the authorization used: that pair is what binds an account to
// a tenant. Nothing a browser sends can do it.
//
//	PREAUTH#<code> / PREAUTH                 issued: the tenant, its expiry, when an authorization spent it
//	COMPONENT#<appid> / PREAUTH#<tenant>     the tenant's current code, reused across page renders
//	COMPONENT#<appid> / PREAUTHRATE#<minute> how many codes all tenants got from WeChat that minute

// Issued is the record of one pre_auth_code this platform obtained.
type Issued struct {
	Code      string `dynamodbav:"Code"`
	Tenant    string `dynamodbav:"Tenant"`
	ExpiresAt int64  `dynamodbav:"ExpiresAt"`        // unix ms
	UsedAt    int64  `dynamodbav:"UsedAt,omitempty"` // unix ms: an authorization spent it
}

type cachedPreAuth struct {
	Code      string `dynamodbav:"Code"`
	ExpiresAt int64  `dynamodbav:"ExpiresAt"` // unix ms
}

func issuedKey(code string) table.Key { return table.Key{PK: "PREAUTH#" + code, SK: "PREAUTH"} }

func cachedPreAuthKey(componentAppID, tenant string) table.Key {
	return table.Key{PK: "COMPONENT#" + componentAppID, SK: "PREAUTH#" + tenant}
}

func preAuthRateKey(componentAppID string, minute time.Time) table.Key {
	return table.Key{PK: "COMPONENT#" + componentAppID, SK: "PREAUTHRATE#" + strconv.FormatInt(minute.Unix(), 10)}
}

// issuedTTL keeps the tenant of a code long after the code expires: WeChat retries a push for a while.
const issuedTTL = 7 * 24 * time.Hour

// ErrBusy means the platform-wide bound on new pre_auth_codes was reached this minute.
var ErrBusy = errors.New("too many authorization links opened in the last minute; try again shortly")

type preAuths struct {
	t   *table.Table
	now func() time.Time
}

// issue records that code was issued for tenant. It must be durable before the code is handed out: it is
// the only way the push can bind the authorization to the tenant.
func (p preAuths) issue(ctx context.Context, code, tenant string, expires time.Time) error {
	item := map[string]any{
		"PK": issuedKey(code).PK, "SK": issuedKey(code).SK, "Code": code, "Tenant": tenant,
		"ExpiresAt": expires.UnixMilli(), "PurgeAt": expires.Add(issuedTTL).Unix(),
	}
	if err := p.t.Put(ctx, item); err != nil {
		return fmt.Errorf("record pre_auth_code for tenant %s: %w", tenant, err)
	}
	return nil
}

// issued reads which tenant code was issued to, or table.ErrNotFound (not ours).
func (p preAuths) issued(ctx context.Context, code string) (Issued, error) {
	var i Issued
	if err := p.t.Get(ctx, issuedKey(code), &i); err != nil {
		return Issued{}, fmt.Errorf("read pre_auth_code record: %w", err)
	}
	return i, nil
}

// spend records that an authorization used code, so no page offers it again. Codes we did not issue are
// left alone.
func (p preAuths) spend(ctx context.Context, code string) error {
	cond := expression.AttributeExists(expression.Name("PK"))
	upd := expression.Set(expression.Name("UsedAt"), expression.IfNotExists(expression.Name("UsedAt"), expression.Value(p.now().UnixMilli())))
	if _, err := p.t.Update(ctx, issuedKey(code), upd, &cond, types.ReturnValueNone); err != nil && !table.Refused(err) {
		return fmt.Errorf("record pre_auth_code spent: %w", err)
	}
	return nil
}

func (p preAuths) cached(ctx context.Context, componentAppID, tenant string) (cachedPreAuth, error) {
	var c cachedPreAuth
	if err := p.t.Get(ctx, cachedPreAuthKey(componentAppID, tenant), &c); err != nil {
		return cachedPreAuth{}, fmt.Errorf("read cached pre_auth_code: %w", err)
	}
	return c, nil
}

func (p preAuths) cache(ctx context.Context, componentAppID, tenant, code string, expires time.Time) error {
	k := cachedPreAuthKey(componentAppID, tenant)
	item := map[string]any{"PK": k.PK, "SK": k.SK, "Code": code, "ExpiresAt": expires.UnixMilli(), "PurgeAt": expires.Add(time.Hour).Unix()}
	if err := p.t.Put(ctx, item); err != nil {
		return fmt.Errorf("cache pre_auth_code: %w", err)
	}
	return nil
}

// takeSlot counts one new pre_auth_code against the platform-wide limit per minute, or returns ErrBusy.
func (p preAuths) takeSlot(ctx context.Context, componentAppID string, limit int) error {
	minute := p.now().Truncate(time.Minute)
	cond := expression.AttributeNotExists(expression.Name("Count")).
		Or(expression.Name("Count").LessThan(expression.Value(limit)))
	upd := expression.Add(expression.Name("Count"), expression.Value(1)).
		Set(expression.Name("PurgeAt"), expression.Value(minute.Add(time.Hour).Unix()))
	_, err := p.t.Update(ctx, preAuthRateKey(componentAppID, minute), upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		return ErrBusy
	}
	if err != nil {
		return fmt.Errorf("count pre_auth_code: %w", err)
	}
	return nil
}

package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/logging"
)

// DueShards is how many partitions of the due index the authorizers are spread over. The scheduled
// refresher queries each shard (in parallel) for what expires soon, so its cost grows with the number of
// due accounts, not with the number of accounts.
const DueShards = 16

// AuthorizerKey is the item of one authorized account.
func AuthorizerKey(appID string) Key { return Key{PK: "AUTHORIZER#" + appID, SK: "AUTHORIZER"} }

// DueShard is the due-index partition of an authorizer.
func DueShard(appID string) string {
	h := fnv.New32a()
	h.Write([]byte(appID))
	return "S" + strconv.Itoa(int(h.Sum32()%DueShards))
}

// Account kinds.
const (
	KindMiniProgram     = "miniprogram"
	KindOfficialAccount = "officialaccount"
)

// AccountInfo is the public profile from api_get_authorizer_info.
type AccountInfo struct {
	NickName      string         `dynamodbav:"NickName,omitempty"`
	HeadImg       string         `dynamodbav:"HeadImg,omitempty"`
	UserName      string         `dynamodbav:"UserName,omitempty"` // original id, gh_…
	Alias         string         `dynamodbav:"Alias,omitempty"`
	PrincipalName string         `dynamodbav:"PrincipalName,omitempty"`
	Signature     string         `dynamodbav:"Signature,omitempty"`
	QRCodeURL     string         `dynamodbav:"QRCodeURL,omitempty"`
	ServiceType   int            `dynamodbav:"ServiceType"`
	VerifyType    int            `dynamodbav:"VerifyType"`
	Network       map[string]any `dynamodbav:"Network,omitempty"`    // mini programs: server domains
	Categories    []Category     `dynamodbav:"Categories,omitempty"` // mini programs
}

// Category is a mini-program service category.
type Category struct {
	First  string `dynamodbav:"First"`
	Second string `dynamodbav:"Second"`
}

// Authorizer is an authorized (or formerly authorized) account.
type Authorizer struct {
	AppID          string      `dynamodbav:"AppID"`
	Tenant         string      `dynamodbav:"Tenant,omitempty"`
	Kind           string      `dynamodbav:"Kind,omitempty"`
	Status         string      `dynamodbav:"Status"`
	Info           AccountInfo `dynamodbav:"Info"`
	PermissionSets []int       `dynamodbav:"PermissionSets,omitempty"`
	AccessToken    string      `dynamodbav:"AccessToken,omitempty"`
	ExpiresAt      int64       `dynamodbav:"ExpiresAt,omitempty"` // unix ms
	RefreshToken   string      `dynamodbav:"RefreshToken,omitempty"`
	AuthCode       string      `dynamodbav:"AuthCode,omitempty"` // the code of the latest authorization
	AuthorizedAt   int64       `dynamodbav:"AuthorizedAt,omitempty"`
	RevokedAt      int64       `dynamodbav:"RevokedAt,omitempty"`
	ReauthReason   string      `dynamodbav:"ReauthReason,omitempty"`
	UpdatedAt      int64       `dynamodbav:"UpdatedAt,omitempty"`
	Version        int64       `dynamodbav:"Version"`
}

// Authorizer reads an authorizer, or ErrNotFound.
func (s *Store) Authorizer(ctx context.Context, appID string) (Authorizer, error) {
	var a Authorizer
	if err := s.get(ctx, AuthorizerKey(appID), &a); err != nil {
		return Authorizer{}, fmt.Errorf("read authorizer %s: %w", appID, err)
	}
	return a, nil
}

// Authorization is the result of exchanging an authorization code.
type Authorization struct {
	AppID          string
	Tenant         string // "" keeps the stored tenant (the push does not know it)
	Kind           string
	Info           AccountInfo
	InfoKnown      bool // false: api_get_authorizer_info failed; the stored Kind and Info are kept
	PermissionSets []int
	AccessToken    string // may be empty: the token is then fetched on first use
	ExpiresAt      time.Time
	RefreshToken   string
	AuthCode       string
	At             time.Time // when WeChat granted it
}

// PutAuthorization stores a new or renewed authorization: the account becomes authorized with the new
// refresh token (re-authorization invalidates the old one at WeChat, so the old one is replaced, never
// kept), its info and permission sets, in one write that also puts it on the due index. The tenant is set
// when known and kept otherwise. It is refused (ErrStale) if a later authorization or revocation is stored.
func (s *Store) PutAuthorization(ctx context.Context, a Authorization) (Authorizer, error) {
	now := s.now()
	key := AuthorizerKey(a.AppID)
	// Whole seconds, like WeChat's CreateTime: the redirect's time (our clock) and the push's (WeChat's) must
	// compare on the same scale. Ties go to whichever is processed later.
	at := a.At.Truncate(time.Second).UnixMilli()
	// Refused if a later authorization or a later revocation (possibly a tombstone for an account whose
	// `unauthorized` push came first) is stored.
	cond := expression.AttributeNotExists(expression.Name("PK")).
		Or(expression.AttributeNotExists(expression.Name("AuthorizedAt")).
			Or(expression.Name("AuthorizedAt").LessThanEqual(expression.Value(at))).
			And(expression.AttributeNotExists(expression.Name("RevokedAt")).
				Or(expression.Name("RevokedAt").LessThanEqual(expression.Value(at)))))
	upd := expression.Set(expression.Name("AppID"), expression.Value(a.AppID)).
		Set(expression.Name("Status"), expression.Value(StatusAuthorized)).
		Set(expression.Name("RefreshToken"), expression.Value(a.RefreshToken)).
		Set(expression.Name("AuthCode"), expression.Value(a.AuthCode)).
		Set(expression.Name("AuthorizedAt"), expression.Value(at)).
		Set(expression.Name("UpdatedAt"), expression.Value(now.UnixMilli())).
		Set(expression.Name("DueShard"), expression.Value(DueShard(a.AppID))).
		Set(expression.Name("DueAt"), expression.Value(a.ExpiresAt.Unix())).
		Set(expression.Name("ExpiresAt"), expression.Value(a.ExpiresAt.UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1)).
		Remove(expression.Name("ReauthReason")).
		Remove(expression.Name("LeaseOwner")).
		Remove(expression.Name("LeaseUntil"))
	if a.InfoKnown {
		upd = upd.Set(expression.Name("Kind"), expression.Value(a.Kind)).Set(expression.Name("Info"), expression.Value(a.Info))
	}
	if len(a.PermissionSets) > 0 {
		upd = upd.Set(expression.Name("PermissionSets"), expression.Value(a.PermissionSets))
	} else {
		upd = upd.Remove(expression.Name("PermissionSets"))
	}
	if a.AccessToken != "" {
		upd = upd.Set(expression.Name("AccessToken"), expression.Value(a.AccessToken))
	} else {
		upd = upd.Remove(expression.Name("AccessToken"))
	}
	if a.Tenant != "" {
		upd = upd.Set(expression.Name("Tenant"), expression.Value(a.Tenant))
	}
	out, err := s.update(ctx, key, upd, &cond, types.ReturnValueAllNew)
	if isConditionFailed(err) {
		return Authorizer{}, fmt.Errorf("store authorization of %s: %w", a.AppID, ErrStale)
	}
	if err != nil {
		return Authorizer{}, fmt.Errorf("store authorization of %s: %w", a.AppID, err)
	}
	var stored Authorizer
	if err := attributevalue.UnmarshalMap(out.Attributes, &stored); err != nil {
		return Authorizer{}, fmt.Errorf("decode authorizer %s: %w", a.AppID, err)
	}
	s.history(ctx, a.AppID, "authorized", now, map[string]string{"Tenant": a.Tenant})
	return stored, nil
}

// BindTenant records which tenant an authorization belongs to, if the stored authorization is still the
// one from authCode (a later re-authorization is not re-bound by a stale redirect).
func (s *Store) BindTenant(ctx context.Context, appID, authCode, tenant string) (Authorizer, error) {
	cond := expression.Name("AuthCode").Equal(expression.Value(authCode))
	upd := expression.Set(expression.Name("Tenant"), expression.Value(tenant)).
		Set(expression.Name("UpdatedAt"), expression.Value(s.now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	out, err := s.update(ctx, AuthorizerKey(appID), upd, &cond, types.ReturnValueAllNew)
	if isConditionFailed(err) {
		return Authorizer{}, fmt.Errorf("bind tenant of %s: %w", appID, ErrStale)
	}
	if err != nil {
		return Authorizer{}, fmt.Errorf("bind tenant of %s: %w", appID, err)
	}
	var a Authorizer
	if err := attributevalue.UnmarshalMap(out.Attributes, &a); err != nil {
		return Authorizer{}, fmt.Errorf("decode authorizer %s: %w", appID, err)
	}
	return a, nil
}

// Revoke marks an authorizer revoked (the `unauthorized` push): its tokens are wiped and it leaves the due
// index; its info, tenant and history stay. An account not stored yet (its `authorized` push is late or
// still being exchanged) gets a revoked tombstone, so that late authorization cannot bring it back. A
// revocation older than the stored authorization (pushes can arrive late) changes nothing and reports false.
func (s *Store) Revoke(ctx context.Context, appID string, at time.Time) (bool, error) {
	// WeChat's CreateTime has whole seconds: a revocation in the same second as the authorization is taken
	// to follow it.
	cond := expression.AttributeNotExists(expression.Name("AuthorizedAt")).
		Or(expression.Name("AuthorizedAt").LessThan(expression.Value(at.Truncate(time.Second).Add(time.Second).UnixMilli())))
	upd := expression.Set(expression.Name("AppID"), expression.Value(appID)).
		Set(expression.Name("Status"), expression.Value(StatusRevoked)).
		Set(expression.Name("RevokedAt"), expression.Value(at.Truncate(time.Second).UnixMilli())).
		Set(expression.Name("UpdatedAt"), expression.Value(s.now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	for _, name := range []string{"AccessToken", "RefreshToken", "ExpiresAt", "DueShard", "DueAt", "LeaseOwner", "LeaseUntil"} {
		upd = upd.Remove(expression.Name(name))
	}
	_, err := s.update(ctx, AuthorizerKey(appID), upd, &cond, types.ReturnValueNone)
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revoke %s: %w", appID, err)
	}
	s.history(ctx, appID, "revoked", at, nil)
	return true, nil
}

// MarkNeedsReauth records that WeChat refused the refresh token (61023 and the like): the account must
// authorize again. Only if the stored refresh token is still the one refused, so a re-authorization that
// raced the refresh is not undone. It leaves the due index, so the refresher stops trying.
func (s *Store) MarkNeedsReauth(ctx context.Context, appID, refusedRefreshToken, reason string) (bool, error) {
	cond := expression.Name("RefreshToken").Equal(expression.Value(refusedRefreshToken)).
		And(expression.Name("Status").Equal(expression.Value(StatusAuthorized)))
	upd := expression.Set(expression.Name("Status"), expression.Value(StatusNeedsReauth)).
		Set(expression.Name("ReauthReason"), expression.Value(reason)).
		Set(expression.Name("UpdatedAt"), expression.Value(s.now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	for _, name := range []string{"AccessToken", "ExpiresAt", "DueShard", "DueAt", "LeaseOwner", "LeaseUntil"} {
		upd = upd.Remove(expression.Name(name))
	}
	_, err := s.update(ctx, AuthorizerKey(appID), upd, &cond, types.ReturnValueNone)
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mark %s needs_reauth: %w", appID, err)
	}
	s.history(ctx, appID, "needs_reauth", s.now(), map[string]string{"Reason": reason})
	return true, nil
}

// historyTTL keeps authorization history for a year.
const historyTTL = 365 * 24 * time.Hour

// history appends an event to the authorizer's history (same partition, SK = EVENT#recorded-µs#kind;
// ordered by when we recorded it, since WeChat's event times have whole seconds only). It is best effort,
// after the state change it describes is durable: a failure is logged, never reported as the change failing.
func (s *Store) history(ctx context.Context, appID, kind string, at time.Time, attrs map[string]string) {
	if err := s.appendHistory(ctx, appID, kind, at, attrs); err != nil {
		logging.From(ctx).Warn("authorizer history not recorded", "authorizer_appid", appID, "event", kind, "error", err.Error())
	}
}

func (s *Store) appendHistory(ctx context.Context, appID, kind string, at time.Time, attrs map[string]string) error {
	now := s.now()
	item := map[string]any{
		"PK": AuthorizerKey(appID).PK, "SK": fmt.Sprintf("EVENT#%016d#%s", now.UnixMicro(), kind),
		"Kind": kind, "At": at.UnixMilli(), "PurgeAt": now.Add(historyTTL).Unix(),
	}
	for k, v := range attrs {
		if v != "" {
			item[k] = v
		}
	}
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return fmt.Errorf("encode history of %s: %w", appID, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}); err != nil {
		return fmt.Errorf("record history of %s: %w", appID, err)
	}
	return nil
}

// History lists the kinds of an authorizer's events (authorized, revoked, needs_reauth), oldest first.
func (s *Store) History(ctx context.Context, appID string) ([]string, error) {
	keyCond := expression.Key("PK").Equal(expression.Value(AuthorizerKey(appID).PK)).
		And(expression.Key("SK").BeginsWith("EVENT#"))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).Build()
	if err != nil {
		return nil, fmt.Errorf("build history query: %w", err)
	}
	var kinds []string
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read history of %s: %w", appID, err)
		}
		for _, it := range page.Items {
			var ev struct{ Kind string }
			if err := attributevalue.UnmarshalMap(it, &ev); err != nil {
				return nil, fmt.Errorf("decode history of %s: %w", appID, err)
			}
			kinds = append(kinds, ev.Kind)
		}
	}
	return kinds, nil
}

// ErrUsed means a single-use marker (an auth `state`) was already taken.
var ErrUsed = errors.New("already used")

// UseOnce records that id (e.g. an auth `state` nonce) has been used: the first call succeeds, every later
// one gets ErrUsed. The marker is purged by TTL after expires.
func (s *Store) UseOnce(ctx context.Context, id string, expires time.Time) error {
	item := map[string]types.AttributeValue{
		"PK":      &types.AttributeValueMemberS{Value: "ONCE#" + id},
		"SK":      &types.AttributeValueMemberS{Value: "ONCE"},
		"PurgeAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)},
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	})
	if isConditionFailed(err) {
		return ErrUsed
	}
	if err != nil {
		return fmt.Errorf("record single use: %w", err)
	}
	return nil
}

// CodeClaim coordinates the two deliveries of one authorization code (the browser redirect and the
// `authorized` push): whoever claims it first exchanges it; the other waits for the result.
type CodeClaim struct {
	Code       string `dynamodbav:"Code"`
	Tenant     string `dynamodbav:"Tenant,omitempty"` // noted by a waiting redirect: bound by whoever stores the account
	Owner      string `dynamodbav:"Owner"`
	Until      int64  `dynamodbav:"Until"` // unix ms: the claim lapses if its owner dies
	AppID      string `dynamodbav:"AppID,omitempty"`
	Done       bool   `dynamodbav:"Done"`
	FailReason string `dynamodbav:"FailReason,omitempty"`
}

func codeKey(code string) Key { return Key{PK: "AUTHCODE#" + code, SK: "AUTHCODE"} }

// ClaimCode claims an authorization code for exchange. It returns (claim, true) to the claimant, and the
// current claim with false to everyone else. A claim that lapsed unfinished can be taken over. A tenant
// (from the redirect) is recorded on the claim, so whichever delivery finally stores the account binds it.
func (s *Store) ClaimCode(ctx context.Context, code, owner string, lease time.Duration, tenant string) (CodeClaim, bool, error) {
	now := s.now()
	cond := expression.AttributeNotExists(expression.Name("PK")).
		Or(expression.Name("Done").Equal(expression.Value(false)).
			And(expression.Name("Until").LessThan(expression.Value(now.UnixMilli()))))
	upd := expression.Set(expression.Name("Code"), expression.Value(code)).
		Set(expression.Name("Owner"), expression.Value(owner)).
		Set(expression.Name("Until"), expression.Value(now.Add(lease).UnixMilli())).
		Set(expression.Name("Done"), expression.Value(false)).
		Set(expression.Name("PurgeAt"), expression.Value(now.Add(24*time.Hour).Unix()))
	if tenant != "" {
		upd = upd.Set(expression.Name("Tenant"), expression.Value(tenant))
	}
	out, err := s.update(ctx, codeKey(code), upd, &cond, types.ReturnValueAllNew)
	var c CodeClaim
	if isConditionFailed(err) {
		if old := conditionFailedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &c); err != nil {
				return CodeClaim{}, false, fmt.Errorf("decode code claim: %w", err)
			}
		}
		return c, false, nil
	}
	if err != nil {
		return CodeClaim{}, false, fmt.Errorf("claim auth code: %w", err)
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &c); err != nil {
		return CodeClaim{}, false, fmt.Errorf("decode code claim: %w", err)
	}
	return c, true, nil
}

// NoteTenant records on a code's claim which tenant the redirect carried, so the tenant is bound even if the
// redirect stops waiting before the other delivery has stored the account.
func (s *Store) NoteTenant(ctx context.Context, code, tenant string) error {
	cond := expression.AttributeExists(expression.Name("PK"))
	upd := expression.Set(expression.Name("Tenant"), expression.Value(tenant))
	_, err := s.update(ctx, codeKey(code), upd, &cond, types.ReturnValueNone)
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("note tenant on auth code: %w", err)
	}
	return nil
}

// FinishCode records the outcome of a claimed code: the authorizer appid, or (failReason) why the
// exchange failed for good. It returns the claim as finished (with any tenant noted meanwhile).
func (s *Store) FinishCode(ctx context.Context, code, owner, appID, failReason string) (CodeClaim, error) {
	cond := expression.Name("Owner").Equal(expression.Value(owner))
	upd := expression.Set(expression.Name("Done"), expression.Value(true))
	if appID != "" {
		upd = upd.Set(expression.Name("AppID"), expression.Value(appID))
	}
	if failReason != "" {
		upd = upd.Set(expression.Name("FailReason"), expression.Value(failReason))
	}
	out, err := s.update(ctx, codeKey(code), upd, &cond, types.ReturnValueAllNew)
	if isConditionFailed(err) {
		return CodeClaim{}, nil
	}
	if err != nil {
		return CodeClaim{}, fmt.Errorf("finish auth code: %w", err)
	}
	var c CodeClaim
	if err := attributevalue.UnmarshalMap(out.Attributes, &c); err != nil {
		return CodeClaim{}, fmt.Errorf("decode code claim: %w", err)
	}
	return c, nil
}

// ReleaseCode gives a claim up after a failure that may pass (WeChat busy), so another delivery can retry.
func (s *Store) ReleaseCode(ctx context.Context, code, owner string) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner)).And(expression.Name("Done").Equal(expression.Value(false)))
	upd := expression.Set(expression.Name("Until"), expression.Value(0))
	_, err := s.update(ctx, codeKey(code), upd, &cond, types.ReturnValueNone)
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release auth code: %w", err)
	}
	return nil
}

// CodeClaimOf reads a code's claim, or ErrNotFound.
func (s *Store) CodeClaimOf(ctx context.Context, code string) (CodeClaim, error) {
	var c CodeClaim
	if err := s.get(ctx, codeKey(code), &c); err != nil {
		return CodeClaim{}, fmt.Errorf("read code claim: %w", err)
	}
	return c, nil
}

// PreAuthCode is a cached pre_auth_code, reused across one tenant's page renders while it has life left.
type PreAuthCode struct {
	Code      string `dynamodbav:"Code"`
	ExpiresAt int64  `dynamodbav:"ExpiresAt"` // unix ms
}

// Per tenant: a pre_auth_code is spent by the first authorization made with it, so merchants must not share one.
func preAuthKey(componentAppID, tenant string) Key {
	return Key{PK: "COMPONENT#" + componentAppID, SK: "PREAUTH#" + tenant}
}

// PreAuthCode reads a tenant's cached pre_auth_code, or ErrNotFound.
func (s *Store) PreAuthCode(ctx context.Context, componentAppID, tenant string) (PreAuthCode, error) {
	var p PreAuthCode
	if err := s.get(ctx, preAuthKey(componentAppID, tenant), &p); err != nil {
		return PreAuthCode{}, fmt.Errorf("read pre_auth_code: %w", err)
	}
	return p, nil
}

// PutPreAuthCode caches a tenant's pre_auth_code.
func (s *Store) PutPreAuthCode(ctx context.Context, componentAppID, tenant string, p PreAuthCode) error {
	upd := expression.Set(expression.Name("Code"), expression.Value(p.Code)).
		Set(expression.Name("ExpiresAt"), expression.Value(p.ExpiresAt)).
		Set(expression.Name("PurgeAt"), expression.Value(p.ExpiresAt/1000+3600))
	if _, err := s.update(ctx, preAuthKey(componentAppID, tenant), upd, nil, types.ReturnValueNone); err != nil {
		return fmt.Errorf("store pre_auth_code: %w", err)
	}
	return nil
}

// Used reports whether UseOnce(id) has been recorded (and not yet purged).
func (s *Store) Used(ctx context.Context, id string) (bool, error) {
	var item struct {
		PurgeAt int64 `dynamodbav:"PurgeAt"`
	}
	err := s.get(ctx, Key{PK: "ONCE#" + id, SK: "ONCE"}, &item)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read single-use marker: %w", err)
	}
	// DynamoDB deletes expired items only eventually (DynamoDB Local never): honour the expiry ourselves.
	return item.PurgeAt > s.now().Unix(), nil
}

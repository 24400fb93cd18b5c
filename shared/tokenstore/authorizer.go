package tokenstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
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
	AuthCode       string      `dynamodbav:"AuthCode,omitempty"`    // the code of the latest authorization
	PreAuthCode    string      `dynamodbav:"PreAuthCode,omitempty"` // the pre_auth_code it used, once WeChat's push told us
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
	Kind           string
	Info           AccountInfo
	InfoKnown      bool // false: api_get_authorizer_info failed; the stored Kind and Info are kept
	PermissionSets []int
	AccessToken    string // may be empty: the token is then fetched on first use
	ExpiresAt      time.Time
	RefreshToken   string
	AuthCode       string
	At             time.Time // when WeChat granted it (the push's CreateTime), or the latest it can have been
	// After is the earliest it can have been granted, when At is not exact (the redirect knows only when its
	// page was rendered): anything stored after that may be newer, and wins. Zero means At.
	After time.Time
}

// PutAuthorization stores a new or renewed authorization: the account becomes authorized with the new
// refresh token (re-authorization invalidates the old one at WeChat, so the old one is replaced, never
// kept), its info and permission sets, in one write that also puts it on the due index. The tenant is kept:
// only BindTenant, on WeChat's word of which pre_auth_code was used, changes it. It is refused (ErrStale)
// if a later authorization or revocation, or this same one, is stored.
func (s *Store) PutAuthorization(ctx context.Context, a Authorization) (Authorizer, error) {
	now := s.Now()
	key := AuthorizerKey(a.AppID)
	// Whole seconds, like WeChat's CreateTime: the redirect's time (our clock) and the push's (WeChat's) must
	// compare on the same scale. Ties go to whichever is processed later.
	at := a.At.Truncate(time.Second).UnixMilli()
	after := at
	if !a.After.IsZero() {
		after = a.After.Truncate(time.Second).UnixMilli()
	}
	// Refused if an authorization or revocation that may be later is stored (possibly a tombstone for an
	// account whose `unauthorized` push came first), or this very authorization is stored already (its
	// tokens may have been refreshed since; they must not be put back).
	cond := expression.AttributeNotExists(expression.Name("PK")).
		Or(expression.AttributeNotExists(expression.Name("AuthorizedAt")).
			Or(expression.Name("AuthorizedAt").LessThanEqual(expression.Value(after))).
			And(expression.AttributeNotExists(expression.Name("RevokedAt")).
				Or(expression.Name("RevokedAt").LessThanEqual(expression.Value(after)))).
			And(expression.AttributeNotExists(expression.Name("AuthCode")).
				Or(expression.Name("AuthCode").NotEqual(expression.Value(a.AuthCode)))))
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
		Remove(expression.Name("PreAuthCode")). // the previous authorization's; BindTenant records this one's
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
	out, err := s.update(ctx, key, upd, &cond, types.ReturnValueAllNew)
	if table.Refused(err) {
		return Authorizer{}, fmt.Errorf("store authorization of %s: %w", a.AppID, ErrStale)
	}
	if err != nil {
		return Authorizer{}, fmt.Errorf("store authorization of %s: %w", a.AppID, err)
	}
	var stored Authorizer
	if err := attributevalue.UnmarshalMap(out, &stored); err != nil {
		return Authorizer{}, fmt.Errorf("decode authorizer %s: %w", a.AppID, err)
	}
	s.history(ctx, a.AppID, "authorized", now, nil)
	return stored, nil
}

// Binding is BindTenant's outcome.
type Binding struct {
	Authorizer Authorizer
	From       string // the tenant the account had before ("" if none)
}

// Moved reports whether the binding took the account from another tenant.
func (b Binding) Moved() bool { return b.From != "" && b.From != b.Authorizer.Tenant }

// BindTenant records what WeChat's push says of the stored authorization (the one from authCode): it was made
// with preAuthCode, issued to tenant, at grantedAt (its CreateTime, exact where the redirect could only guess).
// The account now belongs to that tenant. Refused (ErrStale) if a later authorization is stored. A first
// binding or a move to another tenant is kept in the account's history.
func (s *Store) BindTenant(ctx context.Context, appID, authCode, preAuthCode, tenant string, grantedAt time.Time) (Binding, error) {
	now := s.Now()
	cond := expression.Name("AuthCode").Equal(expression.Value(authCode))
	upd := expression.Set(expression.Name("Tenant"), expression.Value(tenant)).
		Set(expression.Name("PreAuthCode"), expression.Value(preAuthCode)).
		Set(expression.Name("UpdatedAt"), expression.Value(now.UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	if !grantedAt.IsZero() {
		upd = upd.Set(expression.Name("AuthorizedAt"), expression.Value(grantedAt.Truncate(time.Second).UnixMilli()))
	}
	// The item as it was: the new one is that plus what we set, and the old tenant is what history needs.
	out, err := s.update(ctx, AuthorizerKey(appID), upd, &cond, types.ReturnValueAllOld)
	if table.Refused(err) {
		return Binding{}, fmt.Errorf("bind tenant of %s: %w", appID, ErrStale)
	}
	if err != nil {
		return Binding{}, fmt.Errorf("bind tenant of %s: %w", appID, err)
	}
	var a Authorizer
	if err := attributevalue.UnmarshalMap(out, &a); err != nil {
		return Binding{}, fmt.Errorf("decode authorizer %s: %w", appID, err)
	}
	b := Binding{From: a.Tenant}
	a.Tenant, a.PreAuthCode, a.UpdatedAt, a.Version = tenant, preAuthCode, now.UnixMilli(), a.Version+1
	if !grantedAt.IsZero() {
		a.AuthorizedAt = grantedAt.Truncate(time.Second).UnixMilli()
	}
	b.Authorizer = a
	switch {
	case b.From == "":
		s.history(ctx, appID, "tenant_bound", now, map[string]string{"Tenant": tenant})
	case b.Moved():
		s.history(ctx, appID, "tenant_moved", now, map[string]string{"Tenant": tenant, "FromTenant": b.From})
	}
	return b, nil
}

// Revoke marks an authorizer revoked (the `unauthorized` push): its tokens are wiped and it leaves the due
// index; its info, tenant and history stay. An account not stored yet (its `authorized` push is late or
// still being exchanged) gets a revoked tombstone, so that late authorization cannot bring it back. A
// revocation older than the stored authorization or than a stored revocation (pushes can arrive late, and
// are retried) changes nothing and reports false.
func (s *Store) Revoke(ctx context.Context, appID string, at time.Time) (bool, error) {
	// WeChat's CreateTime has whole seconds: a revocation in the same second as the authorization is taken
	// to follow it.
	revokedAt := at.Truncate(time.Second).UnixMilli()
	// RevokedAt only moves forward: a late, older revocation must not lower it, or an authorization older
	// than the newest revocation could pass PutAuthorization's check and revive the account.
	cond := expression.AttributeNotExists(expression.Name("AuthorizedAt")).
		Or(expression.Name("AuthorizedAt").LessThan(expression.Value(revokedAt + time.Second.Milliseconds()))).
		And(expression.AttributeNotExists(expression.Name("RevokedAt")).
			Or(expression.Name("RevokedAt").LessThan(expression.Value(revokedAt))))
	upd := expression.Set(expression.Name("AppID"), expression.Value(appID)).
		Set(expression.Name("Status"), expression.Value(StatusRevoked)).
		Set(expression.Name("RevokedAt"), expression.Value(revokedAt)).
		Set(expression.Name("UpdatedAt"), expression.Value(s.Now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	for _, name := range []string{"AccessToken", "RefreshToken", "ExpiresAt", "DueShard", "DueAt", "LeaseOwner", "LeaseUntil"} {
		upd = upd.Remove(expression.Name(name))
	}
	_, err := s.update(ctx, AuthorizerKey(appID), upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
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
		Set(expression.Name("UpdatedAt"), expression.Value(s.Now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	for _, name := range []string{"AccessToken", "ExpiresAt", "DueShard", "DueAt", "LeaseOwner", "LeaseUntil"} {
		upd = upd.Remove(expression.Name(name))
	}
	_, err := s.update(ctx, AuthorizerKey(appID), upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mark %s needs_reauth: %w", appID, err)
	}
	s.history(ctx, appID, "needs_reauth", s.Now(), map[string]string{"Reason": reason})
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
	now := s.Now()
	item := map[string]any{
		"PK": AuthorizerKey(appID).PK, "SK": fmt.Sprintf("EVENT#%016d#%s", now.UnixMicro(), kind),
		"Kind": kind, "At": at.UnixMilli(), "PurgeAt": now.Add(historyTTL).Unix(),
	}
	for k, v := range attrs {
		if v != "" {
			item[k] = v
		}
	}
	if err := s.t.Put(ctx, item); err != nil {
		return fmt.Errorf("record history of %s: %w", appID, err)
	}
	return nil
}

// Event is one entry of an authorizer's history.
type Event struct {
	Kind       string `dynamodbav:"Kind"` // authorized, revoked, needs_reauth, tenant_bound, tenant_moved
	At         int64  `dynamodbav:"At"`   // unix ms
	Tenant     string `dynamodbav:"Tenant,omitempty"`
	FromTenant string `dynamodbav:"FromTenant,omitempty"`
	Reason     string `dynamodbav:"Reason,omitempty"`
}

// History lists an authorizer's events, oldest first.
func (s *Store) History(ctx context.Context, appID string) ([]Event, error) {
	var events []Event
	err := s.t.QueryPrefix(ctx, AuthorizerKey(appID).PK, "EVENT#", func(item map[string]types.AttributeValue) error {
		var ev Event
		if err := attributevalue.UnmarshalMap(item, &ev); err != nil {
			return err
		}
		events = append(events, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", appID, err)
	}
	return events, nil
}

// Authorizers lists the accounts (of one tenant, if tenant is not empty), ordered by appid. It scans the
// table: for the operator's occasional listing, never on a request path.
func (s *Store) Authorizers(ctx context.Context, tenant string) ([]Authorizer, error) {
	filter := expression.Name("SK").Equal(expression.Value("AUTHORIZER"))
	if tenant != "" {
		filter = filter.And(expression.Name("Tenant").Equal(expression.Value(tenant)))
	}
	expr, err := expression.NewBuilder().WithFilter(filter).Build()
	if err != nil {
		return nil, fmt.Errorf("build authorizer listing: %w", err)
	}
	var out []Authorizer
	p := dynamodb.NewScanPaginator(s.t.DB, &dynamodb.ScanInput{
		TableName: aws.String(s.t.Name), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list authorizers: %w", err)
		}
		for _, it := range page.Items {
			var a Authorizer
			if err := attributevalue.UnmarshalMap(it, &a); err != nil {
				return nil, fmt.Errorf("decode authorizer: %w", err)
			}
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Authorizer) int { return strings.Compare(a.AppID, b.AppID) })
	return out, nil
}

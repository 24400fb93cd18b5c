// Package tokenstore keeps the platform's credentials in the one DynamoDB table: the component ticket, the
// component token, the authorizers and their tokens.
//
// Every token write is conditional. Refreshes are single-flight through a lease held on the credential's own
// item (LeaseOwner, LeaseUntil): only the holder calls WeChat, and a dead holder's lease simply expires. A
// refreshed token is committed only if it expires later than the stored one, so a slow refresher can never
// put an older token over a newer one; an authorizer's rotated refresh token is written in the same update as
// its access token, and only if the stored refresh token is still the one the refresher used.
package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
)

// ErrNotFound means the item does not exist.
var ErrNotFound = table.ErrNotFound

// ErrStale means a conditional write lost: someone stored something newer first. Re-read and use theirs.
var ErrStale = errors.New("stored credential is newer")

// Key addresses one item of the table.
type Key = table.Key

// ComponentTokenKey is the item holding the component_access_token and its lease.
func ComponentTokenKey(componentAppID string) Key {
	return Key{PK: "COMPONENT#" + componentAppID, SK: "TOKEN"}
}

func ticketKey(componentAppID string) Key {
	return Key{PK: "COMPONENT#" + componentAppID, SK: "TICKET"}
}

// Store reads and writes the credential and account items of the table.
type Store struct {
	t *table.Table
	// Now is the clock of leases and record times; tests move it instead of sleeping.
	Now func() time.Time
}

// New returns a Store on the table name.
func New(db *dynamodb.Client, name string) *Store {
	return &Store{t: table.New(db, name), Now: time.Now}
}

// Table is the table the store is on (for the record families that share it).
func (s *Store) Table() *table.Table { return s.t }

// Ticket is the latest component_verify_ticket.
type Ticket struct {
	Ticket     string `dynamodbav:"Ticket"`
	CreateTime int64  `dynamodbav:"CreateTime"` // WeChat's CreateTime of the push, seconds
	StoredAt   int64  `dynamodbav:"StoredAt"`   // unix ms
}

// PutTicket stores a pushed ticket unless a push with the same or a later CreateTime is already stored
// (pushes can arrive out of order and are retried). It reports whether this ticket was stored.
func (s *Store) PutTicket(ctx context.Context, componentAppID, ticket string, createTime int64) (bool, error) {
	key := ticketKey(componentAppID)
	cond := expression.AttributeNotExists(expression.Name("PK")).
		Or(expression.Name("CreateTime").LessThan(expression.Value(createTime)))
	upd := expression.Set(expression.Name("Ticket"), expression.Value(ticket)).
		Set(expression.Name("CreateTime"), expression.Value(createTime)).
		Set(expression.Name("StoredAt"), expression.Value(s.Now().UnixMilli()))
	_, err := s.update(ctx, key, upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store ticket for %s: %w", componentAppID, err)
	}
	return true, nil
}

// Ticket returns the latest stored ticket, or ErrNotFound.
func (s *Store) Ticket(ctx context.Context, componentAppID string) (Ticket, error) {
	var t Ticket
	if err := s.get(ctx, ticketKey(componentAppID), &t); err != nil {
		return Ticket{}, fmt.Errorf("read ticket for %s: %w", componentAppID, err)
	}
	return t, nil
}

// Credential is the token part of a credential item (component token or authorizer).
type Credential struct {
	AccessToken  string `dynamodbav:"AccessToken,omitempty"`
	ExpiresAt    int64  `dynamodbav:"ExpiresAt,omitempty"` // unix ms; 0 = invalidated or never set
	RefreshToken string `dynamodbav:"RefreshToken,omitempty"`
	Status       string `dynamodbav:"Status,omitempty"` // authorizers only
	Version      int64  `dynamodbav:"Version"`
	LeaseOwner   string `dynamodbav:"LeaseOwner,omitempty"`
	LeaseUntil   int64  `dynamodbav:"LeaseUntil,omitempty"` // unix ms
}

// Expires is ExpiresAt as a time.
func (c Credential) Expires() time.Time { return time.UnixMilli(c.ExpiresAt) }

// FreshUntil reports whether the access token is present and valid at least until t.
func (c Credential) FreshUntil(t time.Time) bool {
	return c.AccessToken != "" && c.ExpiresAt > t.UnixMilli()
}

// Credential reads a credential item with a strongly consistent read.
func (s *Store) Credential(ctx context.Context, key Key) (Credential, error) {
	var c Credential
	if err := s.get(ctx, key, &c); err != nil {
		return Credential{}, fmt.Errorf("read credential %s: %w", key, err)
	}
	return c, nil
}

// LeaseRequest asks for the refresh lease of one credential.
type LeaseRequest struct {
	Key       Key
	Owner     string        // unique per request: "refused, and the holder is me" then means granted
	For       time.Duration // lease lifetime; a holder that dies is replaced after it
	DueBefore time.Time     // grant only if the token expires before this (it is due), or is missing
	// MustExist grants only on an existing item whose Status is "authorized" (authorizers); false lets the
	// first caller create the item (component token).
	MustExist bool
}

// AcquireLease takes the refresh lease if it is free (or expired) and the token is still due. It returns
// the item as it now is (granted) or as it was (not granted): a caller that is refused finds either a fresh
// token it can use, or a lease held by someone else to wait for.
func (s *Store) AcquireLease(ctx context.Context, req LeaseRequest) (Credential, bool, error) {
	now := s.Now()
	free := expression.AttributeNotExists(expression.Name("LeaseUntil")).
		Or(expression.Name("LeaseUntil").LessThan(expression.Value(now.UnixMilli())))
	due := expression.AttributeNotExists(expression.Name("ExpiresAt")).
		Or(expression.Name("ExpiresAt").LessThan(expression.Value(req.DueBefore.UnixMilli())))
	cond := free.And(due)
	if req.MustExist {
		cond = cond.And(expression.Name("Status").Equal(expression.Value(StatusAuthorized)))
	}
	upd := expression.Set(expression.Name("LeaseOwner"), expression.Value(req.Owner)).
		Set(expression.Name("LeaseUntil"), expression.Value(now.Add(req.For).UnixMilli()))
	out, err := s.update(ctx, req.Key, upd, &cond, types.ReturnValueAllNew)
	var c Credential
	if table.Refused(err) {
		if old := table.RefusedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &c); err != nil {
				return Credential{}, false, fmt.Errorf("decode credential %s: %w", req.Key, err)
			}
		} else if req.MustExist {
			return Credential{}, false, fmt.Errorf("lease %s: %w", req.Key, ErrNotFound)
		}
		// Refused, and the holder is this very request: our write was applied but its answer was lost, and
		// the SDK's retry found our own lease. That is a grant (owners are unique per request).
		return c, c.LeaseOwner == req.Owner && c.LeaseUntil > now.UnixMilli(), nil
	}
	if err != nil {
		return Credential{}, false, fmt.Errorf("lease %s: %w", req.Key, err)
	}
	if err := attributevalue.UnmarshalMap(out, &c); err != nil {
		return Credential{}, false, fmt.Errorf("decode credential %s: %w", req.Key, err)
	}
	return c, true, nil
}

// ReleaseLease gives the lease back without a new token (the refresh failed), if owner still holds it.
func (s *Store) ReleaseLease(ctx context.Context, key Key, owner string) error {
	cond := expression.Name("LeaseOwner").Equal(expression.Value(owner))
	upd := expression.Remove(expression.Name("LeaseOwner")).Remove(expression.Name("LeaseUntil"))
	_, err := s.update(ctx, key, upd, &cond, types.ReturnValueNone)
	if err != nil && !table.Refused(err) {
		return fmt.Errorf("release lease %s: %w", key, err)
	}
	return nil
}

// Commit is a refreshed token to store.
type Commit struct {
	Key         Key
	Owner       string // the lease holder; its lease is released
	AccessToken string
	ExpiresAt   time.Time
	// For authorizers: the refresh token the refresh used, and the one WeChat returned (may be the same).
	// The write happens only if UsedRefreshToken is still the stored one.
	UsedRefreshToken, RefreshToken string
	// Extra attributes to set in the same write (e.g. the refresh index keys).
	Set map[string]any
}

// CommitToken stores a refreshed token, conditionally: only if it expires later than the stored one (so an
// older token never replaces a newer one) and, for authorizers, only if the stored refresh token is still
// the one used. A lost condition returns ErrStale.
func (s *Store) CommitToken(ctx context.Context, c Commit) (Credential, error) {
	newer := expression.AttributeNotExists(expression.Name("ExpiresAt")).
		Or(expression.Name("ExpiresAt").LessThan(expression.Value(c.ExpiresAt.UnixMilli())))
	cond := newer
	upd := expression.Set(expression.Name("AccessToken"), expression.Value(c.AccessToken)).
		Set(expression.Name("ExpiresAt"), expression.Value(c.ExpiresAt.UnixMilli())).
		Set(expression.Name("UpdatedAt"), expression.Value(s.Now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	if c.UsedRefreshToken != "" {
		cond = cond.And(expression.Name("RefreshToken").Equal(expression.Value(c.UsedRefreshToken)))
		upd = upd.Set(expression.Name("RefreshToken"), expression.Value(c.RefreshToken)).
			Set(expression.Name("Status"), expression.Value(StatusAuthorized))
	}
	for name, v := range c.Set {
		upd = upd.Set(expression.Name(name), expression.Value(v))
	}
	// The lease goes with the write. Not conditioned on holding it: the expiry (and refresh token) conditions
	// decide what is newest, and once a fresh token is stored nobody can take a lease for it anyway.
	upd = upd.Remove(expression.Name("LeaseOwner")).Remove(expression.Name("LeaseUntil"))
	out, err := s.update(ctx, c.Key, upd, &cond, types.ReturnValueAllNew)
	if table.Refused(err) {
		_ = s.ReleaseLease(ctx, c.Key, c.Owner)
		return Credential{}, fmt.Errorf("commit token %s: %w", c.Key, ErrStale)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("commit token %s: %w", c.Key, err)
	}
	var cr Credential
	if err := attributevalue.UnmarshalMap(out, &cr); err != nil {
		return Credential{}, fmt.Errorf("decode credential %s: %w", c.Key, err)
	}
	return cr, nil
}

// Invalidate marks an access token unusable (WeChat answered 40001/42001 with it), but only if it is still
// the stored one: a token already replaced must not knock out its replacement. It reports whether it did.
func (s *Store) Invalidate(ctx context.Context, key Key, token string) (bool, error) {
	cond := expression.Name("AccessToken").Equal(expression.Value(token))
	// DueAt 0 puts an indexed authorizer at the head of the due index (the refresher takes it next run);
	// without a DueShard the item is not indexed and DueAt means nothing.
	upd := expression.Set(expression.Name("ExpiresAt"), expression.Value(0)).
		Set(expression.Name("DueAt"), expression.Value(0)).
		Set(expression.Name("UpdatedAt"), expression.Value(s.Now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	_, err := s.update(ctx, key, upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("invalidate token %s: %w", key, err)
	}
	return true, nil
}

func (s *Store) get(ctx context.Context, key Key, out any) error { return s.t.Get(ctx, key, out) }

func (s *Store) update(ctx context.Context, key Key, upd expression.UpdateBuilder, cond *expression.ConditionBuilder, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
	return s.t.Update(ctx, key, upd, cond, rv)
}

// Authorizer statuses.
const (
	StatusAuthorized  = "authorized"
	StatusRevoked     = "revoked"
	StatusNeedsReauth = "needs_reauth"
)

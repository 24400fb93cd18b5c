// Package credentials hands out valid WeChat access tokens to the platform's handlers.
//
// A token is served from memory while it has more than Margin left; past that the caller goes to the table.
// Refreshing is single-flight across every process: the caller that wins the lease on the credential's item
// calls WeChat and stores the result; the others keep using the old token while it is still valid, or wait
// for the holder and read what it stored. A holder that dies loses its lease when it expires.
package credentials

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// Options tune the refresh timing. Zero values take the defaults.
type Options struct {
	Margin      time.Duration // refresh when less than this is left; default 15m
	MinValidity time.Duration // a due token with at least this left is still handed out while another caller refreshes it; default 1m
	LeaseFor    time.Duration // default 30s: longer than one WeChat call with its retries
	WaitFor     time.Duration // how long a caller waits for another's refresh; default LeaseFor + 5s
	Poll        time.Duration // how often a waiting caller re-reads; default 50ms
	Now         func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Margin == 0 {
		o.Margin = 15 * time.Minute
	}
	if o.MinValidity == 0 {
		o.MinValidity = time.Minute
	}
	if o.LeaseFor == 0 {
		o.LeaseFor = 30 * time.Second
	}
	if o.WaitFor == 0 {
		o.WaitFor = o.LeaseFor + 5*time.Second
	}
	if o.Poll == 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrRefreshTimeout means another caller held the refresh lease for longer than WaitFor and no valid token
// appeared; the caller may try again.
var ErrRefreshTimeout = errors.New("timed out waiting for another caller's token refresh")

// fetched is a new token from WeChat.
type fetched struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string         // authorizers: the refresh token WeChat returned
	Set          map[string]any // extra attributes to store with it
}

// source says how to refresh one credential.
type source struct {
	key       tokenstore.Key
	mustExist bool
	// fetch calls WeChat with the leased item's current state. An error releases the lease.
	fetch func(ctx context.Context, cur tokenstore.Credential) (fetched, error)
	// usedRefreshToken makes the commit conditional on the refresh token (authorizers).
	usedRefreshToken bool
}

// leaser is the single-flight machinery shared by the component and authorizer tokens.
type leaser struct {
	store *tokenstore.Store
	opts  Options
	owner string       // unique per process (a Lambda instance); each lease request adds a sequence number
	seq   atomic.Int64 // so that "refused, and the holder is me" can only mean this very request

	sf    singleflight.Group // one table round trip per key per process at a time
	mu    sync.Mutex
	cache map[tokenstore.Key]cached
	// rejected is the last token WeChat rejected per key. A table read that raced with its invalidation can
	// still return it as fresh; it is never served or cached again, so callers wait for the refresh instead
	// of retrying with the same dead token.
	rejected map[tokenstore.Key]string
}

// cached is a token this process holds. One past its refresh margin (someone else is refreshing it) is
// served until recheck before the table is asked again, instead of on every call.
type cached struct {
	cred    tokenstore.Credential
	recheck time.Time
}

// recheckDue is how long a due but still valid token is served from memory while another caller refreshes it.
const recheckDue = time.Second

func newLeaser(store *tokenstore.Store, opts Options) *leaser {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &leaser{store: store, opts: opts.withDefaults(), owner: hex.EncodeToString(b[:]),
		cache: map[tokenstore.Key]cached{}, rejected: map[tokenstore.Key]string{}}
}

// requestOwner names one lease request: the process's owner plus a sequence number.
func (l *leaser) requestOwner() string {
	return l.owner + "-" + strconv.FormatInt(l.seq.Add(1), 10)
}

// token returns a valid access token for src.key, refreshing it if due.
func (l *leaser) token(ctx context.Context, src source) (string, error) {
	now := l.opts.Now()
	l.mu.Lock()
	e, ok := l.cache[src.key]
	l.mu.Unlock()
	if ok && !l.isRejected(src.key, e.cred.AccessToken) && (e.cred.FreshUntil(now.Add(l.opts.Margin)) || now.Before(e.recheck) && e.cred.FreshUntil(now.Add(l.opts.MinValidity))) {
		return e.cred.AccessToken, nil
	}
	v, err, _ := l.sf.Do(src.key.String(), func() (any, error) { return l.refresh(ctx, src) })
	if err != nil {
		return "", err
	}
	c := v.(tokenstore.Credential)
	l.remember(src.key, c)
	return c.AccessToken, nil
}

// remember caches a token this process got from the table or from WeChat.
func (l *leaser) remember(key tokenstore.Key, c tokenstore.Credential) {
	l.mu.Lock()
	if l.rejected[key] != c.AccessToken {
		l.cache[key] = cached{cred: c, recheck: l.opts.Now().Add(recheckDue)}
	}
	l.mu.Unlock()
}

// isRejected reports whether WeChat rejected token (the last one this process saw rejected for key).
func (l *leaser) isRejected(key tokenstore.Key, token string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return token != "" && l.rejected[key] == token
}

// forget drops a cached token (it was found invalid, or the account is gone).
func (l *leaser) forget(key tokenstore.Key) {
	l.mu.Lock()
	delete(l.cache, key)
	l.mu.Unlock()
}

func (l *leaser) refresh(ctx context.Context, src source) (tokenstore.Credential, error) {
	log := logging.From(ctx)
	deadline := l.opts.Now().Add(l.opts.WaitFor)
	tryLease := true
	for {
		now := l.opts.Now()
		var (
			cur     tokenstore.Credential
			granted bool
			err     error
		)
		owner := l.requestOwner()
		if tryLease {
			cur, granted, err = l.store.AcquireLease(ctx, tokenstore.LeaseRequest{
				Key: src.key, Owner: owner, For: l.opts.LeaseFor,
				DueBefore: now.Add(l.opts.Margin), MustExist: src.mustExist,
			})
		} else {
			cur, err = l.store.Credential(ctx, src.key)
		}
		if err != nil {
			return tokenstore.Credential{}, err
		}
		if granted {
			return l.refreshHeld(ctx, src, cur, owner)
		}
		if src.mustExist && cur.Status != "" && cur.Status != tokenstore.StatusAuthorized {
			return tokenstore.Credential{}, &NotAuthorizedError{Key: src.key, Status: cur.Status}
		}
		// Someone else refreshed it already, or is refreshing a token that still has some life: use it.
		if cur.FreshUntil(now.Add(l.opts.MinValidity)) {
			if !l.isRejected(src.key, cur.AccessToken) {
				return cur, nil
			}
			// WeChat rejected it but the table does not show that (our invalidation failed or is still on
			// its way): mark it now, conditionally, so the lease becomes grantable instead of waiting forever.
			if _, err := l.store.Invalidate(ctx, src.key, cur.AccessToken); err != nil {
				return tokenstore.Credential{}, err
			}
			tryLease = true
			continue
		}
		if now.After(deadline) {
			return tokenstore.Credential{}, fmt.Errorf("token %s: %w", src.key, ErrRefreshTimeout)
		}
		// Wait for the holder; try for the lease again once it looks free (released or expired).
		tryLease = cur.LeaseOwner == "" || cur.LeaseUntil < now.UnixMilli()
		if !tryLease {
			log.Debug("waiting for token refresh by another caller", "credential", src.key.String())
		}
		jitter := time.Duration(mrand.Int64N(int64(l.opts.Poll)/2 + 1))
		select {
		case <-ctx.Done():
			return tokenstore.Credential{}, fmt.Errorf("token %s: %w", src.key, ctx.Err())
		case <-time.After(l.opts.Poll + jitter):
		}
	}
}

// refreshIfDue makes one attempt at the lease (no waiting) and refreshes if granted.
func (l *leaser) refreshIfDue(ctx context.Context, src source, dueBefore time.Time) (tokenstore.Credential, bool, error) {
	owner := l.requestOwner()
	cur, granted, err := l.store.AcquireLease(ctx, tokenstore.LeaseRequest{
		Key: src.key, Owner: owner, For: l.opts.LeaseFor, DueBefore: dueBefore, MustExist: src.mustExist,
	})
	if err != nil {
		return tokenstore.Credential{}, false, err
	}
	if !granted {
		if src.mustExist && cur.Status != "" && cur.Status != tokenstore.StatusAuthorized {
			return tokenstore.Credential{}, false, &NotAuthorizedError{Key: src.key, Status: cur.Status}
		}
		return cur, false, nil
	}
	c, err := l.refreshHeld(ctx, src, cur, owner)
	return c, err == nil, err
}

// refreshHeld runs with the lease held: call WeChat, store the result, give the lease back. The WeChat part
// is bounded well inside the lease, so nobody else can take it over while we still call; the store part
// runs on a context of its own, so a token WeChat has issued (and a refresh token it may have rotated) is
// never lost to the caller's deadline.
func (l *leaser) refreshHeld(ctx context.Context, src source, cur tokenstore.Credential, owner string) (tokenstore.Credential, error) {
	fctx, cancel := context.WithTimeout(ctx, l.opts.LeaseFor*3/4)
	f, err := src.fetch(fctx, cur)
	cancel()
	if err != nil {
		// Release on a context of its own: the caller's may be what just ran out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := l.store.ReleaseLease(rctx, src.key, owner); rerr != nil {
			logging.From(ctx).Warn("release lease failed; it will expire", "credential", src.key.String(), "error", rerr.Error())
		}
		return tokenstore.Credential{}, err
	}
	commit := tokenstore.Commit{
		Key: src.key, Owner: owner,
		AccessToken: f.AccessToken, ExpiresAt: l.opts.Now().Add(f.ExpiresIn),
		Set: f.Set,
	}
	if src.usedRefreshToken {
		commit.UsedRefreshToken, commit.RefreshToken = cur.RefreshToken, f.RefreshToken
	}
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	stored, err := l.store.CommitToken(ctx, commit)
	if errors.Is(err, tokenstore.ErrStale) {
		// Someone stored a newer token (or re-authorized the account) meanwhile: theirs wins.
		logging.From(ctx).Info("refreshed token superseded before it was stored", "credential", src.key.String())
		now, err := l.store.Credential(ctx, src.key)
		if err != nil {
			return tokenstore.Credential{}, err
		}
		if now.FreshUntil(l.opts.Now()) && !l.isRejected(src.key, now.AccessToken) {
			return now, nil
		}
		return tokenstore.Credential{}, fmt.Errorf("token %s: %w", src.key, tokenstore.ErrStale)
	}
	if err != nil {
		return tokenstore.Credential{}, err
	}
	return stored, nil
}

// invalidate handles a 40001/42001 answer to a call made with token: mark it unusable in the table if it is
// still the stored one, and forget it here, so the next token() refreshes (once, across all callers).
func (l *leaser) invalidate(ctx context.Context, key tokenstore.Key, token string) error {
	l.mu.Lock()
	l.rejected[key] = token
	if e, ok := l.cache[key]; ok && e.cred.AccessToken == token {
		delete(l.cache, key)
	}
	l.mu.Unlock()
	// On a context of its own: a caller near its deadline must still get the table marked.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	did, err := l.store.Invalidate(ctx, key, token)
	if err != nil {
		return err
	}
	if did {
		logging.From(ctx).Info("access token invalidated after WeChat rejected it", "credential", key.String())
	}
	return nil
}

// NotAuthorizedError means the authorizer is revoked or must re-authorize; no token can be had.
type NotAuthorizedError struct {
	Key    tokenstore.Key
	Status string
	Cause  error // WeChat's answer, when it was the reason
}

func (e *NotAuthorizedError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("authorizer %s is %s: %v", e.Key.PK, e.Status, e.Cause)
	}
	return fmt.Sprintf("authorizer %s is %s", e.Key.PK, e.Status)
}

func (e *NotAuthorizedError) Unwrap() error { return e.Cause }

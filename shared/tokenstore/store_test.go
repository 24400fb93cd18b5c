package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/tokenstore"
)

func newStore(t *testing.T) *tokenstore.Store {
	t.Helper()
	db := testenv.DynamoDB(t)
	return tokenstore.New(db, testenv.Table(t, db))
}

func TestTicketOlderPushNeverOverwritesNewer(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Ticket(ctx, "wxc"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("empty store: want ErrNotFound, got %v", err)
	}
	mustPut := func(ticket string, ct int64, want bool) {
		t.Helper()
		stored, err := s.PutTicket(ctx, "wxc", ticket, ct)
		if err != nil {
			t.Fatal(err)
		}
		if stored != want {
			t.Fatalf("PutTicket(%s, %d) stored=%v, want %v", ticket, ct, stored, want)
		}
	}
	mustPut("t-200", 200, true)
	mustPut("t-100", 100, false) // older, arrives late
	mustPut("t-200-retry", 200, false)
	got, err := s.Ticket(ctx, "wxc")
	if err != nil || got.Ticket != "t-200" || got.CreateTime != 200 {
		t.Fatalf("after older push: got %+v, %v; want t-200", got, err)
	}
	mustPut("t-300", 300, true)
	if got, _ := s.Ticket(ctx, "wxc"); got.Ticket != "t-300" {
		t.Fatalf("newer push not stored: %+v", got)
	}
}

func TestTicketConcurrentPushesKeepTheNewest(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 1; i <= 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := s.PutTicket(ctx, "wxc", fmt.Sprintf("t-%d", i), int64(1000+i)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if got, _ := s.Ticket(ctx, "wxc"); got.Ticket != "t-40" {
		t.Fatalf("want the newest ticket t-40, got %+v", got)
	}
}

func TestLeaseIsExclusiveUntilItExpires(t *testing.T) {
	s := newStore(t)
	now := time.Now()
	s.Now = func() time.Time { return now } // the lease's clock: moved below instead of slept on
	ctx := context.Background()
	key := tokenstore.ComponentTokenKey("wxc")
	req := func(owner string) tokenstore.LeaseRequest {
		return tokenstore.LeaseRequest{Key: key, Owner: owner, For: time.Minute, DueBefore: now.Add(time.Minute)}
	}
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.AcquireLease(ctx, req(fmt.Sprintf("o%d", i)))
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 1 {
		t.Fatalf("%d callers got the lease, want exactly 1", granted.Load())
	}
	now = now.Add(59 * time.Second)
	cur, ok, err := s.AcquireLease(ctx, req("late"))
	if err != nil || ok {
		t.Fatalf("lease taken while held: ok=%v err=%v", ok, err)
	}
	if cur.LeaseOwner == "" || cur.LeaseOwner == "late" {
		t.Fatalf("refused caller should see the holder, got %q", cur.LeaseOwner)
	}
	// The holder "dies": once the lease expires someone else takes over.
	now = now.Add(2 * time.Second)
	if _, ok, err := s.AcquireLease(ctx, req("successor")); err != nil || !ok {
		t.Fatalf("expired lease not taken over: ok=%v err=%v", ok, err)
	}
}

// Issue 7, item 5: the lease write was applied but its answer lost; the SDK's retry is refused by our own
// lease. "Refused, and the holder is me" is a grant; another holder's lease is still a refusal.
func TestLostAnswerToTheLeaseWriteIsAGrant(t *testing.T) {
	db, faults := testenv.DynamoDBWithFaults(t)
	s := tokenstore.New(db, testenv.Table(t, db))
	ctx := context.Background()
	key := tokenstore.ComponentTokenKey("wxc")
	faults.LoseAnswers(1, func(op string, body []byte) bool {
		return op == "UpdateItem" && strings.Contains(string(body), "LeaseOwner")
	})
	_, ok, err := s.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "req-1", For: time.Minute, DueBefore: time.Now().Add(time.Minute)})
	if err != nil || !ok || faults.Lost() != 1 {
		t.Fatalf("lease with a lost answer: granted %v, err %v, answers lost %d", ok, err, faults.Lost())
	}
	if _, ok, _ := s.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "req-2", For: time.Minute, DueBefore: time.Now().Add(time.Minute)}); ok {
		t.Fatal("a second request got the lease too")
	}
}

func TestLeaseRefusedWhileTokenIsFresh(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	key := tokenstore.ComponentTokenKey("wxc")
	_, ok, _ := s.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "a", For: time.Minute, DueBefore: time.Now()})
	if !ok {
		t.Fatal("lease on empty item refused")
	}
	if _, err := s.CommitToken(ctx, tokenstore.Commit{Key: key, Owner: "a", AccessToken: "tok1", ExpiresAt: time.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cur, ok, err := s.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "b", For: time.Minute, DueBefore: time.Now().Add(10 * time.Minute)})
	if err != nil || ok {
		t.Fatalf("lease granted on a fresh token: ok=%v err=%v", ok, err)
	}
	if cur.AccessToken != "tok1" || cur.LeaseOwner != "" {
		t.Fatalf("refused caller should see the fresh token and no lease, got %+v", cur)
	}
	// Due once the margin reaches the expiry.
	if _, ok, _ := s.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "b", For: time.Minute, DueBefore: time.Now().Add(3 * time.Hour)}); !ok {
		t.Fatal("lease refused on a due token")
	}
}

func TestCommitNeverReplacesNewerToken(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	key := tokenstore.ComponentTokenKey("wxc")
	now := time.Now()
	if _, err := s.CommitToken(ctx, tokenstore.Commit{Key: key, Owner: "a", AccessToken: "newer", ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CommitToken(ctx, tokenstore.Commit{Key: key, Owner: "b", AccessToken: "older", ExpiresAt: now.Add(time.Hour)})
	if !errors.Is(err, tokenstore.ErrStale) {
		t.Fatalf("older commit: want ErrStale, got %v", err)
	}
	c, _ := s.Credential(ctx, key)
	if c.AccessToken != "newer" {
		t.Fatalf("stored %q, want newer", c.AccessToken)
	}
	if c.Version != 1 {
		t.Fatalf("version %d, want 1 (one successful write)", c.Version)
	}
}

func TestInvalidateOnlyTheCurrentToken(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	key := tokenstore.ComponentTokenKey("wxc")
	exp := time.Now().Add(2 * time.Hour)
	if _, err := s.CommitToken(ctx, tokenstore.Commit{Key: key, AccessToken: "current", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	did, err := s.Invalidate(ctx, key, "old-one")
	if err != nil || did {
		t.Fatalf("invalidating a replaced token: did=%v err=%v", did, err)
	}
	if c, _ := s.Credential(ctx, key); !c.FreshUntil(time.Now()) {
		t.Fatal("a stale invalidation knocked out the current token")
	}
	if did, err := s.Invalidate(ctx, key, "current"); err != nil || !did {
		t.Fatalf("invalidating the current token: did=%v err=%v", did, err)
	}
	c, _ := s.Credential(ctx, key)
	if c.FreshUntil(time.Now()) {
		t.Fatal("invalidated token still fresh")
	}
	// An invalidated token is due: the lease is granted at once.
	if _, ok, _ := s.AcquireLease(ctx, tokenstore.LeaseRequest{Key: key, Owner: "x", For: time.Minute, DueBefore: time.Now()}); !ok {
		t.Fatal("lease refused after invalidation")
	}
}

func TestReleaseLeaseOnlyByOwner(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	key := tokenstore.ComponentTokenKey("wxc")
	req := tokenstore.LeaseRequest{Key: key, Owner: "a", For: time.Minute, DueBefore: time.Now()}
	if _, ok, _ := s.AcquireLease(ctx, req); !ok {
		t.Fatal("lease refused")
	}
	if err := s.ReleaseLease(ctx, key, "intruder"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Credential(ctx, key); c.LeaseOwner != "a" {
		t.Fatalf("someone else's release removed the lease: %+v", c)
	}
	if err := s.ReleaseLease(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	req.Owner = "b"
	if _, ok, _ := s.AcquireLease(ctx, req); !ok {
		t.Fatal("released lease not available")
	}
}

// Issue 7, item 4: a late, older `unauthorized` push must not move RevokedAt backwards; otherwise an
// authorization older than the newest revocation would pass and revive the account.
func TestLateOlderRevocationDoesNotLowerRevokedAtAndRevive(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Second)
	put := func(at time.Time, code string) error {
		_, err := s.PutAuthorization(ctx, tokenstore.Authorization{AppID: "wxapp", RefreshToken: "rt-" + code, AuthCode: code,
			AccessToken: "at-" + code, ExpiresAt: time.Now().Add(2 * time.Hour), At: at})
		return err
	}
	if err := put(t0, "c0"); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Revoke(ctx, "wxapp", t0.Add(20*time.Second)); err != nil || !changed {
		t.Fatalf("revocation: changed %v, %v", changed, err)
	}
	// WeChat's retry of an older revocation arrives late.
	if changed, err := s.Revoke(ctx, "wxapp", t0.Add(10*time.Second)); err != nil || changed {
		t.Fatalf("older revocation: changed %v, %v (want no change)", changed, err)
	}
	a, _ := s.Authorizer(ctx, "wxapp")
	if a.RevokedAt != t0.Add(20*time.Second).UnixMilli() {
		t.Fatalf("RevokedAt moved backwards: %d", a.RevokedAt)
	}
	// An authorization older than the newest revocation stays dead.
	if err := put(t0.Add(15*time.Second), "c1"); !errors.Is(err, tokenstore.ErrStale) {
		t.Fatalf("authorization older than the newest revocation: want ErrStale, got %v", err)
	}
	if a, _ := s.Authorizer(ctx, "wxapp"); a.Status != tokenstore.StatusRevoked || a.RefreshToken != "" {
		t.Fatalf("revived: status %s", a.Status)
	}
	// A newer one is a genuine re-authorization.
	if err := put(t0.Add(30*time.Second), "c2"); err != nil {
		t.Fatal(err)
	}
}

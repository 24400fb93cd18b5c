// Package authorization turns a merchant's authorization into a stored authorizer bound to its tenant.
//
// The authorization code arrives twice: in the browser redirect to /auth/callback and in WeChat's
// `authorized` push (which WeChat retries until it is acknowledged). Both race for a claim on the code; the
// holder exchanges it (api_query_auth, api_get_authorizer_info) and stores the account; the others wait for
// that outcome. Three rules keep every authorization WeChat granted:
//
//   - Only a delivery that could recover decides. WeChat answers "code spent" (61009/61010) also when an
//     earlier exchange got through but its answer was lost. The push names the account and can recover its
//     refresh token (api_get_authorizer_info); the redirect cannot, so a redirect only notes the verdict on
//     the claim and leaves the ending to the push.
//   - Nothing WeChat issued lives only in memory. Every step takes its budget from the time left on the
//     invocation minus WriteReserve for the durable write after it, and api_query_auth's answer is written to
//     the claim before any further call. A holder cut off by its deadline leaves a claim the next delivery
//     finishes.
//   - The tenant comes from WeChat, not the browser. A pre_auth_code is issued for one tenant's link and
//     recorded; the push says which pre_auth_code the authorization used; only that pair binds (or moves)
//     an account to a tenant. The redirect shows the account only to the link that made the authorization.
package authorization

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Budgets. template.yaml's function timeouts are checked against them (infra/samtemplate).
const (
	// WriteReserve is kept back from every deadline for the durable writes that follow a WeChat call.
	WriteReserve = 2 * time.Second
	// MinExchange is the least time a delivery must have left, beyond WriteReserve, to take the claim and
	// exchange the code (one api_query_auth and the writes after it). With less, it only waits.
	MinExchange = 3 * time.Second
	// PushWait is how long the push waits for another delivery's exchange (WeChat waits 5 s for its answer
	// and sends the push again if it gets none).
	PushWait = 4 * time.Second
	// defaultDeadline stands in for an invocation's deadline when the context has none.
	defaultDeadline = 20 * time.Second
)

// WeChat is the part of the WeChat client authorization needs.
type WeChat interface {
	CreatePreAuthCode(ctx context.Context, componentToken, appID string) (wxapi.PreAuthCode, error)
	QueryAuth(ctx context.Context, componentToken, appID, authCode string) (wxapi.AuthorizationInfo, error)
	GetAuthorizerInfo(ctx context.Context, componentToken, appID, authorizerAppID string) (wxapi.AuthorizerDetails, error)
}

// ErrCodeFailed means the authorization code will never be exchanged (WeChat's verdict, given to a delivery
// that could not recover from it, or a code for another account than the push named).
var ErrCodeFailed = errors.New("authorization code could not be exchanged")

// ErrNotConfirmed means the redirect could not see the authorization finish in time: another delivery is
// still exchanging the code, or WeChat called the code spent and only its push can complete it. Nothing is
// lost; the page says so instead of guessing.
var ErrNotConfirmed = errors.New("authorization not confirmed yet")

// ErrCodeSpent (with ErrNotConfirmed) means WeChat called the code used or expired to a delivery that may not
// recover from that; only the code's `authorized` push can complete it.
var ErrCodeSpent = errors.New("WeChat reports the code used or expired; only its authorized push can complete it")

// DefaultPreAuthPerMinute bounds the pre_auth_codes all tenants together get from WeChat per minute.
const DefaultPreAuthPerMinute = 60

// Service completes and revokes authorizations.
type Service struct {
	store     *tokenstore.Store
	claims    claims
	preAuths  preAuths
	component *credentials.Component
	wechat    WeChat
	owner     string
	seq       atomic.Int64

	// Queue, when set, takes an `authorized` push whose exchange could not finish now (another delivery holds
	// the code, WeChat is busy): the push is acknowledged and the jobs function completes it, however many
	// times WeChat would have retried. Without it the push is left unacknowledged for WeChat to retry.
	Queue *jobs.Queue
	// RetryBase is the first delay of those jobs (jobs.Backoff); 0 = jobs.DefaultRetryBase.
	RetryBase time.Duration
	// Notifier tells the tenant when its account is authorized, updated or revoked (nil: nobody is told).
	Notifier *lifecycle.Notifier

	// PreAuthMinLife: a cached pre_auth_code is reused while it has at least this long to live. Default 5m.
	PreAuthMinLife time.Duration
	// PreAuthPerMinute bounds new pre_auth_codes platform-wide (PREAUTH_CODES_PER_MINUTE).
	PreAuthPerMinute int
	// Poll is how often a waiting delivery re-reads. Default 50ms.
	Poll time.Duration
	Now  func() time.Time
}

// New returns a Service on the store's table.
func New(store *tokenstore.Store, component *credentials.Component, wechat WeChat) *Service {
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := &Service{store: store, component: component, wechat: wechat, owner: hex.EncodeToString(b[:]),
		PreAuthMinLife: 5 * time.Minute, PreAuthPerMinute: DefaultPreAuthPerMinute, Poll: 50 * time.Millisecond, Now: time.Now}
	clock := func() time.Time { return s.Now() }
	s.claims = claims{t: store.Table(), now: clock}
	s.preAuths = preAuths{t: store.Table(), now: clock}
	return s
}

// requestOwner names one claim request (unique, so "refused, and the holder is me" means granted).
func (s *Service) requestOwner() string { return s.owner + "-" + strconv.FormatInt(s.seq.Add(1), 10) }

// PreAuthCode returns a pre_auth_code for one tenant's authorization link and when it expires. A tenant's
// code is reused across renders while it has PreAuthMinLife left and no authorization has spent it (WeChat
// accepts a pre_auth_code for one authorization only, so tenants never share one). New codes are bounded
// platform-wide per minute (ErrBusy) and recorded with their tenant before they are handed out.
func (s *Service) PreAuthCode(ctx context.Context, tenant string) (string, time.Time, error) {
	now := s.Now()
	appID := s.component.AppID()
	cached, err := s.preAuths.cached(ctx, appID, tenant)
	switch {
	case err == nil && cached.ExpiresAt > now.Add(s.PreAuthMinLife).UnixMilli():
		rec, err := s.preAuths.issued(ctx, cached.Code)
		if err != nil && !errors.Is(err, table.ErrNotFound) {
			return "", time.Time{}, err
		}
		if err == nil && rec.UsedAt == 0 && rec.Tenant == tenant {
			return cached.Code, time.UnixMilli(cached.ExpiresAt), nil
		}
	case err != nil && !errors.Is(err, table.ErrNotFound):
		return "", time.Time{}, err
	}
	if err := s.preAuths.takeSlot(ctx, appID, s.PreAuthPerMinute); err != nil {
		return "", time.Time{}, err
	}
	var pc wxapi.PreAuthCode
	err = s.component.Do(ctx, func(token string) error {
		var err error
		pc, err = s.wechat.CreatePreAuthCode(ctx, token, appID)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create pre_auth_code: %w", err)
	}
	expires := now.Add(time.Duration(pc.ExpiresIn) * time.Second)
	if err := s.preAuths.issue(ctx, pc.Code, tenant, expires); err != nil {
		return "", time.Time{}, err
	}
	if err := s.preAuths.cache(ctx, appID, tenant, pc.Code, expires); err != nil {
		logging.From(ctx).Warn("pre_auth_code not cached", "error", err.Error())
	}
	return pc.Code, expires, nil
}

// Authorized handles the authorized/updateauthorized push (authevents.Authorizations).
func (s *Service) Authorized(ctx context.Context, ev authevents.Event) error {
	if ev.AuthorizerAppID == "" {
		return errors.New("authorized push without AuthorizerAppid")
	}
	if ev.PreAuthCode != "" {
		if err := s.preAuths.spend(ctx, ev.PreAuthCode); err != nil {
			logging.From(ctx).Warn("spent pre_auth_code not recorded", "error", err.Error())
		}
	}
	err := s.push(ctx, AuthorizationJob{AppID: ev.AuthorizerAppID, Code: ev.AuthorizationCode,
		CreateTime: ev.CreateTime, PreAuthCode: ev.PreAuthCode, InfoType: ev.InfoType}, PushWait)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrCodeFailed):
		// A code WeChat refuses will be refused on every retry too: acknowledge; it is logged.
		logging.From(ctx).Error("authorization push not stored: code refused", "authorizer_appid", ev.AuthorizerAppID, "error", err.Error())
		return nil
	case s.Queue == nil:
		return err // not acknowledged: WeChat sends it again
	}
	job := AuthorizationJob{Envelope: jobs.Envelope{Type: JobType, Version: jobs.Version, Attempt: 1}, AppID: ev.AuthorizerAppID,
		Code: ev.AuthorizationCode, CreateTime: ev.CreateTime, PreAuthCode: ev.PreAuthCode, InfoType: ev.InfoType}
	if qerr := s.Queue.Send(ctx, job, jobs.Backoff(s.RetryBase, 1)); qerr != nil {
		return fmt.Errorf("%w (and it was not queued: %v)", err, qerr)
	}
	logging.From(ctx).Warn("authorization not completed now; queued for the jobs function", "authorizer_appid", ev.AuthorizerAppID, "error", err.Error())
	return nil
}

// JobType is the job that completes an `authorized` push later.
const JobType = "authorization"

// jobMaxAttempts bounds those jobs: with jobs.Backoff (10 s tripling to SQS's 15-minute cap) they span about 80
// minutes.
const jobMaxAttempts = 10

// AuthorizationJob is an `authorized` push to complete.
type AuthorizationJob struct {
	jobs.Envelope
	AppID       string `json:"appid"`
	Code        string `json:"code"`
	CreateTime  int64  `json:"create_time"`
	PreAuthCode string `json:"pre_auth_code,omitempty"`
	InfoType    string `json:"info_type,omitempty"` // authorized or updateauthorized: what the tenant is told
}

// push completes one push (or its job) and tells the tenant.
func (s *Service) push(ctx context.Context, j AuthorizationJob, wait time.Duration) error {
	at := time.Unix(j.CreateTime, 0)
	a, err := s.complete(ctx, delivery{code: j.Code, appID: j.AppID, at: at, after: at, preAuthCode: j.PreAuthCode, wait: wait})
	if err != nil {
		return err
	}
	typ := lifecycle.AccountAuthorized
	if j.InfoType == "updateauthorized" {
		typ = lifecycle.AccountPermissionsUpdated
	}
	if a.Status == tokenstore.StatusAuthorized && a.AuthCode == j.Code {
		// A notification that cannot be queued fails the push: WeChat (or the job) repeats it, the exchange is
		// found done, and the notification, with the same delivery id, is sent then.
		return s.Notifier.Send(ctx, lifecycle.AccountEvent(typ, a, at, j.Code, nil))
	}
	return nil
}

// HandleJob runs an authorization job (the jobs function).
func (s *Service) HandleJob(ctx context.Context, m jobs.Message) error {
	var j AuthorizationJob
	if err := m.Decode(&j); err != nil {
		return err
	}
	if j.AppID == "" || j.Code == "" || j.CreateTime == 0 {
		return jobs.Permanent(errors.New("authorization job without appid, code or create_time"))
	}
	err := s.push(ctx, j, PushWait)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrCodeFailed):
		return jobs.Permanent(err)
	}
	return jobs.Retry(jobs.Backoff(s.RetryBase, m.Attempt+1), jobMaxAttempts, err)
}

// Exchange completes (or finds completed) the exchange of code for the account appID, without binding a
// tenant: the message path's 全网发布 case, where WeChat's test account sends its own authorization code in a
// message. The code comes from a fan's text, so it never recovers a spent code into the stored account (that
// is the push's to do): a made-up code changes nothing.
func (s *Service) Exchange(ctx context.Context, code, appID string) (tokenstore.Authorizer, error) {
	return s.complete(ctx, delivery{code: code, appID: appID, at: s.Now(), wait: PushWait, noRecovery: true})
}

// Redirect is the browser's return to /auth/callback: the code, and what the signed state says.
type Redirect struct {
	Code        string
	Tenant      string    // the state's tenant
	PreAuthCode string    // the pre_auth_code the state's link offered
	IssuedAt    time.Time // when the state was issued (its page rendered): the authorization is later
	// WaitFor bounds how long the redirect waits for the exchange and for WeChat's push to confirm which
	// link the authorization came from.
	WaitFor time.Duration
}

// Result is what the redirect may show.
type Result struct {
	Authorizer tokenstore.Authorizer
	// Confirmed: WeChat's push says the authorization used this link's pre_auth_code, and the account is
	// bound to the link's tenant. Only then may the page show the account.
	Confirmed bool
}

// Redirect completes (or waits for) the exchange of the redirect's code, then waits for the push to confirm
// the authorization came from the redirect's link. It never binds a tenant itself.
func (s *Service) Redirect(ctx context.Context, r Redirect) (Result, error) {
	start := s.Now()
	// The grant came between the page and now. Its exact time comes with the push; until then anything
	// stored after the page may be newer. (Only the push marks the pre_auth_code spent: a redirect may carry
	// any code.)
	after := r.IssuedAt
	if after.IsZero() || after.After(start) {
		after = start
	}
	a, err := s.complete(ctx, delivery{code: r.Code, at: start, after: after, wait: r.WaitFor})
	if err != nil {
		return Result{}, err
	}
	end := start.Add(r.WaitFor)
	for a.AuthCode == r.Code && a.PreAuthCode == "" && s.Now().Before(end) {
		// Stored, but the push has not said which link it came from yet.
		if err := s.pause(ctx); err != nil {
			return Result{}, err
		}
		if a, err = s.store.Authorizer(ctx, a.AppID); err != nil {
			return Result{}, err
		}
	}
	return Result{Authorizer: a, Confirmed: confirmed(a, r)}, nil
}

// Confirmed reports whether a stored account may be shown to the redirect r (see Result.Confirmed).
func Confirmed(a tokenstore.Authorizer, r Redirect) bool { return confirmed(a, r) }

func confirmed(a tokenstore.Authorizer, r Redirect) bool {
	return a.AuthCode == r.Code && r.PreAuthCode != "" && a.PreAuthCode == r.PreAuthCode &&
		r.Tenant != "" && a.Tenant == r.Tenant
}

// Outcome reads what became of a code already exchanged (for a reload of the result page).
func (s *Service) Outcome(ctx context.Context, code string) (tokenstore.Authorizer, error) {
	cl, err := s.claims.get(ctx, code)
	if err != nil {
		return tokenstore.Authorizer{}, err
	}
	switch {
	case cl.Done && cl.AppID == "":
		return tokenstore.Authorizer{}, fmt.Errorf("%w: %s", ErrCodeFailed, cl.FailReason)
	case !cl.Done:
		return tokenstore.Authorizer{}, ErrNotConfirmed
	}
	return s.store.Authorizer(ctx, cl.AppID)
}

// delivery is one arrival of an authorization code.
type delivery struct {
	code        string
	appID       string    // from the push; "" from the redirect
	at          time.Time // when WeChat granted it (push CreateTime), or when the redirect arrived
	after       time.Time // the earliest it can have been granted (the push: at; the redirect: its page)
	preAuthCode string    // from the push: the pre_auth_code the authorization used
	wait        time.Duration
	noRecovery  bool // never recover a spent code from api_get_authorizer_info (the code's origin is not WeChat's push)
}

// canRecover reports whether d may turn "code spent" into the account's current refresh token.
func (d delivery) canRecover() bool { return d.appID != "" && !d.noRecovery }

// deadline is when the invocation ends: writes must be done by then.
func (s *Service) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return s.Now().Add(defaultDeadline)
}

// complete exchanges (or waits for the exchange of) a code and returns the stored account.
func (s *Service) complete(ctx context.Context, d delivery) (tokenstore.Authorizer, error) {
	if d.code == "" {
		return tokenstore.Authorizer{}, fmt.Errorf("%w: empty code", ErrCodeFailed)
	}
	deadline := s.deadline(ctx)
	waitEnd := s.Now().Add(d.wait)
	if latest := deadline.Add(-WriteReserve); waitEnd.After(latest) {
		waitEnd = latest
	}
	spentSeen := false
	var heldUntil int64 // unix ms: someone holds the claim until then; only read it meanwhile
	for {
		var (
			cl   Claim
			mine bool
			err  error
		)
		now := s.Now()
		if now.Add(MinExchange+WriteReserve).After(deadline) || now.UnixMilli() <= heldUntil {
			// Too little time left to exchange without risking WeChat's answer, or the claim is held: only look.
			cl, err = s.claims.get(ctx, d.code)
			if errors.Is(err, table.ErrNotFound) {
				cl, err = Claim{}, nil
			}
		} else {
			owner := s.requestOwner()
			cl, mine, err = s.claims.take(ctx, d.code, owner, deadline, d.canRecover(), d.preAuthCode, d.at)
			if err == nil && mine {
				a, err := s.exchange(ctx, d, cl, owner, deadline)
				if !errors.Is(err, errLeftToPush) {
					return a, err
				}
				spentSeen = true
				continue
			}
		}
		if err != nil {
			return tokenstore.Authorizer{}, err
		}
		if cl.Done {
			if cl.AppID == "" {
				return tokenstore.Authorizer{}, fmt.Errorf("%w: %s", ErrCodeFailed, cl.FailReason)
			}
			return s.settle(ctx, d, cl.AppID)
		}
		if d.preAuthCode != "" && cl.PreAuthCode == "" && cl.Owner != "" {
			if err := s.claims.notePush(ctx, d.code, d.preAuthCode, d.at); err != nil {
				return tokenstore.Authorizer{}, err
			}
		}
		heldUntil = cl.Until
		if !s.Now().Before(waitEnd) {
			if spentSeen || cl.Spent {
				return tokenstore.Authorizer{}, fmt.Errorf("%w: %w", ErrNotConfirmed, ErrCodeSpent)
			}
			return tokenstore.Authorizer{}, fmt.Errorf("%w: another delivery is still exchanging the code", ErrNotConfirmed)
		}
		if err := s.pause(ctx); err != nil {
			return tokenstore.Authorizer{}, err
		}
	}
}

func (s *Service) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.Poll):
		return nil
	}
}

// errLeftToPush: the redirect learned the code is spent and handed the claim to the push.
var errLeftToPush = errors.New("code spent; left to the push")

// settle finishes a delivery whose code another delivery exchanged: the push binds the tenant (it knows
// which pre_auth_code was used); the redirect only reads.
func (s *Service) settle(ctx context.Context, d delivery, appID string) (tokenstore.Authorizer, error) {
	if d.preAuthCode != "" {
		return s.bind(ctx, appID, d.code, d.preAuthCode, d.at)
	}
	return s.store.Authorizer(ctx, appID)
}

// WeChat's answers that mean the code itself is spent or dead: never exchangeable again.
const (
	codeInvalid = 61009 // unknown or already used
	codeExpired = 61010
)

var (
	errWrongAccount = errors.New("authorization code is for another account")
	errSpent        = &wxapi.Error{API: "api_query_auth", Code: codeInvalid, Msg: "code already reported spent (recorded on the claim)"}
)

// writeContext is the context of the durable writes after a WeChat call: not cut short by the caller's
// cancellation (WeChat has acted; what it gave us must land), but over by the invocation's deadline, after
// which Lambda may freeze the process mid-write.
func writeContext(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	end := time.Now().Add(WriteReserve)
	if deadline.Before(end) {
		end = deadline
	}
	return context.WithDeadline(context.WithoutCancel(ctx), end)
}

// exchange runs with the claim held until deadline: api_query_auth (unless a previous holder already got
// and persisted its answer), api_get_authorizer_info, one conditional write of the account, then the tenant.
func (s *Service) exchange(ctx context.Context, d delivery, cl Claim, owner string, deadline time.Time) (tokenstore.Authorizer, error) {
	log := logging.From(ctx)
	// WeChat calls end WriteReserve before the deadline; the writes after them have the reserve.
	callCtx, cancel := context.WithDeadline(ctx, deadline.Add(-WriteReserve))
	defer cancel()

	var (
		info           wxapi.AuthorizationInfo
		details        wxapi.AuthorizerDetails
		detailsKnown   bool
		detailsSkipped bool
		err            error
	)
	switch {
	case cl.Exchange != nil:
		log.Info("continuing an exchange whose api_query_auth answer was persisted", "authorizer_appid", cl.Exchange.AppID)
		info = cl.Exchange.info(s.Now())
	case cl.Spent:
		err = errSpent
	default:
		err = s.component.Do(callCtx, func(token string) error {
			var err error
			info, err = s.wechat.QueryAuth(callCtx, token, s.component.AppID(), d.code)
			return err
		})
		if err == nil {
			// The code is spent now: what WeChat gave for it is written down before anything else.
			wctx, wcancel := writeContext(ctx, deadline)
			if perr := s.claims.recordExchange(wctx, d.code, owner, exchangeOf(info, s.Now())); perr != nil {
				// Not on the claim: no further WeChat call before the account itself is stored.
				log.Warn("exchange not persisted on the claim; storing the account at once", "error", perr.Error())
				detailsSkipped = true
			}
			wcancel()
		}
	}
	if wxapi.IsCode(err, codeInvalid, codeExpired) {
		if !d.canRecover() {
			// Perhaps an exchange whose answer was lost spent it. The redirect cannot tell whose account this
			// is; the push (retried by WeChat until answered) can. Note it and leave the ending to the push.
			wctx, wcancel := writeContext(ctx, deadline)
			defer wcancel()
			if merr := s.claims.markSpent(wctx, d.code, owner); merr != nil {
				return tokenstore.Authorizer{}, merr
			}
			log.Warn("WeChat reports the authorization code spent; waiting for the push to recover it")
			return tokenstore.Authorizer{}, errLeftToPush
		}
		// The push names the account: if it is authorized, WeChat tells us its current refresh token.
		var derr error
		details, derr = s.authorizerInfo(callCtx, d.appID)
		switch {
		case derr == nil && details.Authorization.RefreshToken != "":
			log.Warn("authorization code already spent; recovered the refresh token from api_get_authorizer_info", "authorizer_appid", d.appID)
			info, err, detailsKnown = details.Authorization, nil, true
			info.AuthorizerAppID, info.AccessToken, info.ExpiresIn = d.appID, "", 0
		case derr == nil || wxapi.NeedsReauth(derr):
			err = fmt.Errorf("%w (and %s is not authorized now)", err, d.appID)
		default:
			err = derr // could not ask: not a verdict
		}
	}
	if err != nil {
		return tokenstore.Authorizer{}, s.failed(ctx, d, owner, deadline, err)
	}
	appID := info.Appid()
	if d.appID != "" && d.appID != appID {
		err := fmt.Errorf("%w: code belongs to %s, push said %s", errWrongAccount, appID, d.appID)
		return tokenstore.Authorizer{}, s.failed(ctx, d, owner, deadline, err)
	}
	if !detailsKnown && !detailsSkipped && callCtx.Err() == nil {
		var derr error
		if details, derr = s.authorizerInfo(callCtx, appID); derr == nil {
			detailsKnown = true
		} else {
			// The code is spent: store what we have (the refresh token matters most) rather than lose it.
			log.Warn("authorizer info not fetched; storing the authorization without it", "authorizer_appid", appID, "error", derr.Error())
		}
	}
	a := tokenstore.Authorization{
		AppID: appID, Kind: kind(details.Info), Info: accountInfo(details.Info), InfoKnown: detailsKnown,
		PermissionSets: info.PermissionSets(), AccessToken: info.AccessToken, RefreshToken: info.RefreshToken,
		ExpiresAt: s.Now().Add(time.Duration(info.ExpiresIn) * time.Second), AuthCode: d.code, At: d.at, After: d.after,
	}
	wctx, wcancel := writeContext(ctx, deadline)
	defer wcancel()
	stored, err := s.store.PutAuthorization(wctx, a)
	if errors.Is(err, tokenstore.ErrStale) {
		if stored, err = s.store.Authorizer(wctx, appID); err != nil {
			return tokenstore.Authorizer{}, err
		}
		if stored.AuthCode != d.code {
			// An authorization or revocation that may be later is stored; it wins.
			log.Info("authorization superseded by a later event", "authorizer_appid", appID)
			if _, err := s.claims.finish(wctx, d.code, owner, appID, ""); err != nil {
				log.Warn("auth code claim not finished", "error", err.Error())
			}
			return stored, nil
		}
		// This very authorization was stored by an earlier holder that did not get to finish the claim.
	} else if err != nil {
		// The exchange stays on the claim, which lapses at our deadline: the next delivery stores it.
		if rerr := s.claims.release(wctx, d.code, owner); rerr != nil {
			log.Warn("auth code claim not released; it lapses at the deadline", "error", rerr.Error())
		}
		return tokenstore.Authorizer{}, err
	} else {
		log.Info("authorizer stored", "authorizer_appid", appID, "kind", stored.Kind, "permission_sets", stored.PermissionSets)
	}
	done, err := s.claims.finish(wctx, d.code, owner, appID, "")
	if err != nil {
		// The account is stored; only the claim's bookkeeping failed. Once the claim lapses a later delivery
		// finds the account stored and finishes it.
		log.Warn("auth code claim not finished", "authorizer_appid", appID, "error", err.Error())
	}
	preAuth, grantedAt := d.preAuthCode, d.at
	if preAuth == "" && done.PreAuthCode != "" {
		preAuth, grantedAt = done.PreAuthCode, time.Unix(done.GrantedAt, 0) // the push noted them while we exchanged
	}
	if preAuth == "" {
		return stored, nil
	}
	return s.bind(wctx, appID, d.code, preAuth, grantedAt)
}

func (x *Exchange) info(now time.Time) wxapi.AuthorizationInfo {
	info := wxapi.AuthorizationInfo{AuthorizerAppID: x.AppID, AccessToken: x.AccessToken, RefreshToken: x.RefreshToken}
	if left := time.UnixMilli(x.ExpiresAt).Sub(now); x.AccessToken != "" && left > 0 {
		info.ExpiresIn = int(left / time.Second)
	} else {
		info.AccessToken = "" // expired meanwhile: fetched on first use
	}
	for _, id := range x.PermissionSets {
		var f wxapi.FuncInfo
		f.Category.ID = id
		info.FuncInfo = append(info.FuncInfo, f)
	}
	return info
}

// bind binds the stored authorization from code to the tenant its pre_auth_code was issued to, and records
// when WeChat granted it. A code we did not issue (an authorization started elsewhere) leaves the tenant as
// it is.
func (s *Service) bind(ctx context.Context, appID, code, preAuthCode string, grantedAt time.Time) (tokenstore.Authorizer, error) {
	log := logging.From(ctx)
	issued, err := s.preAuths.issued(ctx, preAuthCode)
	if errors.Is(err, table.ErrNotFound) {
		log.Warn("authorization used a pre_auth_code this platform did not issue; tenant unchanged", "authorizer_appid", appID)
		return s.store.Authorizer(ctx, appID)
	}
	if err != nil {
		return tokenstore.Authorizer{}, err
	}
	b, err := s.store.BindTenant(ctx, appID, code, preAuthCode, issued.Tenant, grantedAt)
	if errors.Is(err, tokenstore.ErrStale) {
		log.Info("a later authorization is stored; tenant not bound from an older one", "authorizer_appid", appID)
		return s.store.Authorizer(ctx, appID)
	}
	if err != nil {
		return tokenstore.Authorizer{}, err
	}
	if b.Moved() {
		log.Warn("account moved to another tenant by a re-authorization through that tenant's link",
			"authorizer_appid", appID, "from_tenant", b.From, "tenant", issued.Tenant)
	}
	return b.Authorizer, nil
}

// failed records a failed exchange. Only a verdict on the code itself, given to a delivery that cannot
// recover from it (the push knows the account and tried), or a code for another account, is final and
// recorded, so other deliveries stop waiting. Anything else (WeChat busy, no component token yet, our own
// deadline, DynamoDB) releases the claim, so another delivery or WeChat's retry of the push can still
// succeed; what the claim learned stays on it.
func (s *Service) failed(ctx context.Context, d delivery, owner string, deadline time.Time, err error) error {
	wctx, cancel := writeContext(ctx, deadline)
	defer cancel()
	if wxapi.IsCode(err, codeInvalid, codeExpired) || errors.Is(err, errWrongAccount) {
		if _, ferr := s.claims.finish(wctx, d.code, owner, "", err.Error()); ferr != nil {
			logging.From(ctx).Warn("auth code claim not finished", "error", ferr.Error())
		}
		return fmt.Errorf("%w: %w", ErrCodeFailed, err)
	}
	if rerr := s.claims.release(wctx, d.code, owner); rerr != nil {
		logging.From(ctx).Warn("auth code claim not released; it lapses at the deadline", "error", rerr.Error())
	}
	return fmt.Errorf("exchange authorization code: %w", err)
}

func (s *Service) authorizerInfo(ctx context.Context, appID string) (wxapi.AuthorizerDetails, error) {
	var d wxapi.AuthorizerDetails
	err := s.component.Do(ctx, func(token string) error {
		var err error
		d, err = s.wechat.GetAuthorizerInfo(ctx, token, s.component.AppID(), appID)
		return err
	})
	return d, err
}

// Unauthorized handles the unauthorized push: the account is revoked and its tokens wiped.
func (s *Service) Unauthorized(ctx context.Context, ev authevents.Event) error {
	if ev.AuthorizerAppID == "" {
		return errors.New("unauthorized push without AuthorizerAppid")
	}
	revoked, err := s.store.Revoke(ctx, ev.AuthorizerAppID, time.Unix(ev.CreateTime, 0))
	if err != nil {
		return err
	}
	logging.From(ctx).Info("authorizer revoked", "authorizer_appid", ev.AuthorizerAppID, "changed", revoked)
	if s.Notifier == nil {
		return nil
	}
	// Told for this push whether it changed the record or a repeat of it finds the record as it left it, so
	// a push left unacknowledged because the notification failed notifies when WeChat sends it again.
	a, err := s.store.Authorizer(ctx, ev.AuthorizerAppID)
	if err != nil {
		return err
	}
	at := time.Unix(ev.CreateTime, 0)
	if a.Status != tokenstore.StatusRevoked || a.RevokedAt != at.UnixMilli() {
		return nil // a later authorization or revocation is stored: this one is old news
	}
	return s.Notifier.Send(ctx, lifecycle.AccountEvent(lifecycle.AccountRevoked, a, at, fmt.Sprint(ev.CreateTime), nil))
}

func kind(info wxapi.AuthorizerInfo) string {
	if info.IsMiniProgram() {
		return tokenstore.KindMiniProgram
	}
	return tokenstore.KindOfficialAccount
}

func accountInfo(i wxapi.AuthorizerInfo) tokenstore.AccountInfo {
	a := tokenstore.AccountInfo{
		NickName: i.NickName, HeadImg: i.HeadImg, UserName: i.UserName, Alias: i.Alias,
		PrincipalName: i.PrincipalName, Signature: i.Signature, QRCodeURL: i.QRCodeURL,
		ServiceType: i.ServiceTypeInfo.ID, VerifyType: i.VerifyTypeInfo.ID,
	}
	if mp := i.MiniProgramInfo; mp != nil {
		a.Network = mp.Network
		for _, c := range mp.Categories {
			a.Categories = append(a.Categories, tokenstore.Category{First: c.First, Second: c.Second})
		}
	}
	return a
}

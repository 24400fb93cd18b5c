// Package authorization turns a merchant's authorization into a stored authorizer, whichever way the
// authorization code arrives: the browser redirect to /auth/callback (which knows the tenant) or the
// `authorized` push (which knows the appid). Both carry the same single-use code, so they race: the first
// to claim the code exchanges it and stores the account; the second waits for that result, and if it is the
// redirect, binds the tenant to it. Nothing is written twice, no newer tokens are overwritten, and the
// tenant binding is never lost.
package authorization

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// WeChat is the part of the WeChat client authorization needs.
type WeChat interface {
	CreatePreAuthCode(ctx context.Context, componentToken, appID string) (wxapi.PreAuthCode, error)
	QueryAuth(ctx context.Context, componentToken, appID, authCode string) (wxapi.AuthorizationInfo, error)
	GetAuthorizerInfo(ctx context.Context, componentToken, appID, authorizerAppID string) (wxapi.AuthorizerDetails, error)
}

// ErrCodeFailed means the authorization code could not be exchanged (expired, used, or refused by WeChat).
var ErrCodeFailed = errors.New("authorization code could not be exchanged")

// ErrTimeout means the other delivery of the same code did not finish in time.
var ErrTimeout = errors.New("timed out waiting for the authorization to be stored")

// Service completes and revokes authorizations.
type Service struct {
	store     *tokenstore.Store
	component *credentials.Component
	wechat    WeChat
	owner     string

	// PreAuthMinLife: a cached pre_auth_code is reused while it has at least this long to live. Default 5m.
	PreAuthMinLife time.Duration
	// ClaimFor is how long a code claim lasts if its holder dies. Default 20s.
	ClaimFor time.Duration
	// Poll is how often a waiting delivery re-reads. Default 50ms.
	Poll time.Duration
	Now  func() time.Time
}

// New returns a Service.
func New(store *tokenstore.Store, component *credentials.Component, wechat WeChat) *Service {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Service{store: store, component: component, wechat: wechat, owner: hex.EncodeToString(b[:]),
		PreAuthMinLife: 5 * time.Minute, ClaimFor: 20 * time.Second, Poll: 50 * time.Millisecond, Now: time.Now}
}

// PreAuthCode returns a pre_auth_code for one tenant's authorization link and when it expires. A tenant's
// code is reused across renders while it has PreAuthMinLife left and has not been spent by an authorization
// (WeChat accepts a pre_auth_code for one authorization only, so tenants never share one).
func (s *Service) PreAuthCode(ctx context.Context, tenant string) (string, time.Time, error) {
	now := s.Now()
	cached, err := s.store.PreAuthCode(ctx, s.component.AppID(), tenant)
	if err == nil && cached.ExpiresAt > now.Add(s.PreAuthMinLife).UnixMilli() {
		used, uerr := s.store.Used(ctx, preAuthUsedID(cached.Code))
		if uerr != nil {
			return "", time.Time{}, uerr
		}
		if !used {
			return cached.Code, time.UnixMilli(cached.ExpiresAt), nil
		}
	} else if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
		return "", time.Time{}, err
	}
	var pc wxapi.PreAuthCode
	err = s.component.Do(ctx, func(token string) error {
		var err error
		pc, err = s.wechat.CreatePreAuthCode(ctx, token, s.component.AppID())
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create pre_auth_code: %w", err)
	}
	expires := now.Add(time.Duration(pc.ExpiresIn) * time.Second)
	p := tokenstore.PreAuthCode{Code: pc.Code, ExpiresAt: expires.UnixMilli()}
	if err := s.store.PutPreAuthCode(ctx, s.component.AppID(), tenant, p); err != nil {
		logging.From(ctx).Warn("pre_auth_code not cached", "error", err.Error())
	}
	return pc.Code, expires, nil
}

func preAuthUsedID(code string) string { return "preauth:" + code }

// Delivery is one arrival of an authorization code.
type Delivery struct {
	Code        string
	AppID       string    // known from the push; empty from the redirect
	Tenant      string    // known from the redirect (signed state); empty from the push
	At          time.Time // when WeChat granted it (push CreateTime), or when the redirect arrived
	PreAuthCode string    // the pre_auth_code it used, if known: it is not reused afterwards
	// WaitFor bounds how long this delivery waits for the other one's exchange. Default 4s (WeChat waits
	// 5 s for a push answer).
	WaitFor time.Duration
}

// Complete exchanges (or waits for the exchange of) an authorization code and returns the stored account.
func (s *Service) Complete(ctx context.Context, d Delivery) (tokenstore.Authorizer, error) {
	if d.Code == "" {
		return tokenstore.Authorizer{}, fmt.Errorf("%w: empty code", ErrCodeFailed)
	}
	if d.At.IsZero() {
		d.At = s.Now()
	}
	wait := d.WaitFor
	if wait == 0 {
		wait = 4 * time.Second
	}
	if d.PreAuthCode != "" {
		// Spent: no page may offer it again.
		err := s.store.UseOnce(ctx, preAuthUsedID(d.PreAuthCode), s.Now().Add(24*time.Hour))
		if err != nil && !errors.Is(err, tokenstore.ErrUsed) {
			logging.From(ctx).Warn("used pre_auth_code not recorded", "error", err.Error())
		}
	}
	deadline := s.Now().Add(wait)
	for {
		claim, mine, err := s.store.ClaimCode(ctx, d.Code, s.owner, s.ClaimFor, d.Tenant)
		if err != nil {
			return tokenstore.Authorizer{}, err
		}
		if mine {
			return s.exchange(ctx, d)
		}
		if d.Tenant != "" && claim.Tenant != d.Tenant && !claim.Done {
			// Leave the tenant with the claim first: if we stop waiting, the exchanger still binds it.
			if err := s.store.NoteTenant(ctx, d.Code, d.Tenant); err != nil {
				return tokenstore.Authorizer{}, err
			}
			claim.Tenant = d.Tenant
		}
		if claim.Done {
			if claim.AppID == "" {
				return tokenstore.Authorizer{}, fmt.Errorf("%w: %s", ErrCodeFailed, claim.FailReason)
			}
			if d.Tenant != "" {
				return s.store.BindTenant(ctx, claim.AppID, d.Code, d.Tenant)
			}
			return s.store.Authorizer(ctx, claim.AppID)
		}
		if s.Now().After(deadline) {
			return tokenstore.Authorizer{}, ErrTimeout
		}
		select {
		case <-ctx.Done():
			return tokenstore.Authorizer{}, ctx.Err()
		case <-time.After(s.Poll):
		}
	}
}

// exchange runs with the code claimed: api_query_auth, api_get_authorizer_info, one conditional write. It is
// bounded well inside the claim's lifetime, so the claim cannot lapse while we still work on it.
func (s *Service) exchange(ctx context.Context, d Delivery) (tokenstore.Authorizer, error) {
	log := logging.From(ctx)
	xctx, cancel := context.WithTimeout(ctx, s.ClaimFor*3/4)
	defer cancel()
	var info wxapi.AuthorizationInfo
	err := s.component.Do(xctx, func(token string) error {
		var err error
		info, err = s.wechat.QueryAuth(xctx, token, s.component.AppID(), d.Code)
		return err
	})
	var details wxapi.AuthorizerDetails
	detailsErr := errors.New("not fetched")
	if wxapi.IsCode(err, codeInvalid) && d.AppID != "" {
		// The code is spent, perhaps by an exchange whose answer we never saw (a timeout, a claimant that
		// died). If the account is authorized, WeChat tells us its current refresh token: do not lose it.
		if details, detailsErr = s.authorizerInfo(xctx, d.AppID); detailsErr == nil && details.Authorization.RefreshToken != "" {
			log.Warn("authorization code already spent; recovered the refresh token from api_get_authorizer_info", "authorizer_appid", d.AppID)
			info, err = details.Authorization, nil
			info.AuthorizerAppID, info.AccessToken, info.ExpiresIn = d.AppID, "", 0
		}
	}
	if err != nil {
		return tokenstore.Authorizer{}, s.failed(ctx, d, err)
	}
	appID := info.Appid()
	if d.AppID != "" && d.AppID != appID {
		err := fmt.Errorf("%w: code belongs to %s, push said %s", errWrongAccount, appID, d.AppID)
		return tokenstore.Authorizer{}, s.failed(ctx, d, err)
	}
	if detailsErr != nil {
		details, detailsErr = s.authorizerInfo(xctx, appID)
	}
	if detailsErr != nil {
		// The code is spent: store what we have (the refresh token matters most) rather than lose it.
		log.Warn("authorizer info not fetched; storing the authorization without it", "authorizer_appid", appID, "error", detailsErr.Error())
	}
	a := tokenstore.Authorization{
		AppID: appID, Tenant: d.Tenant, Kind: kind(details.Info), Info: accountInfo(details.Info), InfoKnown: detailsErr == nil,
		PermissionSets: info.PermissionSets(), AccessToken: info.AccessToken, RefreshToken: info.RefreshToken,
		ExpiresAt: s.Now().Add(time.Duration(info.ExpiresIn) * time.Second), AuthCode: d.Code, At: d.At,
	}
	// Stored on a context of its own: WeChat has spent the code, so this write must not be lost to the
	// caller's deadline.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	ctx = wctx
	stored, err := s.store.PutAuthorization(ctx, a)
	if errors.Is(err, tokenstore.ErrStale) {
		// A later authorization or revocation of this account is already stored; it wins.
		log.Info("authorization superseded by a later event", "authorizer_appid", appID)
		_, _ = s.store.FinishCode(ctx, d.Code, s.owner, appID, "")
		return s.store.Authorizer(ctx, appID)
	}
	if err != nil {
		_ = s.store.ReleaseCode(ctx, d.Code, s.owner)
		return tokenstore.Authorizer{}, err
	}
	claim, err := s.store.FinishCode(ctx, d.Code, s.owner, appID, "")
	if err != nil {
		// The account is stored; only the claim's bookkeeping failed. Once the claim lapses a later delivery
		// re-exchanges the spent code and, knowing the appid, recovers as above.
		log.Warn("auth code claim not finished", "authorizer_appid", appID, "error", err.Error())
		return stored, nil
	}
	if claim.Tenant != "" && claim.Tenant != stored.Tenant {
		// The redirect claimed first or arrived while we exchanged, and left its tenant on the claim.
		if stored, err = s.store.BindTenant(ctx, appID, d.Code, claim.Tenant); err != nil {
			return stored, err
		}
	}
	log.Info("authorizer stored", "authorizer_appid", appID, "tenant", stored.Tenant, "kind", stored.Kind,
		"permission_sets", stored.PermissionSets)
	return stored, nil
}

// WeChat's answers that mean the code itself is bad: it will never be exchanged, however often we try.
const (
	codeInvalid = 61009 // unknown or already used
	codeExpired = 61010
)

var errWrongAccount = errors.New("authorization code is for another account")

// failed records a failed exchange. Only a verdict on the code itself (invalid, expired, another account's)
// is final and recorded, so the other delivery stops waiting; anything else (WeChat busy, no component
// token yet, our own deadline, DynamoDB) releases the claim, so the other delivery or WeChat's retry of
// the push can still succeed.
func (s *Service) failed(ctx context.Context, d Delivery, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if wxapi.IsCode(err, codeInvalid, codeExpired) || errors.Is(err, errWrongAccount) {
		_, _ = s.store.FinishCode(rctx, d.Code, s.owner, "", err.Error())
		return fmt.Errorf("%w: %w", ErrCodeFailed, err)
	}
	_ = s.store.ReleaseCode(rctx, d.Code, s.owner)
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

// Authorized handles the authorized/updateauthorized push (authevents.Authorizations).
func (s *Service) Authorized(ctx context.Context, ev authevents.Event) error {
	_, err := s.Complete(ctx, Delivery{
		Code: ev.AuthorizationCode, AppID: ev.AuthorizerAppID, At: time.Unix(ev.CreateTime, 0), PreAuthCode: ev.PreAuthCode,
	})
	if errors.Is(err, ErrCodeFailed) {
		// A code WeChat refuses will be refused on every retry too: acknowledge; it is logged. Anything
		// else is returned, so the push is not acknowledged and WeChat sends it again.
		logging.From(ctx).Error("authorization push not stored: code refused", "authorizer_appid", ev.AuthorizerAppID, "error", err.Error())
		return nil
	}
	return err
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
	return nil
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

package credentials

import (
	"context"
	"fmt"
	"time"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// AuthorizerAPI is the part of the WeChat client authorizer tokens need.
type AuthorizerAPI interface {
	AuthorizerToken(ctx context.Context, componentToken, appID, authorizerAppID, refreshToken string) (wxapi.AuthorizerToken, error)
	GetAuthorizerInfo(ctx context.Context, componentToken, appID, authorizerAppID string) (wxapi.AuthorizerDetails, error)
}

// Authorizers serves the access tokens of authorized accounts (authorizer_access_token), with the same
// single-flight lease as the component token. A refresh stores the (possibly rotated) refresh token in the
// same conditional write as the access token. When WeChat refuses the refresh token (61023, 61003, 42002)
// the account is marked needs_reauth and no longer refreshed.
type Authorizers struct {
	component *Component
	api       AuthorizerAPI
	store     *tokenstore.Store
	l         *leaser
	// OnNeedsReauth, when set, is told of each account this process newly marked needs_reauth (the
	// platform tells the account's tenant: shared/lifecycle).
	OnNeedsReauth func(ctx context.Context, appID, reason string)
}

// NewAuthorizers returns the authorizer token source.
func NewAuthorizers(store *tokenstore.Store, component *Component, api AuthorizerAPI, opts Options) *Authorizers {
	return &Authorizers{component: component, api: api, store: store, l: newLeaser(store, opts)}
}

func (a *Authorizers) source(appID string) source {
	return source{
		key: tokenstore.AuthorizerKey(appID), mustExist: true, usedRefreshToken: true,
		fetch: func(ctx context.Context, cur tokenstore.Credential) (fetched, error) { return a.fetch(ctx, appID, cur) },
	}
}

// Token returns a valid access token for the authorizer appID. A revoked account or one that must
// re-authorize gives a *NotAuthorizedError.
func (a *Authorizers) Token(ctx context.Context, appID string) (string, error) {
	return a.l.token(ctx, a.source(appID))
}

// Invalidate reports that WeChat rejected token (40001/42001) for appID.
func (a *Authorizers) Invalidate(ctx context.Context, appID, token string) error {
	return a.l.invalidate(ctx, tokenstore.AuthorizerKey(appID), token)
}

// Do calls fn with a valid token of appID; a token WeChat rejects is invalidated and fn retried once.
func (a *Authorizers) Do(ctx context.Context, appID string, fn func(token string) error) error {
	return withToken(ctx,
		func(ctx context.Context) (string, error) { return a.Token(ctx, appID) },
		func(ctx context.Context, tok string) error { return a.Invalidate(ctx, appID, tok) },
		fn)
}

// RefreshIfDue is the scheduled refresher's entry: one attempt at the lease of appID, granted only if its
// token expires before dueBefore. It reports whether this call refreshed the token; a token someone else
// is refreshing, or one not due yet, is left alone (false, nil). It never waits.
func (a *Authorizers) RefreshIfDue(ctx context.Context, appID string, dueBefore time.Time) (bool, error) {
	c, refreshed, err := a.l.refreshIfDue(ctx, a.source(appID), dueBefore)
	if err != nil || !refreshed {
		return false, err
	}
	a.l.remember(tokenstore.AuthorizerKey(appID), c)
	return true, nil
}

func (a *Authorizers) callRefresh(ctx context.Context, appID, refreshToken string) (wxapi.AuthorizerToken, error) {
	var t wxapi.AuthorizerToken
	err := a.component.Do(ctx, func(componentToken string) error {
		var err error
		t, err = a.api.AuthorizerToken(ctx, componentToken, a.component.AppID(), appID, refreshToken)
		return err
	})
	return t, err
}

// currentRefreshToken asks api_get_authorizer_info for the account's refresh token.
func (a *Authorizers) currentRefreshToken(ctx context.Context, appID string) (string, error) {
	var d wxapi.AuthorizerDetails
	err := a.component.Do(ctx, func(componentToken string) error {
		var err error
		d, err = a.api.GetAuthorizerInfo(ctx, componentToken, a.component.AppID(), appID)
		return err
	})
	return d.Authorization.RefreshToken, err
}

func (a *Authorizers) fetch(ctx context.Context, appID string, cur tokenstore.Credential) (fetched, error) {
	if cur.RefreshToken == "" {
		return fetched{}, &NotAuthorizedError{Key: tokenstore.AuthorizerKey(appID), Status: cur.Status}
	}
	t, err := a.callRefresh(ctx, appID, cur.RefreshToken)
	if wxapi.IsCode(err, 61023) {
		// Our refresh token may be stale while the account is fine: a call that timed out on our side after
		// WeChat had issued a new one, or a re-authorization not yet stored. WeChat tells the current one.
		current, ierr := a.currentRefreshToken(ctx, appID)
		switch {
		case ierr != nil && !wxapi.NeedsReauth(ierr):
			// Could not ask (busy, timeout): do not conclude anything; the next attempt asks again.
			return fetched{}, fmt.Errorf("refresh authorizer %s: refresh token refused and the current one could not be read: %w", appID, ierr)
		case current != "" && current != cur.RefreshToken:
			logging.From(ctx).Warn("refresh token refused; retrying with the one WeChat reports as current", "authorizer_appid", appID)
			t, err = a.callRefresh(ctx, appID, current)
		}
	}
	if wxapi.NeedsReauth(err) {
		reason := fmt.Sprintf("WeChat errcode %d on api_authorizer_token", wxapi.Code(err))
		marked, merr := a.store.MarkNeedsReauth(ctx, appID, cur.RefreshToken, reason)
		if merr != nil {
			return fetched{}, fmt.Errorf("%w (and marking needs_reauth failed: %v)", err, merr)
		}
		if marked {
			logging.From(ctx).Warn("authorizer must re-authorize", "authorizer_appid", appID, "errcode", wxapi.Code(err))
			metrics.Count(logging.From(ctx), map[string]float64{metrics.AuthorizersNeedReauth: 1})
			if a.OnNeedsReauth != nil {
				// Its own context: the refresh's may be nearly spent, and the account is marked only once.
				nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				a.OnNeedsReauth(nctx, appID, reason)
				cancel()
			}
		}
		a.l.forget(tokenstore.AuthorizerKey(appID))
		return fetched{}, &NotAuthorizedError{Key: tokenstore.AuthorizerKey(appID), Status: tokenstore.StatusNeedsReauth, Cause: err}
	}
	if err != nil {
		return fetched{}, fmt.Errorf("refresh authorizer %s: %w", appID, err)
	}
	expires := a.l.opts.Now().Add(time.Duration(t.ExpiresIn) * time.Second)
	return fetched{
		AccessToken: t.AccessToken, ExpiresIn: time.Duration(t.ExpiresIn) * time.Second, RefreshToken: t.RefreshToken,
		// Keep the account on the due index at its new expiry.
		Set: map[string]any{"DueShard": tokenstore.DueShard(appID), "DueAt": expires.Unix()},
	}, nil
}

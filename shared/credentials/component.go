package credentials

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// ErrNoTicket means no usable component_verify_ticket is stored. WeChat has been asked to push one
// (api_start_push_ticket); it arrives at the ticket URL within moments, after which calls succeed.
var ErrNoTicket = errors.New("no valid component_verify_ticket stored yet; asked WeChat to push one, try again shortly")

// ComponentAPI is the part of the WeChat client the component token needs.
type ComponentAPI interface {
	ComponentToken(ctx context.Context, appID, secret, ticket string) (wxapi.ComponentToken, error)
	StartPushTicket(ctx context.Context, appID, secret string) error
}

// Component serves the component_access_token of one third-party platform.
type Component struct {
	api    ComponentAPI
	store  *tokenstore.Store
	appID  string
	secret string
	l      *leaser
}

// NewComponent returns the component token source for appID.
func NewComponent(store *tokenstore.Store, api ComponentAPI, appID, secret string, opts Options) *Component {
	return &Component{api: api, store: store, appID: appID, secret: secret, l: newLeaser(store, opts)}
}

// AppID is the component appid.
func (c *Component) AppID() string { return c.appID }

func (c *Component) key() tokenstore.Key { return tokenstore.ComponentTokenKey(c.appID) }

// Token returns a valid component_access_token.
func (c *Component) Token(ctx context.Context) (string, error) {
	return c.l.token(ctx, source{key: c.key(), fetch: c.fetch})
}

func (c *Component) fetch(ctx context.Context, _ tokenstore.Credential) (fetched, error) {
	t, err := c.store.Ticket(ctx, c.appID)
	if errors.Is(err, tokenstore.ErrNotFound) {
		return fetched{}, c.askForTicket(ctx)
	}
	if err != nil {
		return fetched{}, err
	}
	tok, err := c.api.ComponentToken(ctx, c.appID, c.secret, t.Ticket)
	if wxapi.IsCode(err, 61005, 61006) { // ticket expired / invalid
		logging.From(ctx).Warn("stored ticket rejected by WeChat", "errcode", wxapi.Code(err))
		return fetched{}, c.askForTicket(ctx)
	}
	if err != nil {
		return fetched{}, fmt.Errorf("refresh component token: %w", err)
	}
	logging.From(ctx).Info("component token refreshed", "component_appid", c.appID, "expires_in", tok.ExpiresIn)
	return fetched{AccessToken: tok.AccessToken, ExpiresIn: time.Duration(tok.ExpiresIn) * time.Second}, nil
}

func (c *Component) askForTicket(ctx context.Context) error {
	// One request a minute is plenty (the push follows within seconds), however many instances find no ticket.
	minute := c.l.opts.Now().Truncate(time.Minute)
	err := c.store.Table().UseOnce(ctx, fmt.Sprintf("start_push_ticket:%s:%d", c.appID, minute.Unix()), minute.Add(time.Hour))
	if errors.Is(err, table.ErrUsed) {
		return ErrNoTicket
	}
	if err != nil {
		return fmt.Errorf("%w (and recording the push request failed: %v)", ErrNoTicket, err)
	}
	if err := c.api.StartPushTicket(ctx, c.appID, c.secret); err != nil {
		return fmt.Errorf("%w (and api_start_push_ticket failed: %v)", ErrNoTicket, err)
	}
	logging.From(ctx).Warn("no usable component_verify_ticket; asked WeChat to push one", "component_appid", c.appID)
	return ErrNoTicket
}

// Invalidate reports that WeChat rejected token (40001/42001): it is dropped if it is still the current one.
func (c *Component) Invalidate(ctx context.Context, token string) error {
	return c.l.invalidate(ctx, c.key(), token)
}

// Expiry is when the stored component token expires (zero when there is none, or it was invalidated).
func (c *Component) Expiry(ctx context.Context) (time.Time, error) {
	cur, err := c.store.Credential(ctx, c.key())
	if errors.Is(err, tokenstore.ErrNotFound) || err == nil && cur.ExpiresAt == 0 {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return cur.Expires(), nil
}

// Do calls fn with a valid component token. If WeChat answers that the token is invalid or expired, the
// token is invalidated and fn is called once more with a refreshed one.
func (c *Component) Do(ctx context.Context, fn func(token string) error) error {
	return withToken(ctx, c.Token, c.Invalidate, fn)
}

// withToken is Do's retry-once logic, shared with authorizer tokens.
func withToken(ctx context.Context, get func(context.Context) (string, error), invalidate func(context.Context, string) error, fn func(string) error) error {
	tok, err := get(ctx)
	if err != nil {
		return err
	}
	err = fn(tok)
	if !wxapi.IsInvalidToken(err) {
		return err
	}
	if ierr := invalidate(ctx, tok); ierr != nil {
		return fmt.Errorf("%w (invalidate failed: %v)", err, ierr)
	}
	if tok, err = get(ctx); err != nil {
		return err
	}
	return fn(tok)
}

// Package lifecycle tells a tenant's webhook about changes in its accounts' lives: an account authorized,
// its permissions updated, revoked, or in need of re-authorization, and a release campaign's app released or
// failed. A notification is a relay delivery (shared/relay: the same signature, headers and retries as the
// relayed messages) with a `notification` instead of a `message`, sent through the jobs queue so the event
// that caused it never waits on the merchant's server.
package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// Notification types.
const (
	AccountAuthorized         = "account.authorized"
	AccountPermissionsUpdated = "account.permissions_updated"
	AccountRevoked            = "account.revoked"
	AccountNeedsReauth        = "account.needs_reauth"
	CampaignAppReleased       = "campaign.app_released"
	CampaignAppFailed         = "campaign.app_failed"
)

// Event is one change to notify.
type Event struct {
	Type   string
	Tenant string // "" (an account no tenant authorized): nobody to tell
	AppID  string
	At     time.Time
	// Key makes the delivery id: the same change notified twice (a repeated push, a retried job) has the
	// same id, so the merchant can ignore the repeat. "" uses Type, AppID and At.
	Key     string
	Details map[string]any
}

// Sender queues deliveries (jobs.Queue).
type Sender interface {
	Send(ctx context.Context, v any, delay time.Duration) error
}

// Accounts reads an account's tenant (tokenstore.Store).
type Accounts interface {
	Authorizer(ctx context.Context, appID string) (tokenstore.Authorizer, error)
}

// Notifier sends notifications to tenants that have a webhook. Nil is a notifier that sends nothing.
type Notifier struct {
	Tenants  *tenants.Store
	Accounts Accounts // for NotifyAccount
	Queue    Sender
}

// NotifyAccount notifies a change of account appID to its tenant, with the account's kind, status and
// permission sets in the details. It logs a failure, and returns it for callers that can have the change
// retried (a WeChat push left unacknowledged, a job).
func (n *Notifier) NotifyAccount(ctx context.Context, typ, appID string, at time.Time, key string, details map[string]any) error {
	if n == nil {
		return nil
	}
	a, err := n.Accounts.Authorizer(ctx, appID)
	if err != nil {
		logging.From(ctx).Error("notification not queued: account not read", "notification", typ, "authorizer_appid", appID, "error", err.Error())
		return fmt.Errorf("notify %s of %s: %w", typ, appID, err)
	}
	return n.Send(ctx, AccountEvent(typ, a, at, key, details))
}

// AccountEvent is a notification about account a, with its kind, status, permission sets and nickname.
func AccountEvent(typ string, a tokenstore.Authorizer, at time.Time, key string, details map[string]any) Event {
	d := map[string]any{"kind": a.Kind, "status": a.Status, "permission_sets": a.PermissionSets, "nickname": a.Info.NickName}
	for k, v := range details {
		d[k] = v
	}
	return Event{Type: typ, Tenant: a.Tenant, AppID: a.AppID, At: at, Key: key, Details: d}
}

// Notify queues ev for its tenant's webhook. A tenant without a webhook is not told; a notification that
// cannot be queued is logged as an error with everything needed to resend it, and never fails the caller's
// work (the change itself is already stored).
func (n *Notifier) Notify(ctx context.Context, ev Event) { _ = n.Send(ctx, ev) }

// Send is Notify returning the failure too (it is logged either way).
func (n *Notifier) Send(ctx context.Context, ev Event) error {
	if n == nil || ev.Tenant == "" {
		return nil
	}
	err := n.send(ctx, ev)
	if err != nil {
		logging.From(ctx).With("notification", ev.Type, "tenant", ev.Tenant, "authorizer_appid", ev.AppID).
			Error("notification not queued", "error", err.Error(), "at", ev.At.Unix(), "details", ev.Details)
	}
	return err
}

func (n *Notifier) send(ctx context.Context, ev Event) error {
	t, err := n.Tenants.Get(ctx, ev.Tenant)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.Webhook == "" {
		return nil
	}
	key := ev.Key
	if key == "" {
		key = fmt.Sprint(ev.At.UnixMilli())
	}
	sum := sha256.Sum256([]byte(ev.Type + "\x00" + ev.AppID + "\x00" + key))
	d := relay.Delivery{ID: "n-" + hex.EncodeToString(sum[:12]), Tenant: ev.Tenant, AppID: ev.AppID,
		Notification: &relay.Notification{Type: ev.Type, At: ev.At.Unix(), Details: ev.Details}}
	// Attempt 0: the jobs function makes the first delivery, then retries as for a relayed message.
	job := relay.Job{Envelope: jobs.Envelope{Type: relay.JobType, Version: jobs.Version}, Delivery: d}
	if err := n.Queue.Send(ctx, job, 0); err != nil {
		return fmt.Errorf("queue notification %s: %w", d.ID, err)
	}
	logging.From(ctx).Info("notification queued", "notification", ev.Type, "delivery_id", d.ID, "tenant", ev.Tenant)
	return nil
}

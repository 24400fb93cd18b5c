package lifecycle_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
)

// queue records what would be sent to the jobs queue.
type queue struct {
	mu   sync.Mutex
	sent []relay.Job
}

func (q *queue) Send(_ context.Context, v any, _ time.Duration) error {
	b, _ := json.Marshal(v)
	var j relay.Job
	_ = json.Unmarshal(b, &j)
	q.mu.Lock()
	q.sent = append(q.sent, j)
	q.mu.Unlock()
	return nil
}

func TestNotifiesOnlyTenantsWithAWebhookWithStableIDs(t *testing.T) {
	db := testenv.DynamoDB(t)
	ts := tenants.New(table.New(db, testenv.Table(t, db)))
	ctx := context.Background()
	hook := "https://shop.example.com/wx"
	if _, err := ts.Set(ctx, "with-hook", tenants.Changes{Webhook: &hook}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Set(ctx, "no-hook", tenants.Changes{}); err != nil {
		t.Fatal(err)
	}
	q := &queue{}
	n := &lifecycle.Notifier{Tenants: ts, Queue: q}
	at := time.Unix(1796846400, 0)
	ev := lifecycle.Event{Type: lifecycle.AccountRevoked, Tenant: "with-hook", AppID: "wx0000000000000001", At: at, Key: "k1",
		Details: map[string]any{"status": "revoked"}}
	n.Notify(ctx, ev)
	n.Notify(ctx, ev) // the same change again: the same delivery id
	n.Notify(ctx, lifecycle.Event{Type: lifecycle.AccountRevoked, Tenant: "no-hook", AppID: "wx0000000000000002", At: at})
	n.Notify(ctx, lifecycle.Event{Type: lifecycle.AccountRevoked, Tenant: "", AppID: "wx0000000000000003", At: at})
	n.Notify(ctx, lifecycle.Event{Type: lifecycle.AccountRevoked, Tenant: "gone", AppID: "wx0000000000000004", At: at})
	ev.Key = "k2"
	n.Notify(ctx, ev)
	var nilNotifier *lifecycle.Notifier
	nilNotifier.Notify(ctx, ev) // nobody is told, nothing breaks

	if len(q.sent) != 3 {
		t.Fatalf("%d jobs queued, want 3 (only the tenant with a webhook)", len(q.sent))
	}
	a, b, c := q.sent[0], q.sent[1], q.sent[2]
	if a.Type != relay.JobType || a.Attempt != 0 || a.Delivery.Notification == nil || a.Delivery.Notification.Type != lifecycle.AccountRevoked ||
		a.Delivery.Notification.At != at.Unix() || a.Delivery.Tenant != "with-hook" || a.Delivery.Message != nil {
		t.Errorf("job %+v", a)
	}
	if a.Delivery.ID != b.Delivery.ID || a.Delivery.ID == c.Delivery.ID {
		t.Errorf("delivery ids %s %s %s: a repeat must keep its id, another change must not", a.Delivery.ID, b.Delivery.ID, c.Delivery.ID)
	}
}

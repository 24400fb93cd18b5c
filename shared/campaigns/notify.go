package campaigns

import (
	"context"
	"fmt"

	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/jobs"
)

// AuditNotifier continues a campaign when the message callback records an audit's verdict: it enqueues the
// app's job, which reads the verdict. Use its Notify as messages.Handler.OnAudit.
type AuditNotifier struct{ Queue *jobs.Queue }

// Notify enqueues the app of the campaign that submitted the audit, for a passed or rejected audit.
func (n AuditNotifier) Notify(ctx context.Context, appid string, l audits.Latest) error {
	if l.Campaign == "" || (l.Status != audits.StatusPassed && l.Status != audits.StatusFailed) {
		return nil
	}
	if err := n.Queue.Send(ctx, appJob(l.Campaign, appid, reasonEvent), 0); err != nil {
		return fmt.Errorf("continue campaign %s for %s: %w", l.Campaign, appid, err)
	}
	return nil
}

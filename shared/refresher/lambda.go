package refresher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/logging"
)

// HandleScheduled is the Lambda handler for the EventBridge schedule. A failed run returns its error (it
// shows in the function's Errors metric); every refresh is leased, so a retried run repeats nothing.
// Sweeps run after the refresh, on the same schedule.
func (r *Refresher) HandleScheduled(ctx context.Context, ev events.EventBridgeEvent) (Report, error) {
	log := r.logger().With("event_id", ev.ID)
	rep, err := r.run(ctx, log)
	for _, sweep := range r.Sweeps {
		if serr := sweep(logging.With(ctx, log)); serr != nil {
			log.Error("scheduled sweep failed", "error", serr.Error())
			err = errors.Join(err, serr)
		}
	}
	return rep, err
}

// SettingsFromEnv reads REFRESH_WINDOW (a duration, default 30m) and REFRESH_CONCURRENCY (default 32).
func (r *Refresher) SettingsFromEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv("REFRESH_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("REFRESH_WINDOW %q is not a positive duration", v)
		}
		r.Window = d
	}
	if v := getenv("REFRESH_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			return fmt.Errorf("REFRESH_CONCURRENCY %q is not a number from 1 to 1000", v)
		}
		r.Concurrency = n
	}
	return nil
}

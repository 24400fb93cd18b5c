// Package custommsg sends customer-service messages (客服消息) once per key: the 全网发布 check's
// "<code>_from_api" text, and whatever else must reach a fan exactly once however often the push that caused
// it is delivered. The first attempt is made at once; a failure worth retrying goes to the job queue
// (job type "custom_message") with backoff. A marker item per key, written conditionally, makes a message
// that was sent stay sent: a retried push, a duplicated job or a second instance finds it and stops.
//
// Once means once per successful send. A send whose answer is lost (a timeout after WeChat acted) cannot be
// told from one WeChat never got; it is retried, so in that one case the fan may get the message twice.
package custommsg

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/wxapi"
)

// JobType is the job that retries a send.
const JobType = "custom_message"

// MaxAttempts bounds the sends of one message (the first included); then the job goes to the dead-letter queue.
const MaxAttempts = 6

// Job is a message to send once.
type Job struct {
	jobs.Envelope
	Key     string              `json:"key"`   // what makes it once, e.g. "query_auth_code:<code>"
	AppID   string              `json:"appid"` // the sending account
	Kind    string              `json:"kind"`  // officialaccount or miniprogram (the types it may send differ)
	Message wxapi.CustomMessage `json:"message"`
}

// Tokens gives an authorized account's access token, retrying once with a fresh one after 40001.
type Tokens interface {
	Do(ctx context.Context, appID string, fn func(token string) error) error
}

// WeChat is the send API.
type WeChat interface {
	SendCustomMessage(ctx context.Context, authorizerToken, kind string, m wxapi.CustomMessage) error
}

// Sender sends messages once.
type Sender struct {
	Table  *table.Table
	Tokens Tokens
	WeChat WeChat
	Queue  *jobs.Queue
	// RetryBase is jobs.Backoff's base for retries of a failed send; 0 = jobs.DefaultRetryBase.
	RetryBase time.Duration
	Now       func() time.Time
}

// lease bounds how long one attempt holds the key: longer than a send with its token refresh.
const lease = 30 * time.Second

// markerTTL keeps a sent message's marker past any retry of what caused it.
const markerTTL = 7 * 24 * time.Hour

type marker struct {
	State  string `dynamodbav:"State"` // sending, sent, failed
	Owner  string `dynamodbav:"Owner"`
	Until  int64  `dynamodbav:"Until"`
	Reason string `dynamodbav:"Reason,omitempty"`
}

// markerKey hashes the key: it may carry a secret (a 全网发布 query_auth_code), which the table need not hold.
func markerKey(key string) table.Key {
	sum := sha256.Sum256([]byte(key))
	return table.Key{PK: "CUSTOMMSG#" + hex.EncodeToString(sum[:16]), SK: "CUSTOMMSG"}
}

// errBusy: another attempt holds the key right now.
var errBusy = errors.New("another attempt is sending this message")

// Send makes the first attempt at once. It returns nil when the message was sent (now or before), or when a
// retry is queued; an error means neither happened (the caller should fail, so that its own trigger is
// retried).
func (s *Sender) Send(ctx context.Context, j Job) error {
	j.Type, j.Version, j.Attempt = JobType, jobs.Version, 1 // the queued job is the second attempt
	err := s.attempt(ctx, j)
	if err == nil || isFinal(err) {
		return err
	}
	logging.From(ctx).Warn("customer-service message not sent; retrying through the job queue", "authorizer_appid", j.AppID, "error", err.Error())
	if qerr := s.Queue.Send(ctx, j, 0); qerr != nil {
		return fmt.Errorf("%w (and its retry was not queued: %v)", err, qerr)
	}
	return nil
}

// Handle runs a custom_message job.
func (s *Sender) Handle(ctx context.Context, m jobs.Message) error {
	var j Job
	if err := m.Decode(&j); err != nil {
		return err
	}
	if j.Key == "" || j.AppID == "" {
		return jobs.Permanent(errors.New("custom_message job without key or appid"))
	}
	err := s.attempt(ctx, j)
	switch {
	case err == nil:
		return nil
	case isFinal(err):
		return jobs.Permanent(err)
	}
	return jobs.Retry(jobs.Backoff(s.RetryBase, m.Attempt+1), MaxAttempts, err)
}

// finalError is a refusal that no retry changes (45015, 45047, 45162, an invalid openid, no account).
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

// IsRefused reports an error of Send that no retry changes: WeChat refused the message (window closed, quota
// used up, a type the account cannot send, an unknown fan), or it was refused before.
func IsRefused(err error) bool { return isFinal(err) }

func isFinal(err error) bool {
	var f *finalError
	return errors.As(err, &f)
}

// attempt sends j unless it was sent, holding the key while it does.
func (s *Sender) attempt(ctx context.Context, j Job) error {
	owner := newOwner()
	k := markerKey(j.Key)
	m, mine, err := s.take(ctx, k, owner)
	if err != nil {
		return err
	}
	if !mine {
		switch m.State {
		case "sent":
			return nil
		case "failed":
			return &finalError{fmt.Errorf("customer-service message refused before: %s", m.Reason)}
		}
		return errBusy
	}
	err = s.Tokens.Do(ctx, j.AppID, func(token string) error {
		return s.WeChat.SendCustomMessage(ctx, token, j.Kind, j.Message)
	})
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch {
	case err == nil:
		if ferr := s.finish(wctx, k, owner, "sent", ""); ferr != nil {
			// Sent is sent: retrying because the bookkeeping failed would message the fan again.
			logging.From(ctx).Warn("customer-service message sent but not recorded as sent", "error", ferr.Error())
		}
		return nil
	case refusal(err):
		if ferr := s.finish(wctx, k, owner, "failed", err.Error()); ferr != nil {
			return ferr
		}
		return &finalError{err}
	}
	if rerr := s.release(wctx, k, owner); rerr != nil {
		logging.From(ctx).Warn("customer-service marker not released; it lapses", "error", rerr.Error())
	}
	return err
}

// refusal: the message will be refused however often it is sent: the platform found it invalid (it never
// reached WeChat), or WeChat refused it for a reason a retry does not change. Anything else (WeChat busy, a
// token being refreshed elsewhere, DynamoDB) is retried.
func refusal(err error) bool {
	return errors.Is(err, wxapi.ErrInvalidMessage) || errors.Is(err, wxapi.ErrOutsideWindow) ||
		errors.Is(err, wxapi.ErrWindowQuota) || errors.Is(err, wxapi.ErrMessageType) ||
		wxapi.IsCode(err, 40003, 43004, 45008, 48001, 61007) || wxapi.NeedsReauth(err)
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) take(ctx context.Context, k table.Key, owner string) (marker, bool, error) {
	now := s.now()
	cond := expression.AttributeNotExists(expression.Name("PK")).
		Or(expression.Name("State").Equal(expression.Value("sending")).And(expression.Name("Until").LessThan(expression.Value(now.UnixMilli()))))
	upd := expression.Set(expression.Name("State"), expression.Value("sending")).
		Set(expression.Name("Owner"), expression.Value(owner)).
		Set(expression.Name("Until"), expression.Value(now.Add(lease).UnixMilli())).
		Set(expression.Name("PurgeAt"), expression.Value(now.Add(markerTTL).Unix()))
	_, err := s.Table.Update(ctx, k, upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		var m marker
		if old := table.RefusedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &m); err != nil {
				return marker{}, false, fmt.Errorf("decode customer-service marker: %w", err)
			}
		}
		return m, m.State == "sending" && m.Owner == owner, nil // our own write, its answer lost
	}
	if err != nil {
		return marker{}, false, fmt.Errorf("take customer-service marker: %w", err)
	}
	return marker{State: "sending", Owner: owner}, true, nil
}

func (s *Sender) finish(ctx context.Context, k table.Key, owner, state, reason string) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner))
	upd := expression.Set(expression.Name("State"), expression.Value(state))
	if reason != "" {
		upd = upd.Set(expression.Name("Reason"), expression.Value(reason))
	}
	if _, err := s.Table.Update(ctx, k, upd, &cond, types.ReturnValueNone); err != nil {
		return fmt.Errorf("record customer-service message %s: %w", state, err)
	}
	return nil
}

func (s *Sender) release(ctx context.Context, k table.Key, owner string) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner)).And(expression.Name("State").Equal(expression.Value("sending")))
	if err := s.Table.Delete(ctx, k, &cond); err != nil && !table.Refused(err) {
		return fmt.Errorf("release customer-service marker: %w", err)
	}
	return nil
}

func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

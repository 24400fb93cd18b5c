// Package jobs is the platform's work queue: one SQS queue and its dead-letter queue. A job is a JSON object
// with a "type" and a "version" (operators can send one with `aws sqs send-message`); the jobs function
// consumes batches with partial failures and runs each job's handler.
//
// Nothing is dropped silently. A handler that asks for a retry gets a new message with "attempt" counted up
// and a delay (SQS delays cap at 15 minutes), until its last attempt; a job that cannot run (malformed JSON,
// an unknown type or version, a handler's permanent failure, attempts or receives used up) is sent to the
// dead-letter queue with the reason in its message attributes, and logged. Anything unexpected (a panic, a
// failed re-enqueue) is reported as a batch item failure: SQS delivers it again.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
)

// Version is the job JSON version this platform writes and reads.
const Version = 1

// MaxReceives is the queue's maxReceiveCount (template.yaml, checked by a test): on its last receive a job
// that fails is sent to the dead-letter queue by the consumer, with the reason, instead of by SQS, without.
const MaxReceives = 5

// maxDelay is SQS's longest message delay.
const maxDelay = 15 * time.Minute

// Envelope is what every job carries.
type Envelope struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
	// Attempt counts the runs before this one (0 on the first): the consumer sets it when it re-enqueues.
	Attempt int `json:"attempt,omitempty"`
}

// Queue sends jobs. DLQURL may be empty where nothing is ever sent there (the message function).
type Queue struct {
	SQS    *sqs.Client
	URL    string
	DLQURL string
}

// Send enqueues job (a struct embedding Envelope, or anything marshalling to a job) after delay.
func (q *Queue) Send(ctx context.Context, job any, delay time.Duration) error {
	body, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	return q.send(ctx, q.URL, body, delay, nil)
}

// SendBatch enqueues jobs after delay, ten to a SendMessageBatch call. Entries SQS refuses are sent again
// once; an error means some were not sent (which ones is not said: the caller's records must tell).
func (q *Queue) SendBatch(ctx context.Context, batch []any, delay time.Duration) error {
	if q.URL == "" {
		return errors.New("send jobs: no queue URL configured (QUEUE_URL)")
	}
	entries := make([]sqstypes.SendMessageBatchRequestEntry, 0, len(batch))
	for i, job := range batch {
		body, err := json.Marshal(job)
		if err != nil {
			return fmt.Errorf("encode job: %w", err)
		}
		e := sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
		if delay > 0 {
			e.DelaySeconds = int32(min(delay, maxDelay) / time.Second)
		}
		entries = append(entries, e)
	}
	for start := 0; start < len(entries); start += 10 {
		chunk := entries[start:min(start+10, len(entries))]
		for try := 0; len(chunk) > 0; try++ {
			out, err := q.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: chunk})
			if err != nil {
				return fmt.Errorf("send jobs: %w", err)
			}
			if len(out.Failed) == 0 {
				break
			}
			if try == 1 {
				f := out.Failed[0]
				return fmt.Errorf("send jobs: %d not sent (%s: %s)", len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
			}
			failed := map[string]bool{}
			for _, f := range out.Failed {
				failed[aws.ToString(f.Id)] = true
			}
			var again []sqstypes.SendMessageBatchRequestEntry
			for _, e := range chunk {
				if failed[aws.ToString(e.Id)] {
					again = append(again, e)
				}
			}
			chunk = again
		}
	}
	return nil
}

func (q *Queue) send(ctx context.Context, queueURL string, body []byte, delay time.Duration, attrs map[string]sqstypes.MessageAttributeValue) error {
	if queueURL == "" {
		return errors.New("send job: no queue URL configured (QUEUE_URL / DLQ_URL)")
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body)), MessageAttributes: attrs}
	if delay > 0 {
		in.DelaySeconds = int32(min(delay, maxDelay) / time.Second)
	}
	if _, err := q.SQS.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send job: %w", err)
	}
	return nil
}

// Dead-letter attributes: why, what, from which message.
const (
	AttrReason    = "wxtpp-reason"
	AttrType      = "wxtpp-job-type"
	AttrMessageID = "wxtpp-source-message-id"
)

// dead sends a job's body to the dead-letter queue with the reason.
func (q *Queue) dead(ctx context.Context, m Message, reason string) error {
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	attrs := map[string]sqstypes.MessageAttributeValue{AttrReason: str(reason), AttrMessageID: str(m.ID)}
	if m.Type != "" {
		attrs[AttrType] = str(m.Type)
	}
	return q.send(ctx, q.DLQURL, m.Body, 0, attrs)
}

// Message is one job being run.
type Message struct {
	ID           string // the SQS message id
	Body         []byte // the job's JSON
	Type         string
	Attempt      int // runs before this one
	ReceiveCount int // SQS receives of this message, this one included
}

// Decode decodes the job's JSON into v (a struct embedding Envelope).
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Body, v); err != nil {
		return Permanent(fmt.Errorf("decode %s job: %w", m.Type, err))
	}
	return nil
}

// Handler runs one job. nil means done; Retry and Permanent say what to do on failure; any other error is
// unexpected and the message is delivered again.
type Handler func(ctx context.Context, m Message) error

type retryError struct {
	after       time.Duration
	maxAttempts int
	err         error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Retry asks to run the job again after a delay, as long as it has had fewer than maxAttempts runs in all;
// then it goes to the dead-letter queue with err as the reason.
func Retry(after time.Duration, maxAttempts int, err error) error {
	return &retryError{after: after, maxAttempts: maxAttempts, err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent sends the job to the dead-letter queue with err as the reason: running it again cannot help.
func Permanent(err error) error { return &permanentError{err} }

// Consumer runs the jobs of an SQS batch.
type Consumer struct {
	Queue    *Queue
	Handlers map[string]Handler
	Logger   *slog.Logger
	// Reserve is the time a job needs to run: with less left before the invocation's deadline, the rest of
	// the batch is not started but handed back to SQS, rather than cut off half-way. Default DefaultReserve.
	Reserve time.Duration
}

// DefaultReserve is Consumer.Reserve's default.
const DefaultReserve = 10 * time.Second

// Handle is the Lambda handler for the queue's event source (ReportBatchItemFailures).
func (c *Consumer) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	reserve := c.Reserve
	if reserve <= 0 {
		reserve = DefaultReserve
	}
	for i, r := range ev.Records {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < reserve {
			c.logger().Warn("too little time left in this invocation; the rest of the batch goes back to the queue",
				"left", time.Until(d).Round(time.Millisecond).String(), "jobs", len(ev.Records)-i)
			for _, r := range ev.Records[i:] {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
			break
		}
		if err := c.one(ctx, r); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

// one runs one record; an error means "deliver it again".
func (c *Consumer) one(ctx context.Context, r events.SQSMessage) (err error) {
	log := c.logger().With("message_id", r.MessageId)
	m := Message{ID: r.MessageId, Body: []byte(r.Body)}
	m.ReceiveCount, _ = strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
	var env Envelope
	if jerr := json.Unmarshal(m.Body, &env); jerr != nil {
		return c.toDLQ(ctx, log, m, "malformed job: not a JSON object: "+jerr.Error())
	}
	m.Type, m.Attempt = env.Type, env.Attempt
	log = log.With("job_type", env.Type, "attempt", env.Attempt)
	ctx = logging.With(ctx, log)
	h, ok := c.Handlers[env.Type]
	switch {
	case env.Type == "":
		return c.toDLQ(ctx, log, m, `malformed job: no "type"`)
	case !ok:
		return c.toDLQ(ctx, log, m, fmt.Sprintf("unknown job type %q", env.Type))
	case env.Version != 0 && env.Version != Version: // left out: the current version
		return c.toDLQ(ctx, log, m, fmt.Sprintf("job version %d not supported (this platform reads version %d)", env.Version, Version))
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("job handler panicked", "panic", fmt.Sprint(p))
			err = c.unexpected(ctx, log, m, fmt.Errorf("handler panicked: %v", p))
		}
	}()
	herr := h(ctx, m)
	var retry *retryError
	var perm *permanentError
	switch {
	case herr == nil:
		log.Info("job done")
		return nil
	case errors.As(herr, &perm):
		return c.toDLQ(ctx, log, m, herr.Error())
	case errors.As(herr, &retry):
		if env.Attempt+1 >= retry.maxAttempts {
			return c.toDLQ(ctx, log, m, fmt.Sprintf("gave up after %d attempts: %v", env.Attempt+1, herr))
		}
		if rerr := c.again(ctx, m, retry.after); rerr != nil {
			log.Error("job not re-enqueued; SQS will deliver it again", "error", rerr.Error())
			return rerr
		}
		log.Warn("job failed; retrying later", "error", herr.Error(), "after", retry.after.String())
		return nil
	}
	return c.unexpected(ctx, log, m, herr)
}

// unexpected leaves the message to SQS's redelivery, except on its last receive, when it goes to the
// dead-letter queue with the reason.
func (c *Consumer) unexpected(ctx context.Context, log *slog.Logger, m Message, err error) error {
	if m.ReceiveCount >= MaxReceives {
		return c.toDLQ(ctx, log, m, fmt.Sprintf("failed on each of %d receives; last: %v", m.ReceiveCount, err))
	}
	log.Error("job failed; SQS will deliver it again", "error", err.Error(), "receive_count", m.ReceiveCount)
	return err
}

// again enqueues the job's next attempt after delay.
func (c *Consumer) again(ctx context.Context, m Message, delay time.Duration) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m.Body, &fields); err != nil {
		return err
	}
	fields["attempt"] = json.RawMessage(strconv.Itoa(m.Attempt + 1))
	body, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return c.Queue.send(ctx, c.Queue.URL, body, delay, nil)
}

func (c *Consumer) toDLQ(ctx context.Context, log *slog.Logger, m Message, reason string) error {
	if err := c.Queue.dead(ctx, m, reason); err != nil {
		log.Error("job not moved to the dead-letter queue; SQS will deliver it again", "reason", reason, "error", err.Error())
		return err
	}
	log.Error("job moved to the dead-letter queue", "reason", reason)
	metrics.Count(log, map[string]float64{metrics.JobsDeadLettered: 1})
	return nil
}

func (c *Consumer) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// DefaultRetryBase is the first retry's delay (RETRY_BASE_DELAY).
const DefaultRetryBase = 10 * time.Second

// Backoff is the delay before the next run of a job that has run n times: base, 3x base, 9x base, ... up to
// SQS's 15 minutes. base 0 means DefaultRetryBase.
func Backoff(base time.Duration, n int) time.Duration {
	d := base
	if d <= 0 {
		d = DefaultRetryBase
	}
	for range max(n-1, 0) {
		d *= 3
		if d >= maxDelay {
			return maxDelay
		}
	}
	return d
}

package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSSource feeds a function batches from an SQS queue the way Lambda's event source mapping does with
// ReportBatchItemFailures: it receives up to BatchSize messages, invokes the function with an SQS event,
// deletes the messages that succeeded, and leaves the reported batch item failures (or, if the invocation
// failed, the whole batch) to become visible again after the visibility timeout.
type SQSSource struct {
	Runner    *Runner
	Function  string
	SQS       *sqs.Client
	QueueURL  string
	QueueARN  string
	Region    string
	BatchSize int           // default 10, the SQS maximum per receive
	Poll      time.Duration // pause when the queue is empty; default 100ms
	// VisibilityTimeout, when > 0, is asked for on each receive (a failed message comes back after it);
	// 0 keeps the queue's own.
	VisibilityTimeout time.Duration
	Logs              io.Writer
}

// Run polls until ctx ends.
func (s *SQSSource) Run(ctx context.Context) {
	batch := s.BatchSize
	if batch <= 0 || batch > 10 {
		batch = 10
	}
	poll := s.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	for ctx.Err() == nil {
		n, err := s.once(ctx, batch)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(s.logs(), "[localrun] sqs source for %s: %v\n", s.Function, err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(poll):
			}
		}
	}
}

// once receives and delivers one batch; it returns how many messages it received.
func (s *SQSSource) once(ctx context.Context, batch int) (int, error) {
	in := &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(s.QueueURL), MaxNumberOfMessages: int32(batch),
		// The emulator ignores MessageSystemAttributeNames; "All" gives ApproximateReceiveCount everywhere.
		AttributeNames:        []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
		MessageAttributeNames: []string{"All"},
	}
	if s.VisibilityTimeout > 0 {
		in.VisibilityTimeout = int32(s.VisibilityTimeout / time.Second)
	}
	out, err := s.SQS.ReceiveMessage(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("receive: %w", err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	ev := events.SQSEvent{}
	handles := map[string]string{}
	for _, m := range out.Messages {
		rec := events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, EventSource: "aws:sqs",
			EventSourceARN: s.QueueARN, AWSRegion: s.Region, MessageAttributes: map[string]events.SQSMessageAttribute{},
		}
		for k, v := range m.MessageAttributes {
			rec.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue}
		}
		ev.Records = append(ev.Records, rec)
		handles[rec.MessageId] = rec.ReceiptHandle
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return len(out.Messages), err
	}
	resp, err := s.Runner.Invoke(ctx, s.Function, payload)
	if err != nil {
		// The whole batch comes back after the visibility timeout, as with Lambda.
		return len(out.Messages), fmt.Errorf("invocation failed; %d messages left to reappear: %w", len(out.Messages), err)
	}
	var r events.SQSEventResponse
	if len(resp) > 0 && string(resp) != "null" {
		if err := json.Unmarshal(resp, &r); err != nil {
			return len(out.Messages), fmt.Errorf("function answered something other than an SQS batch response: %w", err)
		}
	}
	for _, f := range r.BatchItemFailures {
		if _, ok := handles[f.ItemIdentifier]; !ok {
			// Lambda treats an unknown identifier as a failure of the whole batch.
			return len(out.Messages), errors.New("batch item failure names a message not in the batch: whole batch left to reappear")
		}
		delete(handles, f.ItemIdentifier)
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	i := 0
	for _, h := range handles {
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)})
		i++
	}
	if len(entries) > 0 {
		del, err := s.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.QueueURL), Entries: entries})
		if err != nil {
			return len(out.Messages), fmt.Errorf("delete: %w", err)
		}
		for _, f := range del.Failed {
			// The message reappears after its visibility timeout and runs again, as it would in AWS.
			fmt.Fprintf(s.logs(), "sqs: %s not deleted (%s: %s); it will be delivered again\n",
				s.Function, aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	return len(out.Messages), nil
}

func (s *SQSSource) logs() io.Writer {
	if s.Logs != nil {
		return s.Logs
	}
	return io.Discard
}

package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/jobs"
)

// queues creates a fresh queue and dead-letter queue in the SQS emulator.
func queues(t *testing.T) (*sqs.Client, *jobs.Queue) {
	t.Helper()
	c := testenv.SQS(t)
	name := fmt.Sprintf("jobs-test-%d", time.Now().UnixNano())
	mk := func(n string) string {
		out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	return c, &jobs.Queue{SQS: c, URL: mk(name), DLQURL: mk(name + "-dlq")}
}

// receive takes what is in a queue now (waiting for delayed messages up to wait).
func receive(t *testing.T, c *sqs.Client, url string, wait time.Duration) []sqstypes.Message {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 || time.Now().After(deadline) {
			return out.Messages
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func record(id, body string, receives int) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(receives)}}
}

func reasonOf(m sqstypes.Message) string {
	if a, ok := m.MessageAttributes[jobs.AttrReason]; ok {
		return aws.ToString(a.StringValue)
	}
	return ""
}

func TestJobsThatCannotRunGoToTheDLQWithTheirReason(t *testing.T) {
	c, q := queues(t)
	var ran int
	cons := &jobs.Consumer{Queue: q, Handlers: map[string]jobs.Handler{
		"ok": func(context.Context, jobs.Message) error { ran++; return nil },
		"bad": func(context.Context, jobs.Message) error {
			return jobs.Permanent(errors.New("template 12 does not exist"))
		},
	}}
	resp, err := cons.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		record("m1", `{"type":"ok","version":1}`, 1),
		record("m2", `{"type":"frobnicate","version":1}`, 1),
		record("m3", `not json`, 1),
		record("m4", `{"version":1}`, 1),
		record("m5", `{"type":"ok","version":2}`, 1),
		record("m6", `{"type":"bad","version":1}`, 1),
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 || ran != 1 {
		t.Fatalf("batch: %+v, %v, ran %d", resp, err, ran)
	}
	dead := map[string]string{}
	for len(dead) < 5 {
		ms := receive(t, c, q.DLQURL, 2*time.Second)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			dead[aws.ToString(m.MessageAttributes[jobs.AttrMessageID].StringValue)] = reasonOf(m)
		}
	}
	want := map[string]string{"m2": `unknown job type "frobnicate"`, "m3": "malformed job", "m4": `no "type"`,
		"m5": "version 2 not supported", "m6": "template 12 does not exist"}
	for id, w := range want {
		if r, ok := dead[id]; !ok || !strings.Contains(r, w) {
			t.Errorf("%s: dead-letter reason %q, want one saying %q", id, r, w)
		}
	}
	if _, ok := dead["m1"]; ok {
		t.Error("a job that ran went to the DLQ")
	}
}

func TestRetryReenqueuesWithTheAttemptCountedUntilTheLast(t *testing.T) {
	c, q := queues(t)
	var seen []int
	cons := &jobs.Consumer{Queue: q, Handlers: map[string]jobs.Handler{
		"flaky": func(_ context.Context, m jobs.Message) error {
			seen = append(seen, m.Attempt)
			return jobs.Retry(time.Second, 3, errors.New("webhook answered 503"))
		},
	}}
	body := `{"type":"flaky","version":1,"payload":{"keep":"me"}}`
	for range 3 {
		resp, _ := cons.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{record("x", body, 1)}})
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("a retried job was reported failed: %+v", resp)
		}
		ms := receive(t, c, q.URL, 3*time.Second)
		if len(seen) == 3 {
			if len(ms) != 0 {
				t.Fatal("a job past its last attempt was enqueued again")
			}
			break
		}
		if len(ms) != 1 {
			t.Fatalf("attempt %d: %d messages enqueued, want 1", len(seen), len(ms))
		}
		body = aws.ToString(ms[0].Body)
		var j struct {
			Attempt int
			Payload map[string]string
		}
		if err := json.Unmarshal([]byte(body), &j); err != nil || j.Attempt != len(seen) || j.Payload["keep"] != "me" {
			t.Fatalf("re-enqueued job %s", body)
		}
	}
	if fmt.Sprint(seen) != "[0 1 2]" {
		t.Fatalf("attempts seen %v", seen)
	}
	ms := receive(t, c, q.DLQURL, 2*time.Second)
	if len(ms) != 1 || !strings.Contains(reasonOf(ms[0]), "gave up after 3 attempts: webhook answered 503") {
		t.Fatalf("dead letter: %d messages, reason %q", len(ms), reasonOf(ms[0]))
	}
}

func TestUnexpectedFailuresAreRedeliveredThenDeadLettered(t *testing.T) {
	c, q := queues(t)
	cons := &jobs.Consumer{Queue: q, Handlers: map[string]jobs.Handler{
		"boom":  func(context.Context, jobs.Message) error { return errors.New("table unavailable") },
		"panic": func(context.Context, jobs.Message) error { panic("nil map") },
	}}
	resp, _ := cons.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		record("a", `{"type":"boom","version":1}`, 1), record("b", `{"type":"panic","version":1}`, 2),
	}})
	if len(resp.BatchItemFailures) != 2 {
		t.Fatalf("want both reported for redelivery, got %+v", resp)
	}
	// On the last receive the reason is recorded with the dead letter.
	resp, _ = cons.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		record("a", `{"type":"boom","version":1}`, jobs.MaxReceives),
	}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("last receive: %+v", resp)
	}
	ms := receive(t, c, q.DLQURL, 2*time.Second)
	if len(ms) != 1 || !strings.Contains(reasonOf(ms[0]), "table unavailable") {
		t.Fatalf("dead letter after the last receive: %d, %q", len(ms), reasonOf(ms[0]))
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 30 * time.Second, 3: 90 * time.Second, 9: 15 * time.Minute} {
		if got := jobs.Backoff(0, n); got != want {
			t.Errorf("Backoff(0, %d) = %s, want %s", n, got, want)
		}
	}
	if got := jobs.Backoff(time.Second, 2); got != 3*time.Second {
		t.Errorf("Backoff(1s, 2) = %s", got)
	}
}

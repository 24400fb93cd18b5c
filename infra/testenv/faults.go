package testenv

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxtpp/platform/shared/platform"
)

// DynamoDBFaults sits between a DynamoDB client and DynamoDB Local and injects what the network and Lambda
// do to a real caller: an answer lost after the write was applied (the SDK then retries the write, whose
// condition now sees the first attempt), and a cut-off after which nothing reaches the table (the
// invocation ended and Lambda froze or killed the process).
type DynamoDBFaults struct {
	next http.RoundTripper

	mu      sync.Mutex
	lose    []lossRule
	refuse  func(op string, body []byte) bool
	refused int
	cutAt   time.Time
	cutHits int
	lost    int
}

type lossRule struct {
	n     int // answers still to lose
	match func(op string, body []byte) bool
}

// LoseAnswers loses the answer of the next n requests match accepts: each is applied by DynamoDB, then the
// caller sees a dropped connection. op is the operation (UpdateItem, PutItem, ...), body the JSON request.
func (f *DynamoDBFaults) LoseAnswers(n int, match func(op string, body []byte) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = append(f.lose, lossRule{n: n, match: match})
}

// Lost reports how many answers were lost so far.
func (f *DynamoDBFaults) Lost() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lost
}

// Refuse makes every request match accepts fail without reaching DynamoDB (the SDK's retries too), until
// Refuse(nil). Refused reports how many did.
func (f *DynamoDBFaults) Refuse(match func(op string, body []byte) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = match
}

// Refused reports how many requests Refuse turned away.
func (f *DynamoDBFaults) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// CutAt makes every request from t on fail without reaching DynamoDB; CutHits counts them.
func (f *DynamoDBFaults) CutAt(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutAt = t
}

// CutHits reports how many requests came after the cut-off (work the ended invocation would have lost).
func (f *DynamoDBFaults) CutHits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cutHits
}

var errLost = errors.New("connection reset by peer (testenv: answer lost after the request was applied)")
var errCut = errors.New("testenv: the invocation has ended; nothing reaches DynamoDB")
var errRefused = errors.New("testenv: request refused by the test")

// RoundTrip implements http.RoundTripper.
func (f *DynamoDBFaults) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	if _, after, ok := strings.Cut(op, "."); ok {
		op = after
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	f.mu.Lock()
	if !f.cutAt.IsZero() && !time.Now().Before(f.cutAt) {
		f.cutHits++
		f.mu.Unlock()
		return nil, errCut
	}
	if f.refuse != nil && f.refuse(op, body) {
		f.refused++
		f.mu.Unlock()
		return nil, errRefused
	}
	lose := false
	for i := range f.lose {
		if r := &f.lose[i]; r.n > 0 && r.match(op, body) {
			r.n--
			lose = true
			f.lost++
			break
		}
	}
	f.mu.Unlock()
	resp, err := f.next.RoundTrip(req)
	if err != nil || !lose {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errLost
}

// DynamoDBWithFaults returns a client for DynamoDB Local whose requests pass through the returned faults. Its
// retries back off briefly, so a test sees the SDK's retry of a lost answer at once.
func DynamoDBWithFaults(t testing.TB) (*dynamodb.Client, *DynamoDBFaults) {
	t.Helper()
	need(t, "AWS_ENDPOINT_URL_DYNAMODB")
	f := &DynamoDBFaults{next: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := AWSConfig(t)
	cfg.HTTPClient = &http.Client{Transport: f}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 20 * time.Millisecond })
	}
	return platform.NewDynamoDB(cfg), f
}

// Eventually waits for cond, checking every few milliseconds, and fails the test if it does not hold within
// timeout. It orders a test's steps on what happened, not on how long things usually take.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

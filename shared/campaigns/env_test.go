package campaigns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/messages"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	slog.SetDefault(quiet)
	os.Exit(m.Run())
}

// env is the release pipeline as deployed: the jobs consumer with the campaign handlers fed from the SQS
// emulator, the message callback (over real HTTP) receiving the sandbox's audit events, DynamoDB Local, and
// the sandbox over real HTTP with n authorized mini programs.
type env struct {
	wx       *sandbox.Sandbox
	api      *wxapi.Client
	store    *tokenstore.Store
	runner   *campaigns.Runner
	queue    *jobs.Queue
	sqs      *sqs.Client
	cons     *jobs.Consumer
	apps     []string // the authorized mini programs
	compTok  string
	received atomic.Int64 // SQS receives (each message is handled twice when twice is set)
}

type options struct {
	apps      int
	tweak     func(*sandbox.Config)
	timing    campaigns.Timing
	apiTimout time.Duration
	httpc     *testenv.CountingClient // counts DynamoDB requests when set
}

func newEnv(t testing.TB, o options) *env {
	t.Helper()
	ctx := context.Background()
	awsCfg := testenv.AWSConfig(t)
	testenv.DynamoDB(t) // skip or fail clearly without the emulators
	dbCfg := awsCfg.Copy()
	if o.httpc != nil {
		dbCfg.HTTPClient = o.httpc // DynamoDB's requests only
	}
	db := platform.NewDynamoDB(dbCfg)
	e := &env{store: tokenstore.New(db, testenv.Table(t, db))}
	srv := httptest.NewUnstartedServer(nil)
	msgURL := "http://" + srv.Listener.Addr().String() + "/wechat/$APPID$/callback"
	accounts := sandbox.GeneratedAccounts(2 * o.apps) // every other one is a mini program
	var base string
	e.wx, base = testenv.Sandbox(t, func(c *sandbox.Config) {
		c.Accounts, c.MessageURL, c.Logger = accounts, msgURL, quiet
		c.AuditDelay = 150 * time.Millisecond
		if o.tweak != nil {
			o.tweak(c)
		}
	})
	if o.apiTimout == 0 {
		o.apiTimout = 5 * time.Second
	}
	e.api = &wxapi.Client{BaseURL: base, Timeout: o.apiTimout, Backoff: 20 * time.Millisecond, Logger: quiet}
	var comp *credentials.Component
	comp, e.compTok = testenv.Component(t, e.wx, e.api, e.store)
	var mps []sandbox.Account
	for _, a := range accounts {
		if a.IsMiniProgram() {
			mps = append(mps, a)
			e.apps = append(e.apps, a.AppID)
		}
	}
	testenv.AuthorizeAll(t, e.wx, e.api, e.store, e.compTok, "shop-1", mps)

	e.sqs = sqs.NewFromConfig(awsCfg)
	name := fmt.Sprintf("campaign-test-%d", time.Now().UnixNano())
	mkq := func(n string) string {
		out, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	e.queue = &jobs.Queue{SQS: e.sqs, URL: mkq(name), DLQURL: mkq(name + "-dlq")}

	authz := credentials.NewAuthorizers(e.store, comp, e.api, credentials.Options{})
	e.runner = campaigns.New(e.store.Table(), e.store, authz, e.api, e.queue)
	e.runner.Timing, e.runner.Logger = o.timing, quiet
	e.cons = &jobs.Consumer{Queue: e.queue, Logger: quiet, Handlers: e.runner.Handlers()}

	crypter, err := wxcrypt.New(testenv.Token, testenv.EncodingAESKey, testenv.ComponentAppID)
	if err != nil {
		t.Fatal(err)
	}
	h := &messages.Handler{Crypter: crypter, Store: e.store, Tenants: tenants.New(e.store.Table()), Audits: audits.New(e.store.Table()),
		Queue: e.queue, Exchanger: authorization.New(e.store, comp, e.api), Logger: quiet,
		OnAudit: campaigns.AuditNotifier{Queue: e.queue}.Notify}
	routed, err := localrun.RoutedHTTPHandler([]localrun.Route{{Method: "POST", Path: "/wechat/{appid}/callback"}}, h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = routed
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// run plays Lambda's SQS event source for the jobs consumer (workers pollers at once) and the scheduled
// sweeper until stop. With twice, every batch is handled twice at the same time, as if SQS had delivered
// each message twice to two instances; a message is deleted only when both handled it.
func (e *env) run(t testing.TB, workers int, twice bool, sweepEvery time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queue.URL), MaxNumberOfMessages: 10,
					VisibilityTimeout: 30, WaitTimeSeconds: 1, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
				if err != nil || len(out.Messages) == 0 {
					continue
				}
				e.received.Add(int64(len(out.Messages)))
				var ev events.SQSEvent
				for _, m := range out.Messages {
					ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Attributes: m.Attributes})
				}
				handle := func() map[string]bool {
					jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
					defer cancel()
					resp, _ := e.cons.Handle(jctx, ev)
					failed := map[string]bool{}
					for _, f := range resp.BatchItemFailures {
						failed[f.ItemIdentifier] = true
					}
					return failed
				}
				failed := map[string]bool{}
				if twice {
					var other map[string]bool
					var both sync.WaitGroup
					both.Go(func() { other = handle() })
					failed = handle()
					both.Wait()
					for k := range other {
						failed[k] = true
					}
				} else {
					failed = handle()
				}
				for _, m := range out.Messages {
					if !failed[aws.ToString(m.MessageId)] {
						_, _ = e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queue.URL), ReceiptHandle: m.ReceiptHandle})
					}
				}
			}
		})
	}
	if sweepEvery > 0 {
		wg.Go(func() {
			tick := time.NewTicker(sweepEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := e.runner.Sweep(ctx); err != nil && ctx.Err() == nil {
						t.Logf("sweep: %v", err)
					}
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// start sends a campaign job as an operator would: its JSON on the queue.
func (e *env) start(t testing.TB, job map[string]any) {
	t.Helper()
	body, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.queue.URL), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}

// send sends an operator job (campaign_retry, campaign_release).
func (e *env) send(t testing.TB, typ, id string) {
	t.Helper()
	e.start(t, map[string]any{"type": typ, "campaign_id": id})
}

// campaign is a campaign job over the env's apps with the given changes.
func (e *env) campaign(id string, templateID int64, more map[string]any) map[string]any {
	job := map[string]any{
		"type": "campaign", "version": 1, "campaign_id": id, "template_id": templateID, "user_version": "1.2.0",
		"user_desc": "spring menu", "ext_json": map[string]any{"extAppid": "{{appid}}", "ext": map[string]any{"shop": "{{tenant}}", "n": 3}},
		"targets": map[string]any{"all": true},
	}
	for k, v := range more {
		job[k] = v
	}
	return job
}

// waitApps waits until every app of the campaign satisfies done, and returns them.
func (e *env) waitApps(t testing.TB, id string, timeout time.Duration, what string, done func(campaigns.App) bool) []campaigns.App {
	t.Helper()
	var apps []campaigns.App
	testenv.Eventually(t, timeout, what, func() bool {
		var err error
		apps, err = e.runner.Store.Apps(context.Background(), id)
		if err != nil || len(apps) != len(e.apps) {
			return false
		}
		for _, a := range apps {
			if !done(a) {
				return false
			}
		}
		return true
	})
	return apps
}

// dlq returns the dead-letter queue's messages with their reasons.
func (e *env) dlq(t testing.TB) []string {
	t.Helper()
	var out []string
	for {
		r, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queue.DLQURL),
			MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			reason := ""
			if a, ok := m.MessageAttributes[jobs.AttrReason]; ok {
				reason = aws.ToString(a.StringValue)
			}
			out = append(out, aws.ToString(m.Body)+" => "+reason)
		}
	}
}

func states(apps []campaigns.App) string {
	var b strings.Builder
	for s, n := range campaigns.Count(apps) {
		fmt.Fprintf(&b, "%s=%d ", s, n)
	}
	return b.String()
}

// merchantSubmits commits version 0.9.0 of tpl and submits it, as the merchant (or another tool) might before
// a campaign; and releases it when the audit passes at once and release is set.
func (e *env) merchantSubmits(t testing.TB, appid string, tpl int64, release bool) {
	t.Helper()
	ctx := context.Background()
	a, err := e.store.Authorizer(ctx, appid)
	if err != nil {
		t.Fatal(err)
	}
	tok := a.AccessToken
	if err := e.api.Commit(ctx, tok, wxapi.CommitRequest{TemplateID: tpl, ExtJSON: "{}", UserVersion: "0.9.0", UserDesc: "own"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.SubmitAudit(ctx, tok, wxapi.SubmitAuditRequest{VersionDesc: "own"}); err != nil {
		t.Fatal(err)
	}
	if release {
		if err := e.api.Release(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
}

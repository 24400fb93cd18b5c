package messages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/custommsg"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/messages"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

const (
	miniProgram     = "wx5a1c0e8d2b7f3a01"
	officialAccount = "wx3f6a8c1e2b9d4a04"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	slog.SetDefault(quiet)
	os.Exit(m.Run())
}

// env is the message URL (this package's handler over real HTTP, with API Gateway's routing) receiving the
// sandbox's pushes, backed by DynamoDB Local, the SQS emulator (the jobs queue, consumed in-process by the
// jobs consumer) and the sandbox over real HTTP.
type env struct {
	db      *dynamodb.Client
	store   *tokenstore.Store
	tenants *tenants.Store
	audits  *audits.Store
	wx      *sandbox.Sandbox
	api     *wxapi.Client
	authz   *authorization.Service
	handler *messages.Handler
	url     string // the message URL, with $APPID$
	sqs     *sqs.Client
	queue   *jobs.Queue
	cons    *jobs.Consumer
}

type options struct {
	allowLocal bool // webhooks on loopback allowed (the local stack); false: as in AWS
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	db := testenv.DynamoDB(t)
	e := &env{db: db, store: tokenstore.New(db, testenv.Table(t, db))}
	e.tenants, e.audits = tenants.New(e.store.Table()), audits.New(e.store.Table())
	srv := httptest.NewUnstartedServer(nil)
	e.url = "http://" + srv.Listener.Addr().String() + "/wechat/$APPID$/callback"
	var base string
	e.wx, base = testenv.Sandbox(t, func(c *sandbox.Config) { c.MessageURL = e.url; c.Logger = quiet })
	e.api = &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond, Logger: quiet}
	comp := credentials.NewComponent(e.store, e.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	e.authz = authorization.New(e.store, comp, e.api)
	ticket, err := e.wx.PushTicket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutTicket(context.Background(), testenv.ComponentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}

	e.sqs = testenv.SQS(t)
	name := fmt.Sprintf("msg-test-%d", time.Now().UnixNano())
	mkq := func(n string) string {
		out, err := e.sqs.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	e.queue = &jobs.Queue{SQS: e.sqs, URL: mkq(name), DLQURL: mkq(name + "-dlq")}
	crypter, err := wxcrypt.New(testenv.Token, testenv.EncodingAESKey, testenv.ComponentAppID)
	if err != nil {
		t.Fatal(err)
	}
	rc := relay.New(o.allowLocal)
	rc.Timeout = 300 * time.Millisecond
	authorizers := credentials.NewAuthorizers(e.store, comp, e.api, credentials.Options{})
	sender := &custommsg.Sender{Table: e.store.Table(), Tokens: authorizers, WeChat: e.api, Queue: e.queue, RetryBase: time.Second}
	e.handler = &messages.Handler{
		Crypter: crypter, Store: e.store, Tenants: e.tenants, Audits: e.audits, Relay: rc, Queue: e.queue,
		Exchanger: e.authz, CustomMessages: sender, Logger: quiet,
	}
	e.cons = &jobs.Consumer{Queue: e.queue, Logger: quiet, Handlers: map[string]jobs.Handler{
		relay.JobType:     (&relay.Retrier{Client: rc, Tenants: e.tenants, RetryBase: time.Second}).Handle,
		custommsg.JobType: sender.Handle,
	}}
	h, err := localrun.RoutedHTTPHandler([]localrun.Route{{Method: "POST", Path: "/wechat/{appid}/callback"}}, e.handler.Handle)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// account authorizes a sandbox account through tenant's link (its push binds it) and returns its gh_ id.
func (e *env) account(t *testing.T, appid, tenant string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.tenants.Set(ctx, tenant, tenants.Changes{}); err != nil {
		t.Fatal(err)
	}
	pre, _, err := e.authz.PreAuthCode(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	code, err := e.wx.Authorize(ctx, appid, pre)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.authz.Authorized(ctx, authevents.Event{InfoType: "authorized", AuthorizerAppID: appid, AuthorizationCode: code,
		PreAuthCode: pre, CreateTime: time.Now().Unix()}); err != nil {
		t.Fatal(err)
	}
	a, err := e.store.Authorizer(ctx, appid)
	if err != nil || a.Tenant != tenant {
		t.Fatalf("account %s: %+v, %v", appid, a, err)
	}
	return a.Info.UserName
}

// webhook is a merchant's endpoint: it verifies the signature and answers with answer(n), n counting its
// deliveries from 1.
type webhook struct {
	mu         sync.Mutex
	deliveries []relay.Delivery
	srv        *httptest.Server
}

func (e *env) webhook(t *testing.T, tenant string, answer func(n int, w http.ResponseWriter)) *webhook {
	t.Helper()
	wh := &webhook{}
	var secret string
	wh.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !relay.Verify(secret, r.Header.Get(relay.HeaderTimestamp), r.Header.Get(relay.HeaderSignature), body, time.Now(), 5*time.Minute) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var d relay.Delivery
		if err := json.Unmarshal(body, &d); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		wh.mu.Lock()
		wh.deliveries = append(wh.deliveries, d)
		n := len(wh.deliveries)
		wh.mu.Unlock()
		answer(n, w)
	}))
	t.Cleanup(wh.srv.Close)
	u := wh.srv.URL + "/wx"
	r, err := e.tenants.Set(context.Background(), tenant, tenants.Changes{Webhook: &u})
	if err != nil || r.NewSecret == "" {
		t.Fatalf("webhook for %s: %+v, %v", tenant, r, err)
	}
	secret = r.NewSecret
	return wh
}

func (wh *webhook) got() []relay.Delivery {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return append([]relay.Delivery(nil), wh.deliveries...)
}

func reply(body string) func(int, http.ResponseWriter) {
	return func(_ int, w http.ResponseWriter) { _, _ = io.WriteString(w, body) }
}

// runJobs plays Lambda's SQS event source for the jobs consumer until stop: batches in, deletes out.
func (e *env) runJobs(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queue.URL), MaxNumberOfMessages: 10,
				VisibilityTimeout: 2, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
			if err != nil || len(out.Messages) == 0 {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			var ev events.SQSEvent
			for _, m := range out.Messages {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Attributes: m.Attributes})
			}
			resp, _ := e.cons.Handle(ctx, ev)
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			for _, m := range out.Messages {
				if !failed[aws.ToString(m.MessageId)] {
					_, _ = e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queue.URL), ReceiptHandle: m.ReceiptHandle})
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// markers counts the message markers in the table.
func (e *env) markers(t *testing.T) int {
	t.Helper()
	out, err := e.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.store.Table().Name)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, it := range out.Items {
		if pk, ok := it["PK"].(*types.AttributeValueMemberS); ok && strings.HasPrefix(pk.Value, "MSG#") {
			n++
		}
	}
	return n
}

var createTimeRE = regexp.MustCompile(`<CreateTime>(\d+)</CreateTime>`)

// textReplyXML is the passive reply WeChat must get, with the reply's own CreateTime.
func textReplyXML(t *testing.T, reply []byte, fan, account, content string) []byte {
	t.Helper()
	m := createTimeRE.FindSubmatch(reply)
	if m == nil {
		t.Fatalf("reply without CreateTime: %s", reply)
	}
	return []byte("<xml><ToUserName><![CDATA[" + fan + "]]></ToUserName><FromUserName><![CDATA[" + account +
		"]]></FromUserName><CreateTime>" + string(m[1]) + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" +
		content + "]]></Content></xml>")
}

func TestWebhookReplyBecomesTheEncryptedPassiveReply(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-1")
	wh := e.webhook(t, "shop-1", reply(`{"reply":{"msgtype":"text","text":{"content":"您好，已收到 ]]> & <"}}}`))
	res, err := e.wx.PushMessage(context.Background(), officialAccount, sandbox.TextMessage(gh, "ofan1", "在吗", 1001, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	want := textReplyXML(t, res.Reply, "ofan1", gh, "您好，已收到 ]]]]><![CDATA[> & <")
	if !bytes.Equal(res.Reply, want) {
		t.Fatalf("passive reply\n got %s\nwant %s", res.Reply, want)
	}
	got := wh.got()
	if len(got) != 1 || got[0].Tenant != "shop-1" || got[0].AppID != officialAccount || got[0].Message["Content"] != "在吗" ||
		got[0].Message["MsgType"] != "text" || got[0].Message["FromUserName"] != "ofan1" || !strings.HasPrefix(got[0].ID, "dlv_") {
		t.Fatalf("delivery %+v", got)
	}
}

func TestRetriedPushIsProcessedOnceAndAnsweredTheSame(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-1")
	wh := e.webhook(t, "shop-1", reply(`{"reply":{"msgtype":"news","news":{"articles":[{"title":"上新","url":"https://shop.example.com/new","picurl":"https://shop.example.com/p.jpg","description":"今日鲜果"}]}}}`))
	results, err := e.wx.PushMessageTimes(context.Background(), officialAccount, sandbox.EventMessage(gh, "ofan2", "CLICK", "NEW_ARRIVALS", time.Now()), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(wh.got()) != 1 {
		t.Fatalf("the webhook got %d deliveries of one push", len(wh.got()))
	}
	for i, r := range results {
		if !bytes.Equal(r.Reply, results[0].Reply) || !bytes.Contains(r.Reply, []byte("<ArticleCount>1</ArticleCount>")) {
			t.Fatalf("delivery %d answered %s, want the first answer %s", i, r.Reply, results[0].Reply)
		}
	}
	// Another push of the same fan a second later is another push.
	if _, err := e.wx.PushMessage(context.Background(), officialAccount, sandbox.EventMessage(gh, "ofan2", "CLICK", "NEW_ARRIVALS", time.Now().Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if len(wh.got()) != 2 {
		t.Fatalf("a new push was taken for a repeat (%d deliveries)", len(wh.got()))
	}
}

func TestWebhookThatFailsTwiceIsRetriedThroughTheQueueWithTheSameDeliveryID(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, miniProgram, "shop-2")
	wh := e.webhook(t, "shop-2", func(n int, w http.ResponseWriter) {
		if n <= 2 {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		}
	})
	stop := e.runJobs(t)
	defer stop()
	res, err := e.wx.PushMessage(context.Background(), miniProgram, sandbox.TextMessage(gh, "ofan3", "订单 42 到哪了", 2002, time.Now()))
	if err != nil || !res.NoReply {
		t.Fatalf("push: %+v, %v (want success while the webhook is down)", res, err)
	}
	testenv.Eventually(t, 20*time.Second, "the third delivery", func() bool { return len(wh.got()) >= 3 })
	got := wh.got()
	for _, d := range got {
		if d.ID != got[0].ID {
			t.Fatalf("delivery ids differ across retries: %q, %q", got[0].ID, d.ID)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a fourth delivery would come within the retry delay
	if n := len(wh.got()); n != 3 {
		t.Fatalf("%d deliveries, want 3 (two failures, then delivered)", n)
	}
}

func TestSlowWebhookIsAnsweredSuccessThenRetried(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-3")
	release := make(chan struct{})
	wh := e.webhook(t, "shop-3", func(n int, w http.ResponseWriter) {
		if n == 1 {
			<-release // far past the 300 ms the test's relay allows
		}
	})
	defer close(release)
	stop := e.runJobs(t)
	defer stop()
	start := time.Now()
	res, err := e.wx.PushMessage(context.Background(), officialAccount, sandbox.TextMessage(gh, "ofan4", "hello", 3003, time.Now()))
	if err != nil || !res.NoReply {
		t.Fatalf("push: %+v, %v", res, err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("answered after %v: WeChat waits 5 s", took)
	}
	testenv.Eventually(t, 10*time.Second, "the retried delivery", func() bool { return len(wh.got()) >= 2 })
}

func TestWebhookOnAPrivateAddressIsRefused(t *testing.T) {
	e := newEnv(t, options{allowLocal: false}) // as in AWS
	gh := e.account(t, officialAccount, "shop-4")
	wh := e.webhook(t, "shop-4", reply(""))
	// An https URL, so that the address is what is refused (an http URL would be refused for its scheme).
	loopback := strings.Replace(wh.srv.URL, "http://", "https://", 1) + "/wx"
	if _, err := e.tenants.Set(context.Background(), "shop-4", tenants.Changes{Webhook: &loopback}); err != nil {
		t.Fatal(err)
	}
	res, err := e.wx.PushMessage(context.Background(), officialAccount, sandbox.TextMessage(gh, "ofan5", "hi", 4004, time.Now()))
	if err != nil || !res.NoReply {
		t.Fatalf("push: %+v, %v", res, err)
	}
	if len(wh.got()) != 0 {
		t.Fatal("the webhook on a loopback address was reached")
	}
	// Refused where the connection is made, not sent anywhere; its retry is queued like any failure.
	if _, err := relay.New(false).Deliver(context.Background(), loopback, "s", relay.Delivery{ID: "x", Tenant: "shop-4"}); !errors.Is(err, relay.ErrRefusedAddress) {
		t.Fatalf("want ErrRefusedAddress for %s, got %v", loopback, err)
	}
	for _, u := range []string{"https://10.1.2.3/hook", "https://169.254.169.254/latest/meta-data/", "https://[::1]/hook"} {
		if err := relay.CheckURL(context.Background(), u, false); !errors.Is(err, relay.ErrRefusedAddress) {
			t.Errorf("%s accepted as a webhook: %v", u, err)
		}
	}
}

func TestFailedProcessingDoesNotBlockWeChatsRetry(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-5")
	wh := e.webhook(t, "shop-5", func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "down", http.StatusBadGateway)
		}
	})
	queueURL := e.queue.URL
	e.queue.URL = queueURL + "-gone" // the webhook fails and its retry cannot be queued: nothing may be lost
	msg := sandbox.TextMessage(gh, "ofan6", "第一条", 5005, time.Now())
	if res, err := e.wx.PushMessage(context.Background(), officialAccount, msg); err == nil || res.Status != http.StatusInternalServerError {
		t.Fatalf("first delivery: HTTP %d, %v; want 500 so that WeChat retries", res.Status, err)
	}
	e.queue.URL = queueURL
	res, err := e.wx.PushMessage(context.Background(), officialAccount, msg)
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("WeChat's retry: HTTP %d, %v", res.Status, err)
	}
	if len(wh.got()) != 2 {
		t.Fatalf("%d deliveries, want the failed one and the retry's", len(wh.got()))
	}
}

func TestBadPushesGet4xxAndChangeNothing(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-6")
	e.account(t, miniProgram, "shop-6") // another account, whose path the push is sent to below
	wh := e.webhook(t, "shop-6", reply(""))
	good, err := wxcrypt.New(testenv.Token, testenv.EncodingAESKey, testenv.ComponentAppID)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := wxcrypt.New(testenv.Token, testenv.EncodingAESKey, "wxsomeoneelse00001")
	plain := sandbox.TextMessage(gh, "ofan7", "hi", 6006, time.Now())
	post := func(c *wxcrypt.Crypter, appid string, plain []byte, tamper func(q url.Values, body []byte) []byte, at time.Time) int {
		if at.IsZero() {
			at = time.Now()
		}
		ts, nonce := strconv.FormatInt(at.Unix(), 10), "nonce123"
		body, sig, err := c.PushBody(plain, gh, ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "msg_signature": {sig}, "encrypt_type": {"aes"}, "openid": {"ofan7"}}
		if tamper != nil {
			body = tamper(q, body)
		}
		u := strings.Replace(e.url, "$APPID$", appid, 1) + "?" + q.Encode()
		resp, err := http.Post(u, "text/xml", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := e.markers(t)
	for name, tc := range map[string]struct {
		c      *wxcrypt.Crypter
		appid  string
		plain  []byte
		tamper func(url.Values, []byte) []byte
		status int
		at     time.Time // when the push was signed; zero: now
	}{
		"forged signature": {good, officialAccount, plain, func(q url.Values, b []byte) []byte {
			q.Set("msg_signature", strings.Repeat("0", 40))
			return b
		}, 401, time.Time{}},
		"another component's ciphertext": {other, officialAccount, plain, nil, 403, time.Time{}},
		"path is not an appid":           {good, "gh_123", plain, nil, 404, time.Time{}},
		"path names another account":     {good, miniProgram, plain, nil, 403, time.Time{}},
		"missing timestamp": {good, officialAccount, plain, func(q url.Values, b []byte) []byte {
			q.Del("timestamp")
			return b
		}, 400, time.Time{}},
		"truncated envelope": {good, officialAccount, plain, func(_ url.Values, b []byte) []byte { return b[:len(b)/2] }, 400, time.Time{}},
		"DOCTYPE in envelope": {good, officialAccount, plain, func(_ url.Values, b []byte) []byte {
			return append([]byte(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`), b...)
		}, 400, time.Time{}},
		"DOCTYPE in the message": {good, officialAccount, append([]byte(`<!DOCTYPE xml [<!ENTITY e "x">]>`), plain...), nil, 400, time.Time{}},
		"not a message":          {good, officialAccount, []byte(`<xml><Foo>bar</Foo></xml>`), nil, 400, time.Time{}},
		"huge body": {good, officialAccount, plain, func(_ url.Values, b []byte) []byte {
			return append(b, bytes.Repeat([]byte(" "), 70<<10)...)
		}, 413, time.Time{}},
		"replayed an hour later":  {good, officialAccount, plain, nil, 400, time.Now().Add(-time.Hour)},
		"signed 10 minutes ahead": {good, officialAccount, plain, nil, 400, time.Now().Add(10 * time.Minute)},
	} {
		if got := post(tc.c, tc.appid, tc.plain, tc.tamper, tc.at); got != tc.status {
			t.Errorf("%s: HTTP %d, want %d", name, got, tc.status)
		}
	}
	if after := e.markers(t); after != before {
		t.Fatalf("bad pushes wrote %d message markers", after-before)
	}
	if len(wh.got()) != 0 {
		t.Fatalf("bad pushes reached the merchant %d times", len(wh.got()))
	}
	if n := len(e.wx.CustomMessages(officialAccount)); n != 0 {
		t.Fatalf("bad pushes sent %d customer-service messages", n)
	}
	// The same push, untampered, goes through.
	if got := post(good, officialAccount, plain, nil, time.Time{}); got != 200 || len(wh.got()) != 1 {
		t.Fatalf("control: HTTP %d, %d deliveries", got, len(wh.got()))
	}
}

func TestAuditEventsAreRecordedOnTheLatestAudit(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, miniProgram, "shop-7")
	wh := e.webhook(t, "shop-7", reply(""))
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	push := func(plain []byte) {
		t.Helper()
		res, err := e.wx.PushMessage(ctx, miniProgram, plain)
		if err != nil || !res.NoReply {
			t.Fatalf("audit event: %+v, %v", res, err)
		}
	}
	push(sandbox.AuditEvent(gh, "weapp_audit_delay", t0, "审核排队中", ""))
	push(sandbox.AuditEvent(gh, "weapp_audit_fail", t0.Add(time.Minute), "1:帐号信息不符合规范<br>", "media1|media2"))
	push(sandbox.AuditEvent(gh, "weapp_audit_delay", t0.Add(30*time.Second), "late and older", "")) // out of order
	l, err := e.audits.Latest(ctx, miniProgram)
	if err != nil {
		t.Fatal(err)
	}
	if l.Status != audits.StatusFailed || l.Reason != "1:帐号信息不符合规范<br>" || l.ScreenShot != "media1|media2" ||
		l.FailTime != t0.Add(time.Minute).Unix() || l.DelayTime != t0.Unix() {
		t.Fatalf("latest audit %+v", l)
	}
	push(sandbox.AuditEvent(gh, "weapp_audit_success", t0.Add(2*time.Minute), "", ""))
	push(sandbox.PrivacyApplyEvent(gh, t0.Add(3*time.Minute), "1"))
	l, _ = e.audits.Latest(ctx, miniProgram)
	if l.Status != audits.StatusPassed || l.SuccTime != t0.Add(2*time.Minute).Unix() || l.Reason != "" || len(l.Privacy) == 0 {
		t.Fatalf("after success and the privacy result: %+v", l)
	}
	if len(wh.got()) != 0 {
		t.Fatal("audit events were relayed to the merchant")
	}
}

// WeChat's retries may arrive while the first delivery is still at the webhook, on other instances: the
// webhook gets the push once, and every delivery answers with its reply.
func TestConcurrentDeliveriesOfOnePushReachTheWebhookOnce(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-8")
	wh := e.webhook(t, "shop-8", func(_ int, w http.ResponseWriter) {
		time.Sleep(150 * time.Millisecond) // slow, within the relay's 300 ms
		_, _ = io.WriteString(w, `{"reply":{"msgtype":"text","text":{"content":"稍等"}}}`)
	})
	push := sandbox.TextMessage(gh, "ofan9", "同时到达", 8008, time.Now())
	const n = 4
	results := make([]sandbox.MessageResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = e.wx.PushMessage(context.Background(), officialAccount, push) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i].Reply == nil {
			t.Fatalf("delivery %d: %+v, %v", i, results[i], errs[i])
		}
		if want := textReplyXML(t, results[i].Reply, "ofan9", gh, "稍等"); !bytes.Equal(results[i].Reply, want) {
			t.Fatalf("delivery %d answered %s", i, results[i].Reply)
		}
	}
	if got := len(wh.got()); got != 1 {
		t.Fatalf("the webhook got %d deliveries of one push", got)
	}
}

// 全网发布's texts come from WeChat's test accounts, which no tenant authorized. On a merchant's account the same
// text is a fan's message like any other: relayed, and no code of it is exchanged.
func TestQueryAuthCodeFromAMerchantsFanIsRelayed(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, officialAccount, "shop-9")
	wh := e.webhook(t, "shop-9", reply(""))
	ctx := context.Background()
	before, err := e.store.Authorizer(ctx, officialAccount)
	if err != nil {
		t.Fatal(err)
	}
	queries := e.wx.Calls("api_query_auth")
	for i, text := range []string{"QUERY_AUTH_CODE:" + before.AuthCode, "QUERY_AUTH_CODE:queryauthcode@@@forged", "TESTCOMPONENT_MSG_TYPE_TEXT"} {
		res, err := e.wx.PushMessage(ctx, officialAccount, sandbox.TextMessage(gh, "ofan10", text, int64(9100+i), time.Now()))
		if err != nil || !res.NoReply {
			t.Fatalf("%q: HTTP %d %q, %v", text, res.Status, res.Body, err)
		}
	}
	if got := len(wh.got()); got != 3 {
		t.Fatalf("the webhook got %d of the 3 texts", got)
	}
	if n := e.wx.Calls("api_query_auth") - queries; n != 0 {
		t.Fatalf("a fan's text made %d api_query_auth calls", n)
	}
	if n := len(e.wx.CustomMessages(officialAccount)); n != 0 {
		t.Fatalf("a fan's text made %d customer-service sends", n)
	}
	after, _ := e.store.Authorizer(ctx, officialAccount)
	if after.AuthCode != before.AuthCode || after.Tenant != "shop-9" {
		t.Fatalf("the account changed: %+v", after)
	}
}

// A mini program cannot reply passively with a message: the webhook's reply reaches the fan as a
// customer-service message, once however often the push is delivered, and WeChat gets "success".
func TestMiniProgramReplyGoesOutAsACustomerServiceMessageOnce(t *testing.T) {
	e := newEnv(t, options{allowLocal: true})
	gh := e.account(t, miniProgram, "shop-10")
	wh := e.webhook(t, "shop-10", reply(`{"reply":{"msgtype":"text","text":{"content":"客服稍后联系您"}}}`))
	results, err := e.wx.PushMessageTimes(context.Background(), miniProgram, sandbox.TextMessage(gh, "ofan11", "人工客服", 10010, time.Now()), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if !r.NoReply {
			t.Fatalf("delivery %d answered %q; a mini program's push is answered success", i, r.Body)
		}
	}
	sent := e.wx.CustomMessages(miniProgram)
	if len(sent) != 1 || sent[0].ToUser != "ofan11" || sent[0].MsgType != "text" || sent[0].Text != "客服稍后联系您" {
		t.Fatalf("customer-service messages %+v", sent)
	}
	if len(wh.got()) != 1 {
		t.Fatalf("the webhook got %d deliveries", len(wh.got()))
	}
}

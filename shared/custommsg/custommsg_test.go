package custommsg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/custommsg"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

const officialAccount = "wx3f6a8c1e2b9d4a04"

type env struct {
	wx     *sandbox.Sandbox
	sender *custommsg.Sender
	sqs    *sqs.Client
	queue  *jobs.Queue
	gh     string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	db := testenv.DynamoDB(t)
	store := tokenstore.New(db, testenv.Table(t, db))
	fans := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "success") }))
	t.Cleanup(fans.Close)
	wx, base := testenv.Sandbox(t, func(c *sandbox.Config) { c.MessageURL = fans.URL + "/$APPID$"; c.Logger = quiet })
	api := &wxapi.Client{BaseURL: base, Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond, Logger: quiet}
	ticket, _ := wx.PushTicket(context.Background())
	if _, err := store.PutTicket(context.Background(), testenv.ComponentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	comp := credentials.NewComponent(store, api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	code, err := wx.Authorize(context.Background(), officialAccount, wx.CreatePreAuthCode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authorization.New(store, comp, api).Redirect(context.Background(), authorization.Redirect{Code: code}); err != nil {
		t.Fatal(err)
	}
	a, _ := store.Authorizer(context.Background(), officialAccount)
	e := &env{wx: wx, gh: a.Info.UserName, sqs: testenv.SQS(t)}
	q, err := e.sqs.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("cs-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	e.queue = &jobs.Queue{SQS: e.sqs, URL: aws.ToString(q.QueueUrl)}
	e.sender = &custommsg.Sender{Table: store.Table(), Tokens: credentials.NewAuthorizers(store, comp, api, credentials.Options{}),
		WeChat: api, Queue: e.queue, RetryBase: time.Second}
	return e
}

// fan messages the account, which opens its customer-service window.
func (e *env) fan(t *testing.T, openid string) {
	t.Helper()
	if _, err := e.wx.PushMessage(context.Background(), officialAccount, sandbox.TextMessage(e.gh, openid, "hi", time.Now().UnixNano(), time.Now())); err != nil {
		t.Fatal(err)
	}
}

func job(key, openid string) custommsg.Job {
	return custommsg.Job{Key: key, AppID: officialAccount, Kind: wxapi.KindOfficialAccount, Message: wxapi.Text(openid, "您的订单已发货")}
}

func (e *env) queued(t *testing.T) []jobs.Message {
	t.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queue.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ms []jobs.Message
	for _, m := range out.Messages {
		var env jobs.Envelope
		_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &env)
		ms = append(ms, jobs.Message{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), Type: env.Type, Attempt: env.Attempt})
	}
	return ms
}

func TestSentOncePerKeyHoweverOftenItIsAsked(t *testing.T) {
	e := newEnv(t)
	e.fan(t, "ofan1")
	for range 3 {
		if err := e.sender.Send(context.Background(), job("order-1-shipped", "ofan1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.wx.CustomMessages(officialAccount)); n != 1 {
		t.Fatalf("%d messages sent, want 1", n)
	}
}

func TestBusyWeChatIsRetriedThroughTheQueueOnce(t *testing.T) {
	e := newEnv(t)
	e.fan(t, "ofan2")
	e.wx.SetFault("send", sandbox.Fault{BusyFirst: 1})
	if err := e.sender.Send(context.Background(), job("k2", "ofan2")); err != nil {
		t.Fatalf("send: %v (want queued)", err)
	}
	if n := len(e.wx.CustomMessages(officialAccount)); n != 0 {
		t.Fatalf("sent %d despite -1", n)
	}
	ms := e.queued(t)
	if len(ms) != 1 || ms[0].Type != custommsg.JobType {
		t.Fatalf("queued %+v", ms)
	}
	// The job is delivered twice (SQS is at least once): the fan gets one message.
	for range 2 {
		if err := e.sender.Handle(context.Background(), ms[0]); err != nil {
			t.Fatalf("job: %v", err)
		}
	}
	if got := e.wx.CustomMessages(officialAccount); len(got) != 1 || got[0].Text != "您的订单已发货" || got[0].ToUser != "ofan2" {
		t.Fatalf("sent %+v", got)
	}
}

func TestRefusalsAreFinal(t *testing.T) {
	e := newEnv(t)
	// No window: the fan never wrote to the account (45015). Nothing is queued; asking again changes nothing.
	err := e.sender.Send(context.Background(), job("k3", "ofan-never-wrote"))
	if !custommsg.IsRefused(err) {
		t.Fatalf("want a refusal, got %v", err)
	}
	if ms := e.queued(t); len(ms) != 0 {
		t.Fatalf("a refused message was queued: %+v", ms)
	}
	calls := e.wx.Calls("send")
	if err := e.sender.Send(context.Background(), job("k3", "ofan-never-wrote")); !custommsg.IsRefused(err) {
		t.Fatalf("second ask: %v", err)
	}
	if e.wx.Calls("send") != calls {
		t.Fatal("a refused message was sent to WeChat again")
	}
	// A type the account kind cannot send is refused before WeChat sees it.
	e.fan(t, "ofan4")
	link := custommsg.Job{Key: "k4", AppID: officialAccount, Kind: wxapi.KindOfficialAccount,
		Message: wxapi.CustomMessage{ToUser: "ofan4", MsgType: "link", Link: &wxapi.LinkBody{Title: "t", Description: "d", URL: "https://x", ThumbURL: "https://y"}}}
	if err := e.sender.Send(context.Background(), link); !custommsg.IsRefused(err) || !errors.Is(err, wxapi.ErrMessageType) {
		t.Fatalf("link from an official account: %v", err)
	}
}

package operator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	slog.SetDefault(quiet) // the pipeline's and the test's own logs
	os.Exit(m.Run())
}

// wechat is the sandbox with a stored ticket, and the CLI's settings pointing at it.
type wechat struct {
	wx    *sandbox.Sandbox
	api   *wxapi.Client
	store *tokenstore.Store
	comp  *credentials.Component
}

func newWeChat(t *testing.T, c *cli, tweak func(*sandbox.Config)) *wechat {
	t.Helper()
	ctx := context.Background()
	wx, base := testenv.Sandbox(t, func(cfg *sandbox.Config) {
		cfg.Logger = quiet
		if tweak != nil {
			tweak(cfg)
		}
	})
	w := &wechat{wx: wx, api: &wxapi.Client{BaseURL: base, Backoff: 20 * time.Millisecond, Logger: quiet},
		store: tokenstore.New(testenv.DynamoDB(t), c.env["TABLE_NAME"])}
	ticket, err := wx.PushTicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.PutTicket(ctx, testenv.ComponentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	w.comp = credentials.NewComponent(w.store, w.api, testenv.ComponentAppID, testenv.ComponentSecret, credentials.Options{})
	c.env["WECHAT_COMPONENT_APPID"] = testenv.ComponentAppID
	c.env["WECHAT_COMPONENT_SECRET"] = testenv.ComponentSecret
	c.env["WECHAT_API_BASE"] = base
	return w
}

// pipeline is the release pipeline as the jobs function and the scheduled sweeper run it, on the CLI's
// table and queue, until the test ends.
func pipeline(t *testing.T, c *cli, w *wechat, timing campaigns.Timing) *campaigns.Runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := testenv.SQS(t)
	mkq := func(name string) string {
		out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	name := fmt.Sprintf("operator-pipeline-%d", time.Now().UnixNano())
	q := &jobs.Queue{SQS: client, URL: mkq(name), DLQURL: mkq(name + "-dlq")}
	c.env["QUEUE_URL"] = q.URL
	authz := credentials.NewAuthorizers(w.store, w.comp, w.api, credentials.Options{})
	r := campaigns.New(w.store.Table(), w.store, authz, w.api, q)
	r.Timing, r.Logger = timing, quiet
	cons := &jobs.Consumer{Queue: q, Logger: quiet, Handlers: r.Handlers()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10,
				VisibilityTimeout: 2, WaitTimeSeconds: 1})
			if err != nil || len(out.Messages) == 0 {
				continue
			}
			var ev events.SQSEvent
			for _, m := range out.Messages {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body)})
			}
			jctx, jcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			resp, _ := cons.Handle(jctx, ev)
			jcancel()
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			for _, m := range out.Messages {
				if !failed[aws.ToString(m.MessageId)] {
					_, _ = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle})
				}
			}
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = r.Sweep(ctx)
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// A campaign started, watched and released with the CLI, run by the real pipeline against the sandbox:
// three authorized mini programs and one appid that is not, with an audit quota of two.
func TestCampaignThroughThePipeline(t *testing.T) {
	c := newCLI(t)
	w := newWeChat(t, c, func(cfg *sandbox.Config) {
		cfg.Accounts = sandbox.GeneratedAccounts(6)
		cfg.AuditDelay, cfg.AuditQuota = sandbox.AuditImmediate, 2
	})
	ctok, err := w.comp.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mps []sandbox.Account
	appids := []string{"wx0000000000000bad"}
	for _, a := range w.wx.Accounts() {
		if a.IsMiniProgram() {
			mps = append(mps, a)
			appids = append(appids, a.AppID)
		}
	}
	testenv.AuthorizeAll(t, w.wx, w.api, w.store, ctok, "shop-1", mps)
	tpl := w.wx.AddTemplate("1.2.0", "spring menu")
	runner := pipeline(t, c, w, campaigns.Timing{Lease: 20 * time.Second, Stall: 2 * time.Second, AuditCheck: time.Second,
		RetryBase: 100 * time.Millisecond, QuotaWait: 500 * time.Millisecond, QuotaTTL: time.Minute})

	ids, _ := json.Marshal(appids)
	job := fmt.Sprintf(`{"type":"campaign","version":1,"campaign_id":"spring","template_id":%d,"user_version":"1.2.0",`+
		`"targets":{"appids":%s},"release":{"mode":"manual"}}`, tpl, ids)
	if code, out, errOut := c.run("campaign", "start", writeFile(t, job)); code != 0 || !strings.Contains(out, "4 mini programs") {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	ctx := context.Background()
	var bad campaigns.App
	testenv.Eventually(t, time.Minute, "two apps approved, one waiting for the quota, one failed", func() bool {
		apps, err := runner.Store.Apps(ctx, "spring")
		if err != nil || len(apps) != 4 {
			return false
		}
		n := campaigns.Count(apps)
		waiting := 0
		for _, a := range apps {
			if a.Note == quotaNote {
				waiting++
			}
			if a.AppID == "wx0000000000000bad" {
				bad = a
			}
		}
		return n[campaigns.StateApproved] == 2 && waiting == 1 && campaigns.Final(bad.State)
	})

	c.now = time.Now()
	code, out, errOut := c.run("campaign", "status", "spring")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"Campaign spring: running\n", fmt.Sprintf("  template:   %d, version 1.2.0, release manual\n", tpl), "  targets:    4, fanned out 4\n",
		"Apps: submitting 1  approved 2  " + bad.State + " 1  total 4\n",
		"1/4 done (25%), 2 waiting for release\n",
		"Waiting:\n  1 app: " + quotaNote + "\n",
		"2 apps approved or gray-released: release fully with `wxtpp campaign release spring`\n",
		"Audit quota: about 0 of 2 left this month",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	row := strings.Join([]string{"wx0000000000000bad", bad.State, bad.FailedStep, fmt.Sprint(bad.ErrCode)}, " ") + " " + bad.ErrMsg
	if !strings.Contains(strings.Join(strings.Fields(out), " "), row) {
		t.Errorf("no row %q in the failed table", row)
	}
	code, out, _ = c.run("campaign", "status", "spring", "--json")
	var v struct {
		Counts     map[string]int `json:"counts"`
		AuditQuota struct {
			Rest, Limit int
			CheckedAt   string `json:"checked_at"`
		} `json:"audit_quota"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Counts["approved"] != 2 || v.AuditQuota.Limit != 2 || v.AuditQuota.CheckedAt == "" {
		t.Fatalf("--json: exit %d\n%s", code, out)
	}

	// The operator releases the approved ones.
	if code, out, errOut := c.run("campaign", "release", "spring"); code != 0 || !strings.Contains(out, "2 apps are approved or gray now") {
		t.Fatalf("release: exit %d\n%s%s", code, out, errOut)
	}
	testenv.Eventually(t, time.Minute, "two apps released", func() bool {
		apps, err := runner.Store.Apps(ctx, "spring")
		return err == nil && campaigns.Count(apps)[campaigns.StateReleased] == 2
	})
	for _, a := range mps {
		if st := w.wx.CodeStats(a.AppID); st.Releases > 1 {
			t.Errorf("%s released %d times", a.AppID, st.Releases)
		}
	}
	if code, out, _ := c.run("campaign", "status", "spring", "--once"); code != 0 || !strings.Contains(out, "released 2") ||
		!strings.Contains(out, "3/4 done (75%)\n") {
		t.Fatalf("status after the release: exit %d\n%s", code, out)
	}
}

func TestTemplatesListAddDelete(t *testing.T) {
	c := newCLI(t)
	w := newWeChat(t, c, nil)
	draft := w.wx.AddDraft("2.0.0", "从开发者工具上传：新版首页")

	code, out, errOut := c.run("templates")
	if code != 0 {
		t.Fatalf("templates: exit %d\n%s", code, errOut)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"Drafts (4)", "  DRAFT_ID  USER_VERSION  USER_DESC                       CREATED\n",
		fmt.Sprintf("  %-8d  2.0.0         从开发者工具上传：新版首页      ", draft),
		"Templates (0 of at most 200)", "  TEMPLATE_ID  USER_VERSION  USER_DESC  CREATED\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}

	code, out, errOut = c.run("templates", "add", fmt.Sprint(draft), "--json")
	var added struct {
		DraftID    int64  `json:"draft_id"`
		TemplateID *int64 `json:"template_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &added) != nil || added.DraftID != draft || added.TemplateID == nil {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = c.run("templates", "--json")
	var list struct {
		Drafts []struct {
			DraftID int64 `json:"draft_id"`
		}
		Templates []struct {
			TemplateID  int64  `json:"template_id"`
			UserVersion string `json:"user_version"`
			UserDesc    string `json:"user_desc"`
			CreatedAt   string `json:"created_at"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Drafts) != 4 || len(list.Templates) != 1 ||
		list.Templates[0].TemplateID != *added.TemplateID || list.Templates[0].UserVersion != "2.0.0" || list.Templates[0].CreatedAt == "" {
		t.Fatalf("templates --json: exit %d\n%s", code, out)
	}
	if code, out, _ := c.run("templates", "add", "1"); code != 0 || !strings.Contains(out, "Draft 1 added to the template library as template") {
		t.Fatalf("add 1: exit %d\n%s", code, out)
	}

	tid := fmt.Sprint(*added.TemplateID)
	if code, out, errOut := c.run("templates", "delete", tid); code != 0 || !strings.Contains(out, "Template "+tid+" deleted") {
		t.Fatalf("delete: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := c.run("templates", "delete", tid); code != 1 || !strings.Contains(errOut, "there is no template "+tid) {
		t.Fatalf("delete again: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := c.run("templates", "add", "999"); code != 1 || !strings.Contains(errOut, "there is no draft 999") {
		t.Fatalf("add an unknown draft: exit %d\n%s", code, errOut)
	}
	code, out, _ = c.run("templates", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Templates) != 1 || list.Templates[0].TemplateID == *added.TemplateID {
		t.Fatalf("after the delete: exit %d\n%s", code, out)
	}

	// The component token the CLI used (and stored) is never shown.
	tok, err := w.comp.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"templates"}, {"templates", "--json"}} {
		if _, out, errOut := c.run(args...); strings.Contains(out+errOut, tok) {
			t.Fatalf("%v shows the component token", args)
		}
	}

	for _, args := range [][]string{{"templates", "add"}, {"templates", "add", "x"}, {"templates", "delete", "-1"}, {"templates", "frobnicate"}, {"templates", "list", "1"}} {
		if code, _, errOut := c.run(args...); code != 2 || !strings.HasPrefix(errOut, "wxtpp: ") {
			t.Errorf("%q: exit %d\n%s", args, code, errOut)
		}
	}
	delete(c.env, "WECHAT_COMPONENT_SECRET")
	if code, _, errOut := c.run("templates"); code != 1 || !strings.Contains(errOut, "WECHAT_COMPONENT_SECRET") {
		t.Fatalf("no secret: exit %d\n%s", code, errOut)
	}
	delete(c.env, "WECHAT_COMPONENT_APPID")
	if code, _, errOut := c.run("templates"); code != 2 || !strings.Contains(errOut, "WECHAT_COMPONENT_APPID") {
		t.Fatalf("no appid: exit %d\n%s", code, errOut)
	}
	c.env["WECHAT_COMPONENT_SECRET"] = testenv.ComponentSecret
	if code, _, errOut := c.run("templates", "--component-appid", testenv.ComponentAppID, "--wechat-base", "http://127.0.0.1:1"); code != 1 ||
		!strings.Contains(errOut, "gettemplatedraftlist") || strings.Contains(errOut, tok) {
		t.Fatalf("--component-appid, --wechat-base: exit %d\n%s", code, errOut)
	}
}

package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/table"
)

// queue gives c a fresh jobs queue (QUEUE_URL) and returns a way to read what was sent to it.
func queue(t *testing.T, c *cli) (received func() []string) {
	t.Helper()
	client := testenv.SQS(t)
	ctx := context.Background()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("operator-test-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(out.QueueUrl)
	c.env["QUEUE_URL"] = url
	// received drains the queue: every body sent since the last call.
	return func() []string {
		t.Helper()
		var bodies []string
		for {
			r, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) == 0 {
				return bodies
			}
			for _, m := range r.Messages {
				bodies = append(bodies, aws.ToString(m.Body))
				if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// records writes campaign and app records as the release pipeline stores them (campaigns/records.go).
type records struct {
	t   *testing.T
	tbl *table.Table
}

func newRecords(t *testing.T, c *cli) records {
	return records{t: t, tbl: table.New(testenv.DynamoDB(t), c.env["TABLE_NAME"])}
}

func (r records) campaign(c campaigns.Campaign) {
	r.t.Helper()
	if err := r.tbl.PutAt(context.Background(), table.Key{PK: "CAMPAIGN#" + c.ID, SK: "CAMPAIGN"}, c, nil); err != nil {
		r.t.Fatal(err)
	}
}

func (r records) app(a campaigns.App) {
	r.t.Helper()
	if a.UpdatedAt == 0 {
		a.UpdatedAt = time.Now().UnixMilli()
	}
	if err := r.tbl.PutAt(context.Background(), table.Key{PK: "CAMPAIGN#" + a.CampaignID, SK: "APP#" + a.AppID}, a, nil); err != nil {
		r.t.Fatal(err)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "campaign.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const quotaNote = "audit quota used up (85085): submissions paused"

func TestCampaignStartRejectsAnInvalidJobAndSendsNothing(t *testing.T) {
	c := newCLI(t)
	received := queue(t, c)
	for _, tc := range []struct{ body, reason string }{
		{`{"type":"campaign","campaign_id":"spring","template_id":"12","user_version":"1.2.0","targets":{"all":true}}`, "at /template_id"},
		{`{"type":"campaign","campaign_id":"spring","template_id":12,"user_version":"1.2.0"}`, "targets"},
		{`{"type":"campaign","campaign_id":"spring","template_id":12,"user_version":"1.2.0","targets":{"all":true},"release":{"mode":"gray"}}`,
			"release mode gray needs gray_percentage"},
		{`{"type":"campaign_retry","campaign_id":"spring"}`, "at /type"},
		{`not json`, "not JSON"},
	} {
		code, out, errOut := c.run("campaign", "start", writeFile(t, tc.body))
		if code != 1 || out != "" || !strings.Contains(errOut, "invalid campaign: ") || !strings.Contains(errOut, tc.reason) ||
			!strings.Contains(errOut, "nothing was sent") {
			t.Errorf("%s: exit %d\n%s%s", tc.body, code, out, errOut)
		}
	}
	c.stdin = `{"type":"campaign"}`
	if code, _, errOut := c.run("campaign", "start", "-"); code != 1 || !strings.Contains(errOut, "stdin: invalid campaign") {
		t.Errorf("stdin: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := c.run("campaign", "start", filepath.Join(t.TempDir(), "missing.json")); code != 1 || !strings.Contains(errOut, "missing.json") {
		t.Errorf("missing file: exit %d\n%s", code, errOut)
	}
	if sent := received(); len(sent) != 0 {
		t.Fatalf("sent although invalid: %q", sent)
	}
}

func TestCampaignStartSendsTheFileByteForByte(t *testing.T) {
	c := newCLI(t)
	received := queue(t, c)
	// Key order, spacing, escapes and the trailing newline are the operator's: none of it is re-encoded.
	body := "{\n  \"campaign_id\": \"spring-1\",  \"type\": \"campaign\", \"version\": 1,\n  \"template_id\": 12, \"user_version\": \"1.2.0\",\n" +
		"  \"user_desc\": \"春季菜单 \\u2014 spring\", \"targets\": {\"appids\": [\"wx00000000000000a1\", \"wx00000000000000a2\"]},\n" +
		"  \"release\": {\"mode\": \"manual\"}\n}\n"
	code, out, errOut := c.run("campaign", "start", writeFile(t, body))
	if code != 0 || !strings.Contains(out, "Campaign spring-1 sent") || !strings.Contains(out, "2 mini programs") ||
		!strings.Contains(out, "wxtpp campaign status spring-1") {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	if sent := received(); len(sent) != 1 || sent[0] != body {
		t.Fatalf("sent %q, want the file as it is", sent)
	}

	c.stdin = body
	code, out, _ = c.run("campaign", "start", "-", "--json")
	var j struct {
		CampaignID string `json:"campaign_id"`
		MessageID  string `json:"message_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.CampaignID != "spring-1" || j.MessageID == "" {
		t.Fatalf("start - --json: exit %d\n%s", code, out)
	}
	if sent := received(); len(sent) != 1 || sent[0] != body {
		t.Fatalf("from stdin: sent %q", sent)
	}

	// No queue: a command-line error, nothing sent anywhere.
	delete(c.env, "QUEUE_URL")
	if code, _, errOut := c.run("campaign", "start", writeFile(t, body)); code != 2 || !strings.Contains(errOut, "QUEUE_URL") {
		t.Fatalf("no queue: exit %d\n%s", code, errOut)
	}
}

func TestCampaignStartRefusesTheIdOfARejectedCampaign(t *testing.T) {
	c := newCLI(t)
	received := queue(t, c)
	rec := newRecords(t, c)
	rec.campaign(campaigns.Campaign{ID: "used", State: campaigns.CampaignRejected, Reason: "invalid campaign: at /targets: missing", CreatedAt: time.Now().UnixMilli()})
	rec.campaign(campaigns.Campaign{ID: "running", State: campaigns.CampaignRunning, CreatedAt: time.Now().UnixMilli()})
	job := func(id string) string {
		return writeFile(t, `{"type":"campaign","campaign_id":"`+id+`","template_id":12,"user_version":"1.2.0","targets":{"all":true}}`)
	}
	if code, _, errOut := c.run("campaign", "start", job("used")); code != 1 || !strings.Contains(errOut, "rejected campaign") {
		t.Fatalf("rejected id: exit %d\n%s", code, errOut)
	}
	if sent := received(); len(sent) != 0 {
		t.Fatalf("sent %q", sent)
	}
	// A campaign under way may be sent again (the same one is harmless); the operator is told.
	if code, _, errOut := c.run("campaign", "start", job("running")); code != 0 || !strings.Contains(errOut, "exists already (running)") {
		t.Fatalf("used id: exit %d\n%s", code, errOut)
	}
	if sent := received(); len(sent) != 1 {
		t.Fatalf("sent %q", sent)
	}
}

// spring is a manual-release campaign with apps in every state, as the pipeline leaves them.
func spring(rec records) {
	now := time.Now()
	rec.campaign(campaigns.Campaign{ID: "spring", State: campaigns.CampaignRunning, Total: 9, FannedOut: 9,
		SpecJSON:  `{"campaign_id":"spring","template_id":12,"user_version":"1.2.0","release":{"mode":"manual"}}`,
		CreatedAt: now.Add(-time.Hour).UnixMilli(), UpdatedAt: now.UnixMilli(), Counts: map[string]int{"pending": 9}})
	long := "audit rejected: " + strings.Repeat("页面内容不完整 ", 20)
	for _, a := range []campaigns.App{
		{AppID: "wx00000000000000a1", State: campaigns.StatePending},
		{AppID: "wx00000000000000a2", State: campaigns.StateSubmitting, Note: quotaNote},
		{AppID: "wx00000000000000a3", State: campaigns.StateSubmitting, Note: quotaNote},
		{AppID: "wx00000000000000a4", State: campaigns.StateAuditing, Note: "audit running"},
		{AppID: "wx00000000000000a5", State: campaigns.StateApproved},
		{AppID: "wx00000000000000a6", State: campaigns.StateReleased},
		{AppID: "wx00000000000000a7", State: campaigns.StateFailed, FailedStep: campaigns.StateAuditing, ErrMsg: long},
		// A note left from before the failure is not a wait.
		{AppID: "wx00000000000000a8", State: campaigns.StateBlocked, FailedStep: campaigns.StateCommitting, ErrCode: 61023,
			ErrMsg: "the merchant must authorize the platform again: wechat api_authorizer_token: errcode 61023: invalid refresh_token", Note: "rate limited (45011)"},
		{AppID: "wx00000000000000a9", State: campaigns.StateGray},
	} {
		a.CampaignID = "spring"
		rec.app(a)
	}
}

func TestCampaignStatusShowsCountsWaitsAndFailures(t *testing.T) {
	c := newCLI(t)
	spring(newRecords(t, c))
	code, out, errOut := c.run("campaign", "status", "spring")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"Campaign spring: running\n",
		"  template:   12, version 1.2.0, release manual\n",
		"  targets:    9, fanned out 9\n",
		// Live counts, in the pipeline's order, not the record's stale Counts.
		"Apps: pending 1  submitting 2  auditing 1  approved 1  gray 1  released 1  failed 1  blocked 1  total 9\n",
		"[#############=========..................] 3/9 done (33%), 2 waiting for release\n",
		"Waiting:\n  2 apps: " + quotaNote + "\n  1 app: audit running\n",
		"2 apps approved or gray-released: release fully with `wxtpp campaign release spring`\n",
		"Failed or blocked (2): resume with `wxtpp campaign retry spring`\n",
		"  APPID               STATE    STEP        ERRCODE  ERRMSG\n",
		"  wx00000000000000a8  blocked  committing  61023    the merchant must authorize the platform again: wechat api_authorizer_token: er…\n",
		"Audit quota: not asked yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(out, "rate limited") || strings.Contains(out, "\x1b[") {
		t.Errorf("a failed app's old note, or terminal codes, shown")
	}
	// ERRMSG is cut to 80 columns, counting a Chinese character as two.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  wx00000000000000a7") {
			msg := line[strings.Index(line, "audit rejected"):]
			if !strings.HasSuffix(msg, "…") || len([]rune(msg)) > 50 {
				t.Errorf("ERRMSG not cut: %q", msg)
			}
		}
	}

	code, out, _ = c.run("campaign", "status", "spring", "--json")
	var v struct {
		Campaign struct {
			ID      string `json:"campaign_id"`
			State   string
			Total   int
			Settled bool
			Spec    struct {
				TemplateID int64 `json:"template_id"`
			}
		}
		Counts     map[string]int
		AppsFailed []struct {
			AppID      string `json:"appid"`
			State      string
			FailedStep string `json:"failed_step"`
			ErrCode    int
			ErrMsg     string
		} `json:"apps_failed"`
		Waiting    map[string]int
		AuditQuota map[string]any `json:"audit_quota"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("--json: exit %d\n%s", code, out)
	}
	if v.Campaign.ID != "spring" || v.Campaign.State != "running" || v.Campaign.Total != 9 || v.Campaign.Settled || v.Campaign.Spec.TemplateID != 12 {
		t.Errorf("campaign %+v", v.Campaign)
	}
	if v.Counts["submitting"] != 2 || v.Counts["committing"] != 0 || v.Counts["total"] != 9 || len(v.Counts) != len(campaigns.States)+1 {
		t.Errorf("counts %v", v.Counts)
	}
	if len(v.AppsFailed) != 2 || v.AppsFailed[0].AppID != "wx00000000000000a7" || v.AppsFailed[0].FailedStep != "auditing" ||
		!strings.HasSuffix(v.AppsFailed[0].ErrMsg, "页面内容不完整 ") || v.AppsFailed[1].ErrCode != 61023 {
		t.Errorf("apps_failed %+v", v.AppsFailed)
	}
	if len(v.Waiting) != 2 || v.Waiting[quotaNote] != 2 || v.Waiting["audit running"] != 1 {
		t.Errorf("waiting %v", v.Waiting)
	}
	if v.AuditQuota["rest"] != 0.0 || v.AuditQuota["checked_at"] != nil {
		t.Errorf("audit_quota %v", v.AuditQuota)
	}
}

func TestCampaignStatusOfARejectedOrMissingCampaign(t *testing.T) {
	c := newCLI(t)
	rec := newRecords(t, c)
	rec.campaign(campaigns.Campaign{ID: "bad", State: campaigns.CampaignRejected, Reason: "invalid campaign: template_id 0 is not a template", CreatedAt: time.Now().UnixMilli()})
	code, out, _ := c.run("campaign", "status", "bad")
	if code != 0 || !strings.Contains(out, "Campaign bad: rejected\n  reason:     invalid campaign: template_id 0 is not a template\n") {
		t.Fatalf("rejected: exit %d\n%s", code, out)
	}
	// A rejected campaign never changes: no live display even on a terminal.
	c.terminal = true
	if code, out, _ := c.run("campaign", "status", "bad"); code != 0 || strings.Contains(out, "\x1b[") {
		t.Fatalf("rejected on a terminal: exit %d\n%q", code, out)
	}
	queue(t, c)
	for _, cmd := range []string{"status", "retry", "release"} {
		code, out, errOut := c.run("campaign", cmd, "nope")
		if code != 1 || out != "" || !strings.Contains(errOut, "campaign nope not found in table "+c.env["TABLE_NAME"]) {
			t.Errorf("%s of a missing campaign: exit %d\n%s%s", cmd, code, out, errOut)
		}
	}
}

func TestCampaignRetryAndReleaseSendTheirJobs(t *testing.T) {
	c := newCLI(t)
	received := queue(t, c)
	rec := newRecords(t, c)
	spring(rec)

	code, out, errOut := c.run("campaign", "release", "spring")
	if code != 0 || !strings.Contains(out, `Sent {"type":"campaign_release","version":1,"campaign_id":"spring"}`) ||
		!strings.Contains(out, "2 apps are approved or gray now") {
		t.Fatalf("release: exit %d\n%s%s", code, out, errOut)
	}
	if sent := received(); len(sent) != 1 || sent[0] != `{"type":"campaign_release","version":1,"campaign_id":"spring"}` {
		t.Fatalf("release sent %q", sent)
	}

	code, out, _ = c.run("campaign", "retry", "spring", "--json")
	var j struct {
		CampaignID string          `json:"campaign_id"`
		Job        json.RawMessage `json:"job"`
		MessageID  string          `json:"message_id"`
		Apps       int             `json:"apps"`
	}
	var job bytes.Buffer
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || json.Compact(&job, j.Job) != nil || j.CampaignID != "spring" || j.Apps != 2 ||
		j.MessageID == "" || job.String() != `{"type":"campaign_retry","version":1,"campaign_id":"spring"}` {
		t.Fatalf("retry --json: exit %d\n%s", code, out)
	}
	if sent := received(); len(sent) != 1 || sent[0] != job.String() {
		t.Fatalf("retry sent %q", sent)
	}

	// A rejected campaign has nothing to retry: nothing is sent.
	rec.campaign(campaigns.Campaign{ID: "bad", State: campaigns.CampaignRejected, Reason: "invalid campaign: x"})
	if code, _, errOut := c.run("campaign", "retry", "bad"); code != 1 || !strings.Contains(errOut, "was rejected") {
		t.Fatalf("retry of a rejected campaign: exit %d\n%s", code, errOut)
	}
	if sent := received(); len(sent) != 0 {
		t.Fatalf("sent %q", sent)
	}
	for _, args := range [][]string{{"campaign"}, {"campaign", "stop", "spring"}, {"campaign", "retry"}, {"campaign", "release", "a", "b"},
		{"campaign", "start"}, {"campaign", "status"}, {"campaign", "status", "spring", "--every", "1s"}} {
		if code, _, errOut := c.run(args...); code != 2 || !strings.HasPrefix(errOut, "wxtpp: ") {
			t.Errorf("%q: exit %d\n%s", args, code, errOut)
		}
	}
}

// frames splits the live display's output into its redraws: each starts at the cursor's home, after the
// screen was cleared once.
func frames(out string) []string {
	f := strings.Split(out, "\x1b[H")
	if len(f) < 2 || f[0] != "" || f[1] != "\x1b[2J" {
		return nil
	}
	return f[2:]
}

func TestCampaignStatusRedrawsOnATerminalUntilEveryAppSettles(t *testing.T) {
	c := newCLI(t)
	rec := newRecords(t, c)
	rec.campaign(campaigns.Campaign{ID: "live", State: campaigns.CampaignRunning, Total: 2, FannedOut: 2, CreatedAt: time.Now().UnixMilli()})
	rec.app(campaigns.App{CampaignID: "live", AppID: "wx00000000000000b1", State: campaigns.StateAuditing, Note: "audit running"})
	rec.app(campaigns.App{CampaignID: "live", AppID: "wx00000000000000b2", State: campaigns.StateCommitting})
	c.terminal, c.interval = true, 20*time.Millisecond

	var out, errOut testenv.LogBuffer // written by the live display while the test reads it
	done := make(chan int)
	go func() {
		done <- c.operator(&out, &errOut).Run(context.Background(), []string{"campaign", "status", "live"})
	}()
	testenv.Eventually(t, 10*time.Second, "a few redraws", func() bool { return len(frames(out.String())) >= 3 })
	select {
	case code := <-done:
		t.Fatalf("stopped (exit %d) while apps were under way\n%s", code, errOut.String())
	default:
	}
	rec.app(campaigns.App{CampaignID: "live", AppID: "wx00000000000000b1", State: campaigns.StateReleased})
	rec.app(campaigns.App{CampaignID: "live", AppID: "wx00000000000000b2", State: campaigns.StateApproved})
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still redrawing after every app settled")
	}
	f := frames(out.String())
	if len(f) < 4 {
		t.Fatalf("not cleared first, or too few frames: %q", out.String())
	}
	if !strings.Contains(f[0], "Apps: committing 1  auditing 1  total 2\x1b[K\n") || !strings.Contains(f[0], "1 app: audit running") ||
		!strings.Contains(f[0], "Redrawn every 20ms") || !strings.HasSuffix(f[0], "\x1b[K\n\x1b[J") {
		t.Errorf("first frame: %q", f[0])
	}
	last := f[len(f)-1]
	for _, want := range []string{"Apps: approved 1  released 1  total 2\x1b[K\n", "1/2 done (50%), 1 waiting for release", "Every app is released"} {
		if !strings.Contains(last, want) {
			t.Errorf("last frame lacks %q:\n%q", want, last)
		}
	}

	// --once and --json draw once, without terminal codes, even on a terminal.
	rec.app(campaigns.App{CampaignID: "live", AppID: "wx00000000000000b2", State: campaigns.StateCommitting})
	for _, args := range [][]string{{"campaign", "status", "live", "--once"}, {"campaign", "status", "live", "--json"}} {
		if code, out, _ := c.run(args...); code != 0 || strings.Contains(out, "\x1b[") {
			t.Errorf("%v: exit %d\n%q", args, code, out)
		}
	}
	// A display that is not a terminal draws once.
	c.terminal = false
	if code, out, _ := c.run("campaign", "status", "live"); code != 0 || strings.Contains(out, "\x1b[") || !strings.Contains(out, "committing 1") {
		t.Errorf("not a terminal: exit %d\n%q", code, out)
	}
}

func TestCampaignStatusStopsWatchingWhenCancelled(t *testing.T) {
	c := newCLI(t)
	rec := newRecords(t, c)
	rec.campaign(campaigns.Campaign{ID: "slow", State: campaigns.CampaignRunning, Total: 1, FannedOut: 1, CreatedAt: time.Now().UnixMilli()})
	rec.app(campaigns.App{CampaignID: "slow", AppID: "wx00000000000000c1", State: campaigns.StateAuditing})
	c.terminal, c.interval = true, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testenv.LogBuffer // written by the live display while the test reads it
	done := make(chan int)
	go func() { done <- c.operator(&out, &errOut).Run(ctx, []string{"campaign", "status", "slow"}) }()
	testenv.Eventually(t, 10*time.Second, "a redraw", func() bool { return len(frames(out.String())) >= 2 })
	// A failing refresh keeps the last reading on the screen, says why, and tries again.
	if _, err := rec.tbl.DB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(rec.tbl.Name)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a failed refresh shown", func() bool {
		f := frames(out.String())
		return len(f) >= 2 && strings.Contains(f[len(f)-1], "Could not refresh") && strings.Contains(f[len(f)-2], "Could not refresh") &&
			strings.Contains(f[len(f)-1], "Apps: auditing 1  total 1")
	})
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != 0 || errOut.String() != "" {
			t.Fatalf("exit %d\n%s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still watching after Ctrl-C")
	}
}

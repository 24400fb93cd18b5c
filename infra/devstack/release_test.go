package devstack_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/shared/jobs"
)

// TestReleaseCheckPassesThroughTheRealBinaries runs WeChat's whole 全网发布 sequence against the stack `make dev`
// runs (the ticket, message and jobs binaries behind the local runner, DynamoDB Local, the SQS emulator) for
// a test group other than the first, with every message push delivered three times and the first
// customer-service send refused with -1 (so it goes through the job queue).
func TestReleaseCheckPassesThroughTheRealBinaries(t *testing.T) {
	stack, _, logs := startStack(t)
	ctx := context.Background()
	stack.Sandbox.SetFault("send", sandbox.Fault{BusyFirst: 1})
	report, err := stack.Sandbox.RunReleaseCheck(ctx, 3, sandbox.ReleaseCheckOptions{Deliveries: 3, CustomMessageWait: 20 * time.Second})
	if err != nil {
		t.Fatalf("release check: %v", err)
	}
	for _, st := range report.Steps {
		t.Logf("%-3v %s: %s", st.OK, st.Name, st.Detail)
	}
	if !report.Passed() {
		t.Fatal("the 全网发布 check failed")
	}
	// The official account's first send got -1 and was retried through the job queue; the mini program's passed.
	if n := stack.Sandbox.Calls("send"); n != 3 {
		t.Fatalf("customer-service send called %d times, want 3 (refused, its retry, the mini program's)", n)
	}
	group := sandbox.ReleaseTestGroups()[2]
	for _, acc := range []sandbox.Account{group.OfficialAccount, group.MiniProgram} {
		if n := len(stack.Sandbox.CustomMessages(acc.AppID)); n != 1 {
			t.Errorf("%s received %d customer-service messages, want exactly 1", acc.AppID, n)
		}
	}

	// The passive reply, byte for byte, delivered three times. Matched on content, it works for any account no
	// tenant authorized, not only the test groups' (WeChat may assign any of five, and more may come).
	if _, err := stack.Sandbox.Authorize(ctx, sandboxOfficialAccount, stack.Sandbox.CreatePreAuthCode()); err != nil {
		t.Fatal(err)
	}
	a, err := stack.Store.Authorizer(ctx, sandboxOfficialAccount)
	if err != nil {
		t.Fatal(err)
	}
	gh := a.Info.UserName
	results, err := stack.Sandbox.PushMessageTimes(ctx, sandboxOfficialAccount,
		sandbox.TextMessage(gh, "o_release_fan_bytes", "TESTCOMPONENT_MSG_TYPE_TEXT", 9123456789, time.Now()), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		ct := regexp.MustCompile(`<CreateTime>(\d+)</CreateTime>`).FindSubmatch(r.Reply)
		if ct == nil {
			t.Fatalf("delivery %d: no reply: %s", i, r.Body)
		}
		want := []byte("<xml><ToUserName><![CDATA[o_release_fan_bytes]]></ToUserName><FromUserName><![CDATA[" + gh +
			"]]></FromUserName><CreateTime>" + string(ct[1]) + "</CreateTime><MsgType><![CDATA[text]]></MsgType>" +
			"<Content><![CDATA[TESTCOMPONENT_MSG_TYPE_TEXT_callback]]></Content></xml>")
		if !bytes.Equal(r.Reply, want) || !bytes.Equal(r.Reply, results[0].Reply) {
			t.Fatalf("delivery %d replied\n%s\nwant\n%s", i, r.Reply, want)
		}
	}
	if err := stack.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "queryauthcode@@@") {
		t.Error("an authorization code appeared in the logs")
	}
}

// TestUnknownJobLandsInTheDLQWithItsReason sends what an operator might mistype with `aws sqs send-message`;
// the jobs binary, fed by the local event source, moves it to the dead-letter queue with the reason.
func TestUnknownJobLandsInTheDLQWithItsReason(t *testing.T) {
	stack, opts, _ := startStack(t)
	ctx := context.Background()
	client := sqs.NewFromConfig(opts.AWS)
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(stack.QueueURL),
		MessageBody: aws.String(`{"type":"campain","version":1,"campaign_id":"c1"}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(stack.DLQURL), MaxNumberOfMessages: 1,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 1 {
			m := out.Messages[0]
			reason := aws.ToString(m.MessageAttributes[jobs.AttrReason].StringValue)
			if !strings.Contains(reason, `unknown job type "campain"`) || !strings.Contains(aws.ToString(m.Body), `"campaign_id":"c1"`) {
				t.Fatalf("dead letter %s with reason %q", aws.ToString(m.Body), reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the unknown job never reached the dead-letter queue")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

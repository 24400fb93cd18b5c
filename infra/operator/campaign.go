package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/table"
)

// maxCampaignFile bounds what `campaign start` reads; SQS refuses far smaller messages anyway.
const maxCampaignFile = 4 << 20

// campaignStart validates a campaign job and sends it, byte for byte, to the jobs queue.
func (c *CLI) campaignStart(ctx context.Context, args []string) error {
	fs, s := c.flags("campaign start")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("campaign start: %v", err)
	}
	if len(pos) != 1 {
		return usagef("campaign start: want exactly one file (or - for stdin), got %d", len(pos))
	}
	name := pos[0]
	body, err := c.readInput(name)
	if err != nil {
		return fmt.Errorf("campaign start: %w", err)
	}
	if name == "-" {
		name = "stdin"
	}
	// Validate here, as the jobs function will: an invalid job would only reach the dead-letter queue.
	spec, err := campaigns.Parse(body)
	if err != nil {
		return fmt.Errorf("campaign start: %s: %w; nothing was sent", name, err)
	}
	if s.queueURL == "" {
		return usagef("campaign start: the jobs queue is not known: set QUEUE_URL or pass --queue-url")
	}
	// A used id is refused by the jobs function (unless the job is the same campaign): say so before sending.
	if s.table != "" {
		if err := c.checkNewCampaign(ctx, s, spec.CampaignID); err != nil {
			return err
		}
	}
	msgID, err := s.send(ctx, "campaign start", body)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("Campaign %s sent to the jobs queue (message %s): template %d, version %s, %s.\nWatch it:\n  wxtpp campaign status %s\n",
		spec.CampaignID, msgID, spec.TemplateID, spec.UserVersion, describeTargets(spec.Targets), spec.CampaignID)
	return c.print(s, struct {
		CampaignID string `json:"campaign_id"`
		MessageID  string `json:"message_id"`
	}{spec.CampaignID, msgID}, text)
}

// checkNewCampaign refuses an id that a rejected campaign holds (the job could only be refused) and warns
// about one a campaign holds (the same campaign is continued, another one refused).
func (c *CLI) checkNewCampaign(ctx context.Context, s *settings, id string) error {
	t, err := s.openTable(ctx)
	if err != nil {
		return err
	}
	old, err := (&campaigns.Store{T: t}).Campaign(ctx, id)
	switch {
	case errors.Is(err, table.ErrNotFound):
		return nil
	case err != nil:
		return s.inTable(err)
	case old.State == campaigns.CampaignRejected:
		return fmt.Errorf("campaign start: campaign id %s was used by a rejected campaign (%s): choose another campaign_id; nothing was sent", id, old.Reason)
	}
	fmt.Fprintf(c.Stderr, "wxtpp: note: campaign %s exists already (%s): the jobs function ignores this job if it is the same campaign and refuses it if it is not\n", id, old.State)
	return nil
}

func (c *CLI) readInput(name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = c.Stdin
		if r == nil {
			r = os.Stdin
		}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, maxCampaignFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(body) > maxCampaignFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxCampaignFile>>20)
	}
	return body, nil
}

func describeTargets(t campaigns.Targets) string {
	switch {
	case len(t.AppIDs) == 1:
		return "1 mini program"
	case len(t.AppIDs) > 0:
		return fmt.Sprintf("%d mini programs", len(t.AppIDs))
	case t.Tenant != "":
		return "the mini programs of tenant " + t.Tenant
	}
	return "every authorized mini program"
}

// campaignOperate sends campaign_retry or campaign_release for a campaign that exists.
func (c *CLI) campaignOperate(ctx context.Context, jobType string, args []string) error {
	verb := "retry"
	if jobType == campaigns.JobRelease {
		verb = "release"
	}
	cmd := "campaign " + verb
	fs, s := c.flags(cmd)
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("%s: %v", cmd, err)
	}
	if len(pos) != 1 {
		return usagef("%s: want exactly one campaign id, got %d", cmd, len(pos))
	}
	id := pos[0]
	if s.queueURL == "" {
		return usagef("%s: the jobs queue is not known: set QUEUE_URL or pass --queue-url", cmd)
	}
	t, err := s.openTable(ctx)
	if err != nil {
		return err
	}
	store := &campaigns.Store{T: t}
	camp, err := s.campaign(ctx, store, id)
	if err != nil {
		return err
	}
	if camp.State == campaigns.CampaignRejected {
		return fmt.Errorf("%s: campaign %s was rejected (%s): there is nothing to %s", cmd, id, camp.Reason, verb)
	}
	apps, err := store.Apps(ctx, id)
	if err != nil {
		return s.inTable(err)
	}
	counts := campaigns.Count(apps)
	var n int
	var which string
	if jobType == campaigns.JobRelease {
		n, which = counts[campaigns.StateApproved]+counts[campaigns.StateGray], "approved or gray"
	} else {
		n, which = counts[campaigns.StateFailed]+counts[campaigns.StateBlocked], "failed or blocked"
	}
	job := campaigns.CampaignRef{Envelope: jobs.Envelope{Type: jobType, Version: jobs.Version}, CampaignID: id}
	body, err := json.Marshal(job)
	if err != nil {
		return err
	}
	msgID, err := s.send(ctx, cmd, body)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("Sent %s (message %s).\n%s %s now", body, msgID, plural(n, "app is", "apps are"), which)
	if n == 0 {
		text += ": the job changes nothing unless that changes before it runs"
	}
	text += fmt.Sprintf(".\nWatch it:\n  wxtpp campaign status %s\n", id)
	return c.print(s, struct {
		CampaignID string          `json:"campaign_id"`
		Job        json.RawMessage `json:"job"`
		MessageID  string          `json:"message_id"`
		Apps       int             `json:"apps"` // approved or gray (release), failed or blocked (retry), when sent
	}{id, body, msgID, n}, text)
}

// campaign reads a campaign, naming the table when it is not there.
func (s *settings) campaign(ctx context.Context, store *campaigns.Store, id string) (campaigns.Campaign, error) {
	camp, err := store.Campaign(ctx, id)
	if errors.Is(err, table.ErrNotFound) {
		return campaigns.Campaign{}, fmt.Errorf("campaign %s not found in table %s (a campaign just sent appears when the jobs function takes its job)", id, s.table)
	}
	if err != nil {
		return campaigns.Campaign{}, s.inTable(err)
	}
	return camp, nil
}

// sqs is the SQS client, at --sqs-endpoint when given.
func (s *settings) sqs(ctx context.Context) (*sqs.Client, error) {
	cfg, err := s.aws(ctx)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if s.sqsEndpoint != "" {
			o.BaseEndpoint = aws.String(s.sqsEndpoint)
		}
	}), nil
}

// plural is "1 app is" or "3 apps are".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// send puts a job's body on the jobs queue as it is and returns the message id.
func (s *settings) send(ctx context.Context, cmd string, body []byte) (string, error) {
	client, err := s.sqs(ctx)
	if err != nil {
		return "", err
	}
	out, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.queueURL), MessageBody: aws.String(string(body))})
	if err != nil {
		return "", fmt.Errorf("%s: send to %s: %w", cmd, s.queueURL, err)
	}
	return aws.ToString(out.MessageId), nil
}

// Command jobs is the Lambda consuming the jobs queue (SQS, partial batch responses): release campaigns and
// their per-app steps, authorizations whose push could not finish at once, retried webhook deliveries and
// customer-service messages. The logic lives in shared/jobs and the packages of each job type.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/custommsg"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/tenants"
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("jobs: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	rc := relay.New(p.Config.WebhookAllowLocal)
	rc.Timeout = p.Config.RelayTimeout
	retrier := &relay.Retrier{Client: rc, Tenants: tenants.New(p.Store.Table()), RetryBase: p.Config.RetryBase}
	sender := &custommsg.Sender{Table: p.Store.Table(), Tokens: p.Authorizers, WeChat: p.WeChat, Queue: p.Queue,
		RetryBase: p.Config.RetryBase}
	authz := authorization.New(p.Store, p.Component, p.WeChat)
	authz.RetryBase, authz.Notifier = p.Config.RetryBase, p.Notifier
	handlers := p.Campaigns().Handlers()
	handlers[authorization.JobType] = authz.HandleJob
	handlers[relay.JobType] = retrier.Handle
	handlers[custommsg.JobType] = sender.Handle
	c := &jobs.Consumer{Queue: p.Queue, Logger: p.Logger, Handlers: handlers}
	lambda.Start(c.Handle)
}

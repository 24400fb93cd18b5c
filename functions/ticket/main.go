// Command ticket is the Lambda behind POST /wechat/component/events (授权事件接收URL): component_verify_ticket
// pushes and authorization notifications. The logic lives in shared/authevents.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/authevents"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/platform"
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("ticket: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	authz := authorization.New(p.Store, p.Component, p.WeChat)
	authz.Queue, authz.RetryBase = p.Queue, p.Config.RetryBase // pushes that cannot finish now finish as jobs
	authz.Notifier = p.Notifier                                // tenants hear of their accounts' authorizations
	h := &authevents.Handler{
		Crypter:        p.Crypter,
		Store:          p.Store,
		Component:      p.Component,
		Authorizations: authz,
		Logger:         p.Logger,
	}
	lambda.Start(h.Handle)
}

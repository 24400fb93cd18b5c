// Command authredirect is the Lambda behind GET /auth/start and GET /auth/callback: the merchant-facing
// authorization pages. The logic lives in shared/authpages.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/authpages"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/tenants"
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("authredirect: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	service := authorization.New(p.Store, p.Component, p.WeChat)
	service.PreAuthPerMinute = p.Config.PreAuthPerMinute
	h, err := authpages.New(authpages.Handler{
		Service:         service,
		Table:           p.Store.Table(),
		Tenants:         tenants.New(p.Store.Table()),
		ComponentAppID:  p.Config.ComponentAppID,
		PublicBaseURL:   p.Config.PublicBaseURL,
		MPBase:          p.Config.WechatMPBase,
		LinkKey:         []byte(p.Config.Secrets.LinkSigningKey),
		StateKey:        []byte(p.Config.Secrets.StateSigningKey),
		ReturnAllowlist: p.Config.ReturnURLAllowlist,
		Logger:          p.Logger,
	})
	if err != nil {
		slog.Error("authredirect: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

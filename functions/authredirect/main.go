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
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("authredirect: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	h, err := authpages.New(authpages.Handler{
		Service:         authorization.New(p.Store, p.Component, p.WeChat),
		Store:           p.Store,
		ComponentAppID:  p.Config.ComponentAppID,
		PublicBaseURL:   p.Config.PublicBaseURL,
		MPBase:          p.Config.WechatMPBase,
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

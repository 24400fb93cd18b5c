// Command authredirect is the Lambda behind GET /auth/start and GET /auth/callback, the merchant-facing
// authorization pages (shared/authpages), and GET /oauth/{appid}/start and GET /oauth/callback, fans' sign-in
// on behalf of official accounts (shared/fanauth).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/authpages"
	"github.com/wxtpp/platform/shared/fanauth"
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
	fans, err := fanauth.New(fanauth.Handler{
		Accounts:       p.Store,
		Tenants:        tenants.New(p.Store.Table()),
		Table:          p.Store.Table(),
		Component:      p.Component,
		Authorizers:    p.Authorizers,
		WeChat:         p.WeChat,
		ComponentAppID: p.Config.ComponentAppID,
		PublicBaseURL:  p.Config.PublicBaseURL,
		OpenBase:       p.Config.WechatOpenBase,
		StateKey:       []byte(p.Config.Secrets.StateSigningKey),
		Logger:         p.Logger,
	})
	if err != nil {
		slog.Error("authredirect: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if fanauth.Serves(req.RawPath) {
			return fans.Handle(ctx, req)
		}
		return h.Handle(ctx, req)
	})
}

// Command gateway is the Lambda behind the IAM-only /v1/ routes: the provider's own services call WeChat
// through it with an authorizer's or the component's token added. The logic lives in shared/gateway.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/gateway"
	"github.com/wxtpp/platform/shared/platform"
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("gateway: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	h := &gateway.Handler{Accounts: p.Store, Authorizers: p.Authorizers, Component: p.Component,
		APIBase: p.Config.WechatAPIBase, HTTP: p.WeChat.HTTP, Logger: p.Logger}
	lambda.Start(h.Handle)
}

// Command message is the Lambda behind POST /wechat/{appid}/callback (消息与事件接收URL, configured as
// .../wechat/$APPID$/callback): every message and event of every authorized account. The logic lives in
// shared/messages.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/custommsg"
	"github.com/wxtpp/platform/shared/messages"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/tenants"
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("message: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	rc := relay.New(p.Config.WebhookAllowLocal)
	rc.Timeout = p.Config.RelayTimeout
	h := &messages.Handler{
		Crypter:   p.Crypter,
		Store:     p.Store,
		Tenants:   tenants.New(p.Store.Table()),
		Audits:    audits.New(p.Store.Table()),
		Relay:     rc,
		Queue:     p.Queue,
		Exchanger: authorization.New(p.Store, p.Component, p.WeChat),
		CustomMessages: &custommsg.Sender{Table: p.Store.Table(), Tokens: p.Authorizers, WeChat: p.WeChat,
			Queue: p.Queue, RetryBase: p.Config.RetryBase},
		OnAudit: campaigns.AuditNotifier{Queue: p.Queue}.Notify,
		Logger:  p.Logger,
	}
	lambda.Start(h.Handle)
}

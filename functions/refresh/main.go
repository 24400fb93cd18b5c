// Command refresh is the Lambda on the EventBridge schedule: it refreshes the component token and every
// authorizer token due within the window, then sweeps the release campaigns. The logic lives in
// shared/refresher and shared/campaigns.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/refresher"
)

func main() {
	p, err := platform.Load(context.Background())
	if err != nil {
		slog.Error("refresh: start-up failed", "error", err.Error())
		os.Exit(1)
	}
	r := &refresher.Refresher{
		DB: p.DB, Table: p.Config.TableName,
		Component: p.Component, Authorizers: p.Authorizers,
		Logger: p.Logger,
		Sweeps: []func(context.Context) error{campaigns.SweepFunc(p.Campaigns())},
	}
	if err := r.SettingsFromEnv(os.Getenv); err != nil {
		slog.Error("refresh: bad settings", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(r.HandleScheduled)
}

// Package platform builds the dependencies every handler shares from the environment: configuration and
// secrets, the DynamoDB table, the WeChat client, message crypto and the component token. A function's
// main.go calls Load once per cold start and wires the result into its handler.
package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/config"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/lifecycle"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// Platform is what the handlers share.
type Platform struct {
	Config      config.Config
	Logger      *slog.Logger
	AWS         aws.Config
	DB          *dynamodb.Client
	Store       *tokenstore.Store
	WeChat      *wxapi.Client
	Crypter     *wxcrypt.Crypter
	Component   *credentials.Component
	Authorizers *credentials.Authorizers
	Queue       *jobs.Queue // QUEUE_URL and DLQ_URL
	// Notifier tells tenants about their accounts' lifecycle (nil without QUEUE_URL: nobody is told).
	Notifier *lifecycle.Notifier
}

// Load reads the configuration (secrets from SSM when SECRETS_PARAMETER_PREFIX is set) and builds the clients.
func Load(ctx context.Context) (*Platform, error) {
	log := logging.FromEnv()
	slog.SetDefault(log)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	var fetch config.ParameterFetcher
	if os.Getenv("SECRETS_PARAMETER_PREFIX") != "" {
		fetch = config.SSMFetcher{Client: ssm.NewFromConfig(awsCfg)}
	}
	cfg, err := config.Load(ctx, os.Getenv, fetch)
	if err != nil {
		return nil, err
	}
	return New(cfg, awsCfg, log)
}

// New builds the Platform from an already loaded configuration (tests and the local stack use it directly).
func New(cfg config.Config, awsCfg aws.Config, log *slog.Logger) (*Platform, error) {
	var prev []string
	if cfg.Secrets.EncodingAESKeyPrevious != "" {
		prev = append(prev, cfg.Secrets.EncodingAESKeyPrevious)
	}
	crypter, err := wxcrypt.New(cfg.Secrets.Token, cfg.Secrets.EncodingAESKey, cfg.ComponentAppID, prev...)
	if err != nil {
		return nil, fmt.Errorf("message crypto: %w", err)
	}
	db := NewDynamoDB(awsCfg)
	store := tokenstore.New(db, cfg.TableName)
	// Keep enough idle connections for the refresher's concurrent calls (the default keeps 2 per host).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	api := &wxapi.Client{
		BaseURL: cfg.WechatAPIBase,
		// WeChat's API does not redirect; following one would repeat the token-bearing URL in a Referer.
		HTTP:    &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Timeout: 5 * time.Second,
		Logger:  log,
	}
	opts := credentials.Options{Margin: cfg.RefreshMargin}
	component := credentials.NewComponent(store, api, cfg.ComponentAppID, cfg.Secrets.ComponentSecret, opts)
	p := &Platform{
		Config: cfg, Logger: log, AWS: awsCfg, DB: db, Store: store, WeChat: api, Crypter: crypter,
		Component: component, Authorizers: credentials.NewAuthorizers(store, component, api, opts),
		Queue: &jobs.Queue{SQS: sqs.NewFromConfig(awsCfg), URL: cfg.QueueURL, DLQURL: cfg.DLQURL},
	}
	if cfg.QueueURL != "" {
		p.Notifier = &lifecycle.Notifier{Tenants: tenants.New(store.Table()), Accounts: store, Queue: p.Queue}
	}
	p.Authorizers.OnNeedsReauth = func(ctx context.Context, appID, reason string) {
		p.Notifier.NotifyAccount(ctx, lifecycle.AccountNeedsReauth, appID, time.Now(), "", map[string]any{"reason": reason})
	}
	return p, nil
}

// Campaigns is the release pipeline over the platform's table, queue and WeChat client.
func (p *Platform) Campaigns() *campaigns.Runner {
	r := campaigns.New(p.Store.Table(), p.Store, p.Authorizers, p.WeChat, p.Queue)
	r.Timing = campaigns.Timing{RetryBase: p.Config.RetryBase, Stall: p.Config.StepStallAfter, AuditCheck: p.Config.AuditCheckAfter}
	r.Logger, r.Notifier = p.Logger, p.Notifier
	return r
}

// NewDynamoDB builds the DynamoDB client. Against DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB set) response
// checksum validation is off: the emulator's answers to failed conditional writes do not match their checksum.
// Unless cfg brings its own HTTP client, it keeps enough idle connections for the refresher's concurrency.
func NewDynamoDB(cfg aws.Config) *dynamodb.Client {
	local := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != ""
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = local
		if cfg.HTTPClient == nil {
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
				tr.MaxIdleConnsPerHost = 64
			})
		}
	})
}

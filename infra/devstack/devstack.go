// Package devstack is the whole platform on one machine: the WeChat sandbox, every Lambda function's real
// binary behind the local runner (an emulated API Gateway + Lambda Runtime API), and the table and queue in
// DynamoDB Local and the SQS emulator. `make dev` runs it through infra/cmd/devstack; end-to-end tests start
// it the same way.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wxtpp/platform/infra/freshconn"
	"github.com/wxtpp/platform/infra/localrun"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/shared/authlink"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
)

// Functions lists every Lambda function with its API routes and timeout, as template.yaml declares them. The
// timeout matters: the refresh function stops taking work when its deadline is near.
var Functions = []struct {
	Name    string
	Routes  []localrun.Route
	Timeout time.Duration
}{
	{"ticket", []localrun.Route{{Method: "POST", Path: "/wechat/component/events"}}, 10 * time.Second},
	{"authredirect", []localrun.Route{{Method: "GET", Path: "/auth/start"}, {Method: "GET", Path: "/auth/callback"}, {Method: "GET", Path: "/oauth/{appid}/start"}, {Method: "GET", Path: "/oauth/callback"}}, 20 * time.Second},
	{"refresh", nil, 240 * time.Second}, // invoked on a schedule, like EventBridge does (RefreshInterval)
	{"message", []localrun.Route{{Method: "POST", Path: "/wechat/{appid}/callback"}}, 10 * time.Second},
	{"jobs", nil, 60 * time.Second}, // fed batches from the jobs queue, like Lambda's SQS event source
	{"gateway", []localrun.Route{
		{Method: "GET", Path: "/v1/authorizers", IAM: true}, {Method: "GET", Path: "/v1/authorizers/{appid}", IAM: true},
		{Method: "GET", Path: "/v1/authorizers/{appid}/wechat/{path+}", IAM: true}, {Method: "POST", Path: "/v1/authorizers/{appid}/wechat/{path+}", IAM: true},
		{Method: "GET", Path: "/v1/component/wechat/{path+}", IAM: true}, {Method: "POST", Path: "/v1/component/wechat/{path+}", IAM: true},
	}, 25 * time.Second}, // behind AWS_IAM in AWS; the local runner checks SigV4 signatures made with the dummy credentials
}

// Options configure the stack. OptionsFromEnv fills them the way `make dev` does.
type Options struct {
	Port                                   int    // the API's port on 127.0.0.1 (DEV_PORT, default 8080); 0 = any free port
	SandboxPort                            int    // the sandbox's port (default Port+1; 0 with Port 0 = any)
	BinDir                                 string // built binaries, BinDir/<function>/bootstrap
	ComponentAppID                         string
	ComponentSecret, Token, EncodingAESKey string
	StateSigningKey                        string        // HMAC key of the authorization pages' `state`; "" = random
	LinkSigningKey                         string        // HMAC key of the signed start links (the CLI signs with it); "" = random
	ReturnURLAllowlist                     string        // RETURN_URL_ALLOWLIST for the authorization pages
	APIBase, MPBase, OpenBase              string        // WeChat to talk to; empty = start the bundled sandbox
	TicketInterval                         time.Duration // sandbox ticket pushes after the first (WeChat: 10 min); 0 = only the first
	RefreshInterval                        time.Duration // scheduled refresh runs (template: 5 min); 0 = none
	RetryBase                              time.Duration // first retry delay of failed jobs (RETRY_BASE_DELAY); 0 = the functions' default
	Table, Queue                           string
	Instances                              int // processes per function
	LogLevel                               string
	Logs                                   io.Writer // function and runner output
	AWS                                    aws.Config
	// Where the emulators answer and the region, for the operator CLI's `export` line.
	DynamoDBEndpoint, SQSEndpoint, Region string
}

// OptionsFromEnv reads WECHAT_COMPONENT_APPID, WECHAT_COMPONENT_SECRET, WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY,
// WECHAT_API_BASE, WECHAT_MP_BASE and WECHAT_OPEN_BASE (only together with WECHAT_API_BASE), STATE_SIGNING_KEY, LINK_SIGNING_KEY,
// DEV_RETURN_URL_ALLOWLIST, DEV_PORT, DEV_TICKET_INTERVAL, DEV_REFRESH_INTERVAL, RETRY_BASE_DELAY, LOG_LEVEL, and
// the emulator endpoints (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS, AWS_REGION). Secrets left unset are
// generated at random for this run (the sandbox is configured with the same values). Check finds the rest of
// what would stop Start.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	o := Options{
		Port:               8080,
		ComponentAppID:     or(getenv("WECHAT_COMPONENT_APPID"), "wxsandboxcomponent"),
		ComponentSecret:    getenv("WECHAT_COMPONENT_SECRET"),
		Token:              getenv("WECHAT_TOKEN"),
		EncodingAESKey:     getenv("WECHAT_ENCODING_AES_KEY"),
		StateSigningKey:    getenv("STATE_SIGNING_KEY"),
		LinkSigningKey:     getenv("LINK_SIGNING_KEY"),
		DynamoDBEndpoint:   getenv("AWS_ENDPOINT_URL_DYNAMODB"),
		SQSEndpoint:        getenv("AWS_ENDPOINT_URL_SQS"),
		Region:             or(getenv("AWS_REGION"), "us-east-1"),
		ReturnURLAllowlist: getenv("DEV_RETURN_URL_ALLOWLIST"),
		APIBase:            getenv("WECHAT_API_BASE"),
		MPBase:             getenv("WECHAT_MP_BASE"),
		OpenBase:           getenv("WECHAT_OPEN_BASE"),
		TicketInterval:     10 * time.Minute,
		RefreshInterval:    time.Minute,
		Table:              "wxtpp-dev",
		Queue:              "wxtpp-jobs",
		Instances:          2,
		LogLevel:           or(getenv("LOG_LEVEL"), "info"),
	}
	if v := getenv("DEV_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return Options{}, fmt.Errorf("DEV_PORT %q is not a port number", v)
		}
		o.Port = p
	}
	if v := getenv("DEV_TICKET_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Options{}, fmt.Errorf("DEV_TICKET_INTERVAL %q is not a duration (like 10m; 0 = only the first push)", v)
		}
		o.TicketInterval = d
	}
	if v := getenv("RETRY_BASE_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Options{}, fmt.Errorf("RETRY_BASE_DELAY %q is not a positive duration", v)
		}
		o.RetryBase = d
	}
	if v := getenv("DEV_REFRESH_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Options{}, fmt.Errorf("DEV_REFRESH_INTERVAL %q is not a duration (like 1m; 0 = never)", v)
		}
		o.RefreshInterval = d
	}
	switch strings.ToLower(o.LogLevel) {
	case "debug", "info", "warn", "error":
	default: // the functions would quietly log at info
		return Options{}, fmt.Errorf("LOG_LEVEL %q: use debug, info, warn or error", o.LogLevel)
	}
	if o.MPBase != "" && o.APIBase == "" {
		return Options{}, errors.New("WECHAT_MP_BASE is set without WECHAT_API_BASE: the bundled sandbox serves both, so set both (for another WeChat) or neither (for the sandbox)")
	}
	if o.OpenBase != "" && o.APIBase == "" {
		return Options{}, errors.New("WECHAT_OPEN_BASE is set without WECHAT_API_BASE: the bundled sandbox serves both, so set both (for another WeChat) or neither (for the sandbox)")
	}
	if o.APIBase != "" && (o.ComponentSecret == "" || o.Token == "" || o.EncodingAESKey == "") {
		return Options{}, errors.New("WECHAT_API_BASE is set, so the sandbox is not started: set WECHAT_COMPONENT_SECRET, WECHAT_TOKEN and WECHAT_ENCODING_AES_KEY for that WeChat too")
	}
	if o.ComponentSecret == "" {
		o.ComponentSecret = randomString(24)
	}
	if o.Token == "" {
		o.Token = randomString(16)
	}
	if o.EncodingAESKey == "" {
		o.EncodingAESKey = RandomEncodingAESKey()
	}
	if o.StateSigningKey == "" {
		o.StateSigningKey = randomString(32)
	}
	if o.LinkSigningKey == "" {
		o.LinkSigningKey = randomString(32)
	}
	return o, nil
}

// DemoTenant is the tenant `make dev` creates and prints a signed authorization link for.
const DemoTenant = "demo"

var demoName = "Demo merchant"

// Stack is a running local platform.
type Stack struct {
	URL        string // the API: what API Gateway would be
	SandboxURL string // "" when talking to an external WeChat
	QueueURL   string
	DLQURL     string
	Runner     *localrun.Runner
	Sandbox    *sandbox.Sandbox
	Store      *tokenstore.Store
	Tenants    *tenants.Store

	opts    Options
	apiBase string // the WeChat API the functions call
	db      *dynamodb.Client
	server  *http.Server
	fresh   freshconn.Tracker

	stopSources context.CancelFunc // the SQS event source
	stop        chan struct{}
	wg          sync.WaitGroup

	mu          sync.Mutex  // guards what the status page reads:
	lastRefresh *refreshRun // the last refresh invocation (RunRefresh), nil before the first
	nextRefresh time.Time   // when the schedule invokes it next; zero without a schedule
}

// Start builds nothing: it expects the binaries in opts.BinDir (see Build). It creates the table and queues,
// starts the sandbox, the functions and the API, pushes the first ticket, and returns once all are serving.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	if opts.StateSigningKey == "" {
		opts.StateSigningKey = randomString(32)
	}
	if opts.LinkSigningKey == "" {
		opts.LinkSigningKey = randomString(32)
	}
	s := &Stack{opts: opts, stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	db := platform.NewDynamoDB(opts.AWS)
	err := table.Create(ctx, db, opts.Table)
	if err != nil {
		return nil, err
	}
	s.Store = tokenstore.New(db, opts.Table)
	s.Tenants = tenants.New(s.Store.Table())
	s.db = db
	sqsClient := sqs.NewFromConfig(opts.AWS)
	var queueARN string
	if s.QueueURL, s.DLQURL, queueARN, err = createQueues(ctx, sqsClient, opts.Queue); err != nil {
		return nil, err
	}
	// The tenant the printed link is for, created as an operator would (wxtpp tenant set demo).
	if _, err := s.Tenants.Set(ctx, DemoTenant, tenants.Changes{Name: &demoName}); err != nil {
		return nil, err
	}

	apiLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", opts.Port))
	if err != nil {
		return nil, fmt.Errorf("listen on DEV_PORT %d: %w", opts.Port, err)
	}
	s.URL = "http://" + apiLn.Addr().String()
	authDomain, _, _ := net.SplitHostPort(apiLn.Addr().String())

	apiBase, mpBase, openBase := opts.APIBase, opts.MPBase, opts.OpenBase
	if apiBase == "" {
		sb, err := sandbox.New(sandbox.Config{
			ComponentAppID: opts.ComponentAppID, ComponentSecret: opts.ComponentSecret,
			Token: opts.Token, EncodingAESKey: opts.EncodingAESKey,
			PushURL:    s.URL + "/wechat/component/events",
			MessageURL: s.URL + "/wechat/$APPID$/callback",
			// WeChat's 授权发起页域名 check: its login page must be reached by a click on a page of this host
			// (our /auth/start), and redirect_uri must be under it.
			AuthDomain: authDomain,
			// The 公众号开发域名: fans' web authorization must come back under it (our /oauth/callback).
			OAuthDomain: authDomain,
			// WeChat pushes a ticket every 10 minutes. We push the first one ourselves, once the ticket URL
			// answers (below); the sandbox's timer pushes the next ones and shows them on its page.
			TicketInterval: opts.TicketInterval, ManualFirstTicket: true,
			Logger: slog.New(slog.NewJSONHandler(&prefixed{"[sandbox] ", opts.Logs}, &slog.HandlerOptions{ReplaceAttr: logging.DurationText})),
		})
		if err != nil {
			apiLn.Close()
			return nil, err
		}
		if s.SandboxURL, err = sb.StartAt(fmt.Sprintf("127.0.0.1:%d", opts.sandboxPort())); err != nil {
			apiLn.Close()
			return nil, fmt.Errorf("start the WeChat sandbox: %w", err)
		}
		s.Sandbox = sb
		apiBase, mpBase, openBase = s.SandboxURL, s.SandboxURL, s.SandboxURL
	}
	s.apiBase = apiBase
	if mpBase == "" {
		mpBase = "https://mp.weixin.qq.com"
	}
	if openBase == "" {
		openBase = "https://open.weixin.qq.com"
	}

	env := opts.functionEnv(s.URL, s.QueueURL, s.DLQURL, apiBase, mpBase, openBase)
	fns := make([]localrun.Function, 0, len(Functions))
	for _, f := range Functions {
		fns = append(fns, localrun.Function{
			Name: f.Name, Binary: filepath.Join(opts.BinDir, f.Name, "bootstrap"),
			Env: env, Routes: f.Routes, Instances: max(opts.Instances, 1), Timeout: f.Timeout,
		})
	}
	if s.Runner, err = localrun.Start(ctx, fns, opts.Logs); err != nil {
		apiLn.Close()
		return nil, fmt.Errorf("start the functions: %w", err)
	}

	// The jobs function gets the queue's batches as Lambda's event source mapping would deliver them.
	src := &localrun.SQSSource{Runner: s.Runner, Function: "jobs", SQS: sqsClient, QueueURL: s.QueueURL, QueueARN: queueARN,
		Region: opts.Region, VisibilityTimeout: 2 * time.Minute, Logs: opts.Logs}
	srcCtx, srcStop := context.WithCancel(context.Background())
	s.stopSources = srcStop
	s.wg.Go(func() { src.Run(srcCtx) })

	mux := http.NewServeMux()
	mux.Handle("/", s.Runner)
	mux.HandleFunc("GET /{$}", s.index) // the start page; every other path is the functions'
	mux.HandleFunc("GET "+StatusPath, s.status)
	mux.HandleFunc("GET "+MerchantPath, s.merchant)
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnState: s.fresh.Track}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(opts.Logs, "[devstack] API server stopped: %v\n", err)
		}
	}()

	if s.Sandbox != nil {
		// The first ticket now that the ticket URL answers; the sandbox's timer pushes one per
		// TicketInterval after it, as WeChat does.
		if _, err := s.Sandbox.PushTicket(ctx); err != nil {
			return nil, fmt.Errorf("first ticket push: %w", err)
		}
	}
	if opts.RefreshInterval > 0 {
		s.scheduleRefresh(opts.RefreshInterval)
	}
	ok = true
	return s, nil
}

// scheduleRefresh invokes the refresh function each interval until Close, as the EventBridge schedule does.
func (s *Stack) scheduleRefresh(interval time.Duration) {
	s.setNextRefresh(time.Now().Add(interval))
	s.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case tick := <-t.C:
				s.setNextRefresh(tick.Add(interval))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				if _, err := s.RunRefresh(ctx); err != nil {
					fmt.Fprintf(s.opts.Logs, "[devstack] scheduled refresh failed: %v\n", err)
				}
				cancel()
			}
		}
	})
}

func (s *Stack) setNextRefresh(t time.Time) {
	s.mu.Lock()
	s.nextRefresh = t
	s.mu.Unlock()
}

// RunRefresh invokes the refresh function with the event an EventBridge schedule sends, and returns the
// function's answer (its run report, JSON). The status page shows the last one's outcome.
func (s *Stack) RunRefresh(ctx context.Context) ([]byte, error) {
	ev, err := json.Marshal(map[string]any{
		"version": "0", "id": fmt.Sprintf("dev-%d", time.Now().UnixNano()), "detail-type": "Scheduled Event",
		"source": "aws.events", "account": localrun.AccountID, "time": time.Now().UTC().Format(time.RFC3339),
		"region": "us-east-1", "resources": []string{"arn:aws:events:us-east-1:" + localrun.AccountID + ":rule/wxtpp-refresh"},
		"detail": map[string]any{},
	})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	out, err := s.Runner.Invoke(ctx, "refresh", ev)
	s.recordRefresh(start, out, err)
	return out, err
}

// Close stops everything Start started.
func (s *Stack) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
		close(s.stop)
	}
	var errs []error
	if s.stopSources != nil {
		s.stopSources()
	}
	if s.server != nil {
		s.fresh.CloseAll()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := s.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("API server did not stop in time, connections closed: %w", err), s.server.Close())
		}
		cancel()
	}
	if s.Runner != nil {
		errs = append(errs, s.Runner.Close())
	}
	if s.Sandbox != nil {
		errs = append(errs, s.Sandbox.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// AuthLink is a signed authorization link for tenant, valid for ttl: what `wxtpp auth-link` prints.
func (s *Stack) AuthLink(tenant string, ttl time.Duration) (string, error) {
	return authlink.Link{Tenant: tenant, Expires: time.Now().Add(ttl).Truncate(time.Second)}.URL([]byte(s.opts.LinkSigningKey), s.URL)
}

// CLIEnv is what the operator CLI needs to reach this stack: the table, the queue, the emulators (with dummy
// credentials), the public URL and the link signing key.
func (s *Stack) CLIEnv() []string {
	return []string{
		"TABLE_NAME=" + s.opts.Table,
		"QUEUE_URL=" + s.QueueURL,
		"DLQ_URL=" + s.DLQURL,
		"WEBHOOK_ALLOW_LOCAL=1", // merchants' webhooks in the local stack are on this machine
		"AWS_REGION=" + s.opts.Region,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.opts.DynamoDBEndpoint,
		"AWS_ENDPOINT_URL_SQS=" + s.opts.SQSEndpoint,
		"AWS_ACCESS_KEY_ID=dummy",
		"AWS_SECRET_ACCESS_KEY=dummy",
		"AWS_EC2_METADATA_DISABLED=true",
		"PUBLIC_BASE_URL=" + s.URL,
		"LINK_SIGNING_KEY=" + s.opts.LinkSigningKey,
		"WEBHOOK_ALLOW_LOCAL=1",
		// The template library (`wxtpp templates`) is the component's: the CLI needs its WeChat and identity.
		"WECHAT_API_BASE=" + s.apiBase,
		"WECHAT_COMPONENT_APPID=" + s.opts.ComponentAppID,
		"WECHAT_COMPONENT_SECRET=" + s.opts.ComponentSecret,
	}
}

// PrintURLs tells a person where to go.
func (s *Stack) PrintURLs(w io.Writer) error {
	link, err := s.AuthLink(DemoTenant, 7*24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThe platform is running. Open:\n")
	fmt.Fprintf(w, "  Start page (首页)          %s/\n", s.URL)
	fmt.Fprintf(w, "  Status (local only)        %s%s\n", s.URL, StatusPath)
	fmt.Fprintf(w, "  Authorize an account (商户授权), tenant %s:\n    %s\n", DemoTenant, link)
	if s.SandboxURL != "" {
		fmt.Fprintf(w, "  WeChat sandbox             %s/sandbox/\n", s.SandboxURL)
	}
	fmt.Fprintf(w, "URLs to give WeChat (Open Platform console, 开发资料):\n")
	fmt.Fprintf(w, "  授权事件接收URL             %s/wechat/component/events\n", s.URL)
	fmt.Fprintf(w, "  消息与事件接收URL           %s/wechat/$APPID$/callback\n", s.URL)
	if u, err := url.Parse(s.URL); err == nil {
		fmt.Fprintf(w, "  授权发起页域名              %s\n", u.Hostname())
	}
	fmt.Fprintf(w, "Operator CLI in a second terminal (tenants, signed links, campaigns): paste this line, then run build/wxtpp help\n")
	fmt.Fprintf(w, "  export %s\n", strings.Join(s.CLIEnv(), " "))
	fmt.Fprintf(w, "Release campaign (after authorizing a mini program above):\n")
	fmt.Fprintf(w, "  build/wxtpp templates && build/wxtpp templates add 3\n")
	fmt.Fprintf(w, "  build/wxtpp campaign start examples/campaign.json && build/wxtpp campaign status demo-1\n")
	fmt.Fprintf(w, "Fan sign-in (after authorizing an official account above; allow the demo page's origin once):\n")
	fmt.Fprintf(w, "  build/wxtpp tenant set %s --return-origin %s\n", DemoTenant, tenants.OriginOf(s.URL))
	fmt.Fprintf(w, "  Merchant page (demo)       %s%s\n", s.URL, MerchantPath)
	fmt.Fprintf(w, "Press Ctrl-C to stop everything.\n\n")
	return nil
}

// Build compiles every function for this machine into binDir/<name>/bootstrap.
func Build(ctx context.Context, repoRoot, binDir string) error {
	for _, f := range Functions {
		out := filepath.Join(binDir, f.Name, "bootstrap")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", out, "./functions/"+f.Name)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build functions/%s: %w\n%s", f.Name, err, b)
		}
	}
	return nil
}

// createQueues creates the jobs queue and its dead-letter queue as template.yaml does, and returns their URLs
// and the queue's ARN.
func createQueues(ctx context.Context, client *sqs.Client, name string) (queueURL, dlqURL, queueARN string, err error) {
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return "", "", "", fmt.Errorf("create queue %s-dlq: %w", name, err)
	}
	arn := func(url *string) (string, error) {
		attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: url, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			return "", fmt.Errorf("read queue arn: %w", err)
		}
		return attrs.Attributes["QueueArn"], nil
	}
	dlqARN, err := arn(dlq.QueueUrl)
	if err != nil {
		return "", "", "", err
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlqARN, jobs.MaxReceives)
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(name),
		Attributes: map[string]string{
			"RedrivePolicy":     redrive,
			"VisibilityTimeout": "360",
		},
	})
	if err != nil {
		return "", "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	queueARN, err = arn(q.QueueUrl)
	if err != nil {
		return "", "", "", err
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl), queueARN, nil
}

// RandomEncodingAESKey returns a fresh 43-character EncodingAESKey (alphanumeric, as WeChat generates them).
func RandomEncodingAESKey() string {
	for {
		var b [32]byte
		_, _ = rand.Read(b[:])
		k := strings.TrimRight(base64.StdEncoding.EncodeToString(b[:]), "=")
		if !strings.ContainsAny(k, "+/") {
			return k
		}
	}
}

func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// prefixed writes each line with a prefix, like the runner does for functions.
type prefixed struct {
	prefix string
	w      io.Writer
}

func (p *prefixed) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			if _, err := io.WriteString(p.w, p.prefix+line); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

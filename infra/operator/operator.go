// Package operator is the service provider's command line (infra/cmd/wxtpp): tenants, the signed links
// that let a tenant's merchant authorize an account, release campaigns and the code template library.
//
// It reads the variables the functions read (TABLE_NAME, QUEUE_URL, AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_SQS, PUBLIC_BASE_URL, WECHAT_COMPONENT_APPID, WECHAT_API_BASE, and the secrets it needs
// from their variables or, with SECRETS_PARAMETER_PREFIX, from SSM), with flags to override each, and the
// standard AWS credential chain. Every command takes --json for machine-readable output.
package operator

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/wxtpp/platform/shared/authlink"
	"github.com/wxtpp/platform/shared/campaigns"
	"github.com/wxtpp/platform/shared/config"
	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Usage is the CLI's help text.
const Usage = `wxtpp: operate the WeChat third-party platform

Commands:
  tenant set T [--name N] [--webhook URL] [--return-origin URL ...] [--remove-return-origin URL ...]
                              create tenant T, or update it; a webhook or a return origin (a merchant page a
                              fan's sign-in may return to) gets the tenant a signing secret, printed once
                              (--webhook "" removes the webhook)
  tenant show T               show tenant T (never its secret)
  authorizers [--tenant T]    list authorized accounts (never their tokens)
  auth-link --tenant T [--ttl 7d] [--auth-type 1|2|3] [--biz-appid wx...] [--return-url URL]
                              print a signed authorization link for tenant T (its last line)
  campaign start FILE         validate a campaign job (FILE, or - for stdin) and send it to the jobs queue
  campaign status ID [--once] a campaign's progress; redrawn every 2s on a terminal until it settles
  campaign retry ID           resume the campaign's failed and blocked apps
  campaign release ID         fully release the campaign's approved (manual) and gray apps
  templates                   list the component's template drafts and templates
  templates add DRAFT_ID      add a draft to the template library
  templates delete TEMPLATE_ID
                              delete a template from the library

Every command takes:
  --json                      machine-readable output
  --table NAME                the platform's table             (TABLE_NAME)
  --queue-url URL             the jobs queue                   (QUEUE_URL)
  --region REGION             AWS region                       (AWS_REGION)
  --dynamodb-endpoint URL     DynamoDB endpoint                (AWS_ENDPOINT_URL_DYNAMODB)
  --sqs-endpoint URL          SQS endpoint                     (AWS_ENDPOINT_URL_SQS)
  --base-url URL              the platform's public base URL   (PUBLIC_BASE_URL)
  --secrets-prefix PATH       SSM path of the secrets          (SECRETS_PARAMETER_PREFIX; else LINK_SIGNING_KEY
                              and WECHAT_COMPONENT_SECRET)
  --allow-local-webhooks      accept http and private addresses (WEBHOOK_ALLOW_LOCAL=1; the local stack only)
  --component-appid APPID     the third-party platform's appid (WECHAT_COMPONENT_APPID; templates)
  --wechat-base URL           WeChat's API base URL            (WECHAT_API_BASE; default https://api.weixin.qq.com)
AWS credentials come from the standard chain (environment, profile, SSO, instance role).
`

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // the command line is wrong
)

// CLI is one invocation's environment.
type CLI struct {
	Getenv func(string) string
	Stdin  io.Reader // `campaign start -`; nil means os.Stdin
	Stdout io.Writer
	Stderr io.Writer
	Now    func() time.Time
	// IsTerminal reports whether Stdout is a terminal (the live status display); nil checks os.Stdout.
	IsTerminal func() bool
	// Interval is how often the live status display redraws; zero means 2s.
	Interval time.Duration
}

// settings are the common flags, defaulted from the environment.
type settings struct {
	json                        bool
	table, queueURL, region     string
	dynamoEndpoint, sqsEndpoint string
	baseURL, secretsPrefix      string
	allowLocal                  bool
	componentAppID, wechatBase  string
	getenv                      func(string) string
}

func (c *CLI) flags(name string) (*flag.FlagSet, *settings) {
	s := &settings{getenv: c.Getenv}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by Run
	fs.BoolVar(&s.json, "json", false, "")
	fs.StringVar(&s.table, "table", c.Getenv("TABLE_NAME"), "")
	fs.StringVar(&s.queueURL, "queue-url", c.Getenv("QUEUE_URL"), "")
	fs.StringVar(&s.region, "region", c.Getenv("AWS_REGION"), "")
	fs.StringVar(&s.dynamoEndpoint, "dynamodb-endpoint", c.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "")
	fs.StringVar(&s.sqsEndpoint, "sqs-endpoint", c.Getenv("AWS_ENDPOINT_URL_SQS"), "")
	fs.StringVar(&s.baseURL, "base-url", c.Getenv("PUBLIC_BASE_URL"), "")
	fs.StringVar(&s.secretsPrefix, "secrets-prefix", c.Getenv("SECRETS_PARAMETER_PREFIX"), "")
	allow := c.Getenv("WEBHOOK_ALLOW_LOCAL")
	fs.BoolVar(&s.allowLocal, "allow-local-webhooks", allow == "1" || allow == "true", "")
	fs.StringVar(&s.componentAppID, "component-appid", c.Getenv("WECHAT_COMPONENT_APPID"), "")
	fs.StringVar(&s.wechatBase, "wechat-base", or(c.Getenv("WECHAT_API_BASE"), wxapi.DefaultBaseURL), "")
	return fs, s
}

// parse parses flags that may come before, between or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usageError is a wrong command line: exit 2 with the message and a pointer to the help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// Run runs one command line (without the program name) and returns the exit code.
func (c *CLI) Run(ctx context.Context, args []string) int {
	if c.Now == nil {
		c.Now = time.Now
	}
	err := c.run(ctx, args)
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.Stdout, Usage)
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.Stderr, "wxtpp: %s\nRun `wxtpp help` for the commands.\n", ue.msg)
		return ExitUsage
	default:
		fmt.Fprintf(c.Stderr, "wxtpp: %v\n", err)
		return ExitError
	}
}

func (c *CLI) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help", "-h", "--help":
		return flag.ErrHelp
	case "tenant":
		if len(rest) == 0 {
			return usagef("tenant: want `tenant set T` or `tenant show T`")
		}
		switch rest[0] {
		case "set":
			return c.tenantSet(ctx, rest[1:])
		case "show":
			return c.tenantShow(ctx, rest[1:])
		}
		return usagef("tenant %s: unknown subcommand (set, show)", rest[0])
	case "auth-link":
		return c.authLink(ctx, rest)
	case "authorizers":
		return c.authorizers(ctx, rest)
	case "campaign":
		if len(rest) == 0 {
			return usagef("campaign: want `campaign start FILE`, `campaign status ID`, `campaign retry ID` or `campaign release ID`")
		}
		switch rest[0] {
		case "start":
			return c.campaignStart(ctx, rest[1:])
		case "status":
			return c.campaignStatus(ctx, rest[1:])
		case "retry":
			return c.campaignOperate(ctx, campaigns.JobRetry, rest[1:])
		case "release":
			return c.campaignOperate(ctx, campaigns.JobRelease, rest[1:])
		}
		return usagef("campaign %s: unknown subcommand (start, status, retry, release)", rest[0])
	case "templates":
		if len(rest) > 0 {
			switch rest[0] {
			case "list":
				return c.templatesList(ctx, rest[1:])
			case "add":
				return c.templatesAdd(ctx, rest[1:])
			case "delete":
				return c.templatesDelete(ctx, rest[1:])
			}
			if !strings.HasPrefix(rest[0], "-") {
				return usagef("templates %s: unknown subcommand (add, delete; none lists)", rest[0])
			}
		}
		return c.templatesList(ctx, rest)
	}
	return usagef("unknown command %q", args[0])
}

// tenants opens the tenant records.
func (s *settings) tenants(ctx context.Context) (*tenants.Store, error) {
	t, err := s.openTable(ctx)
	if err != nil {
		return nil, err
	}
	return tenants.New(t), nil
}

// openTable opens the platform's table.
func (s *settings) openTable(ctx context.Context) (*table.Table, error) {
	if s.table == "" {
		return nil, usagef("the platform's table is not known: set TABLE_NAME or pass --table")
	}
	cfg, err := s.aws(ctx)
	if err != nil {
		return nil, err
	}
	db := platform.NewDynamoDB(cfg)
	if s.dynamoEndpoint != "" && s.dynamoEndpoint != s.getenv("AWS_ENDPOINT_URL_DYNAMODB") {
		db = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(s.dynamoEndpoint)
			o.DisableValidateResponseChecksum = true
		})
	}
	return table.New(db, s.table), nil
}

// inTable names the table in an error from it: the operator may be pointed at the wrong one.
func (s *settings) inTable(err error) error { return fmt.Errorf("%w (table %s)", err, s.table) }

func (s *settings) aws(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if s.region != "" {
		opts = append(opts, awsconfig.WithRegion(s.region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// print writes v as JSON with --json, else text.
func (c *CLI) print(s *settings, v any, text string) error {
	if s.json {
		enc := json.NewEncoder(c.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := io.WriteString(c.Stdout, text)
	return err
}

func (c *CLI) tenantSet(ctx context.Context, args []string) error {
	fs, s := c.flags("tenant set")
	var name, webhook optional
	var addOrigins, removeOrigins repeated
	fs.Var(&name, "name", "")
	fs.Var(&webhook, "webhook", "")
	fs.Var(&addOrigins, "return-origin", "")
	fs.Var(&removeOrigins, "remove-return-origin", "")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("tenant set: %v", err)
	}
	if len(pos) != 1 {
		return usagef("tenant set: want exactly one tenant id, got %d", len(pos))
	}
	if !tenants.ValidID(pos[0]) {
		return usagef("tenant set: %q is not a tenant id (1 to 64 letters, digits, _ . or -)", pos[0])
	}
	if webhook.set && webhook.v != "" {
		if err := relay.CheckURL(ctx, webhook.v, s.allowLocal); err != nil {
			return usagef("tenant set: --webhook: %v", err)
		}
	}
	for _, o := range append(append([]string(nil), addOrigins...), removeOrigins...) {
		if _, err := tenants.Origin(o); err != nil {
			return usagef("tenant set: %v", err)
		}
	}
	store, err := s.tenants(ctx)
	if err != nil {
		return err
	}
	r, err := store.Set(ctx, pos[0], tenants.Changes{Name: name.ptr(), Webhook: webhook.ptr(), AddOrigins: addOrigins, RemoveOrigins: removeOrigins})
	if err != nil {
		return s.inTable(err)
	}
	verb := "updated"
	if r.Created {
		verb = "created"
	}
	text := fmt.Sprintf("tenant %s %s\n%s", r.Tenant.ID, verb, describe(r.Tenant))
	if r.NewSecret != "" {
		text += fmt.Sprintf("Signing secret (shown this once; the merchant verifies X-Wxtpp-Signature and wx_identity with it):\n%s\n", r.NewSecret)
	}
	return c.print(s, struct {
		tenants.Tenant
		Created       bool   `json:"created"`
		SigningSecret string `json:"signing_secret,omitempty"`
	}{r.Tenant, r.Created, r.NewSecret}, text)
}

func (c *CLI) tenantShow(ctx context.Context, args []string) error {
	fs, s := c.flags("tenant show")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("tenant show: %v", err)
	}
	if len(pos) != 1 {
		return usagef("tenant show: want exactly one tenant id, got %d", len(pos))
	}
	store, err := s.tenants(ctx)
	if err != nil {
		return err
	}
	t, err := store.Get(ctx, pos[0])
	if err != nil {
		return s.inTable(err)
	}
	return c.print(s, t, describe(t))
}

func describe(t tenants.Tenant) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  id:       %s\n", t.ID)
	if t.Name != "" {
		fmt.Fprintf(&b, "  name:     %s\n", t.Name)
	}
	webhook := "none"
	if t.Webhook != "" {
		webhook = t.Webhook
	}
	fmt.Fprintf(&b, "  webhook:  %s\n", webhook)
	origins := "none"
	if len(t.ReturnOrigins) > 0 {
		origins = strings.Join(slices.Sorted(slices.Values(t.ReturnOrigins)), " ")
	}
	fmt.Fprintf(&b, "  origins:  %s\n", origins)
	secret := "none yet"
	if t.SigningSecret != "" {
		secret = "set (shown once, when it was generated)"
	}
	fmt.Fprintf(&b, "  secret:   %s\n", secret)
	fmt.Fprintf(&b, "  created:  %s\n", time.UnixMilli(t.CreatedAt).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "  updated:  %s\n", time.UnixMilli(t.UpdatedAt).UTC().Format(time.RFC3339))
	return b.String()
}

func (c *CLI) authLink(ctx context.Context, args []string) error {
	fs, s := c.flags("auth-link")
	tenant := fs.String("tenant", "", "")
	ttl := fs.String("ttl", "7d", "")
	authType := fs.String("auth-type", "", "")
	biz := fs.String("biz-appid", "", "")
	returnURL := fs.String("return-url", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("auth-link: %v", err)
	}
	if len(pos) != 0 {
		return usagef("auth-link: unexpected argument %q (the tenant goes in --tenant)", pos[0])
	}
	if *tenant == "" {
		return usagef("auth-link: --tenant is required")
	}
	life, err := authlink.ParseTTL(*ttl)
	if err != nil {
		return usagef("auth-link: %v", err)
	}
	link := authlink.Link{Tenant: *tenant, Expires: c.Now().Add(life).Truncate(time.Second), AuthType: *authType,
		BizAppID: *biz, ReturnURL: *returnURL}
	if err := link.Validate(); err != nil {
		return usagef("auth-link: %v", err)
	}
	if s.baseURL == "" {
		return usagef("auth-link: the platform's public URL is not known: set PUBLIC_BASE_URL or pass --base-url")
	}
	store, err := s.tenants(ctx)
	if err != nil {
		return err
	}
	if _, err := store.Get(ctx, *tenant); err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			return fmt.Errorf("auth-link: tenant %s does not exist; create it first with `wxtpp tenant set %s`", *tenant, *tenant)
		}
		return s.inTable(err)
	}
	key, err := s.linkKey(ctx)
	if err != nil {
		return err
	}
	u, err := link.URL([]byte(key), s.baseURL)
	if err != nil {
		return err
	}
	out := struct {
		Tenant    string `json:"tenant"`
		ExpiresAt string `json:"expires_at"`
		AuthType  string `json:"auth_type,omitempty"`
		BizAppID  string `json:"biz_appid,omitempty"`
		ReturnURL string `json:"return_url,omitempty"`
		Link      string `json:"link"`
	}{link.Tenant, link.Expires.UTC().Format(time.RFC3339), link.AuthType, link.BizAppID, link.ReturnURL, u}
	text := fmt.Sprintf("Authorization link for tenant %s, valid until %s:\n%s\n", link.Tenant, out.ExpiresAt, u)
	return c.print(s, out, text)
}

// linkKey reads the link signing key: LINK_SIGNING_KEY, or link_signing_key under the SSM prefix.
func (s *settings) linkKey(ctx context.Context) (string, error) {
	key, err := s.secret(ctx, "link_signing_key")
	if err != nil {
		return "", fmt.Errorf("the link signing key: %w", err)
	}
	if len(key) < authlink.MinKey {
		return "", fmt.Errorf("the link signing key is shorter than %d bytes", authlink.MinKey)
	}
	return key, nil
}

// secret reads one secret as the functions do (config.Secret): from its variable, or under the SSM prefix
// (--secrets-prefix overrides SECRETS_PARAMETER_PREFIX).
func (s *settings) secret(ctx context.Context, name string) (string, error) {
	getenv := func(name string) string {
		if name == "SECRETS_PARAMETER_PREFIX" {
			return s.secretsPrefix
		}
		return s.getenv(name)
	}
	var fetch config.ParameterFetcher
	if s.secretsPrefix != "" {
		cfg, err := s.aws(ctx)
		if err != nil {
			return "", err
		}
		fetch = config.SSMFetcher{Client: ssm.NewFromConfig(cfg)}
	}
	return config.Secret(ctx, getenv, fetch, name)
}

// optional is a string flag that knows whether it was given.
// repeated is a flag that may be given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

type optional struct {
	v   string
	set bool
}

func (o *optional) String() string { return o.v }
func (o *optional) Set(v string) error {
	o.v, o.set = v, true
	return nil
}
func (o *optional) ptr() *string {
	if !o.set {
		return nil
	}
	return &o.v
}

func (c *CLI) authorizers(ctx context.Context, args []string) error {
	fs, s := c.flags("authorizers")
	tenant := fs.String("tenant", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("authorizers: %v", err)
	}
	if len(pos) != 0 {
		return usagef("authorizers: unexpected argument %q (the tenant goes in --tenant)", pos[0])
	}
	t, err := s.openTable(ctx)
	if err != nil {
		return err
	}
	list, err := tokenstore.New(t.DB, t.Name).Authorizers(ctx, *tenant)
	if err != nil {
		return s.inTable(err)
	}
	type row struct {
		AppID          string `json:"appid"`
		Tenant         string `json:"tenant,omitempty"`
		Kind           string `json:"kind,omitempty"`
		Status         string `json:"status"`
		Name           string `json:"nickname,omitempty"`
		PermissionSets []int  `json:"permission_sets"`
		TokenExpiresAt string `json:"token_expires_at,omitempty"`
	}
	rows := make([]row, 0, len(list))
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %-14s %-15s %-12s %s\n", "APPID", "TENANT", "KIND", "STATUS", "NAME")
	for _, a := range list {
		r := row{AppID: a.AppID, Tenant: a.Tenant, Kind: a.Kind, Status: a.Status, Name: a.Info.NickName, PermissionSets: a.PermissionSets}
		if r.PermissionSets == nil {
			r.PermissionSets = []int{}
		}
		if a.ExpiresAt > 0 {
			r.TokenExpiresAt = time.UnixMilli(a.ExpiresAt).UTC().Format(time.RFC3339)
		}
		rows = append(rows, r)
		fmt.Fprintf(&b, "%-20s %-14s %-15s %-12s %s\n", a.AppID, or(a.Tenant, "-"), or(a.Kind, "-"), a.Status, a.Info.NickName)
	}
	fmt.Fprintf(&b, "%d account(s)\n", len(rows))
	return c.print(s, rows, b.String())
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Package config loads the platform's settings: plain values from environment variables set by the SAM
// template, secrets from SSM Parameter Store (SecureString) in AWS or from environment variables locally.
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is everything a handler needs to start. Secret fields are never logged: Config and Secrets redact
// them when logged with slog, printed with fmt or encoded with encoding/json.
type Config struct {
	TableName          string
	QueueURL           string
	DLQURL             string // the jobs queue's dead-letter queue: jobs that cannot run go there with their reason
	PublicBaseURL      string // https://… of the HTTP API, used to build redirect URIs
	ComponentAppID     string
	WechatAPIBase      string // https://api.weixin.qq.com, or the sandbox
	WechatMPBase       string // https://mp.weixin.qq.com, or the sandbox
	WechatOpenBase     string // https://open.weixin.qq.com (fans' web authorization), or the sandbox
	ReturnURLAllowlist []string
	// RefreshMargin is how long before expiry a token is refreshed.
	RefreshMargin time.Duration
	// PreAuthPerMinute bounds the pre_auth_codes the platform gets from WeChat per minute, all tenants together.
	PreAuthPerMinute int
	// RelayTimeout is how long a merchant's webhook has to answer a delivery (RELAY_TIMEOUT, default 3s).
	RelayTimeout time.Duration
	// WebhookAllowLocal lets webhooks use http and reach loopback and private addresses (WEBHOOK_ALLOW_LOCAL):
	// the local stack and tests only; in AWS webhooks are https to public addresses.
	WebhookAllowLocal bool
	// RetryBase is the delay before a failed job's first retry; later ones triple it (RETRY_BASE_DELAY, 10s).
	RetryBase time.Duration
	// AuditCheckAfter is how long a campaign app waits for its audit's event before the sweeper asks WeChat
	// (AUDIT_CHECK_AFTER, default 6h: audits take hours, events are rarely lost).
	AuditCheckAfter time.Duration
	// StepStallAfter is how long a campaign app's step may stand still before the sweeper enqueues it again
	// (STEP_STALL_AFTER, default 10m).
	StepStallAfter time.Duration

	Secrets Secrets
}

// Secrets are the values that must never appear in logs, errors, pages or responses.
type Secrets struct {
	ComponentSecret        string
	Token                  string // message Token
	EncodingAESKey         string
	EncodingAESKeyPrevious string // accepted for decryption during key rotation; may be empty
	StateSigningKey        string // HMAC key for the auth `state` parameter
	LinkSigningKey         string // HMAC key of the provider's signed authorization start links (the operator CLI signs with it)
}

// Names of the secrets, both as SSM parameter names (under SECRETS_PARAMETER_PREFIX) and, upper-cased with a
// WECHAT_/plain prefix, as local environment variables.
var secretEnv = map[string]string{
	"component_secret":          "WECHAT_COMPONENT_SECRET",
	"token":                     "WECHAT_TOKEN",
	"encoding_aes_key":          "WECHAT_ENCODING_AES_KEY",
	"encoding_aes_key_previous": "WECHAT_ENCODING_AES_KEY_PREVIOUS",
	"state_signing_key":         "STATE_SIGNING_KEY",
	"link_signing_key":          "LINK_SIGNING_KEY",
}

// ParameterFetcher returns decrypted SSM parameters by full name. *ssm.Client satisfies it through SSMFetcher.
type ParameterFetcher interface {
	GetParameters(ctx context.Context, names []string) (map[string]string, error)
}

// Load reads the environment (getenv is os.Getenv in production) and, when SECRETS_PARAMETER_PREFIX is set,
// fetches the secrets once from SSM through fetch. It fails with a message naming every missing setting.
func Load(ctx context.Context, getenv func(string) string, fetch ParameterFetcher) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Config{
		TableName:      getenv("TABLE_NAME"),
		QueueURL:       getenv("QUEUE_URL"),
		DLQURL:         getenv("DLQ_URL"),
		PublicBaseURL:  strings.TrimRight(getenv("PUBLIC_BASE_URL"), "/"),
		ComponentAppID: getenv("WECHAT_COMPONENT_APPID"),
		WechatAPIBase:  strings.TrimRight(or(getenv("WECHAT_API_BASE"), "https://api.weixin.qq.com"), "/"),
		WechatMPBase:   strings.TrimRight(or(getenv("WECHAT_MP_BASE"), "https://mp.weixin.qq.com"), "/"),
		WechatOpenBase: strings.TrimRight(or(getenv("WECHAT_OPEN_BASE"), "https://open.weixin.qq.com"), "/"),
		RefreshMargin:  20 * time.Minute,
		// WeChat publishes no quota for api_create_preauthcode; tenants reuse their code, so this only
		// bounds a burst of new ones.
		PreAuthPerMinute: 60,
		RelayTimeout:     3 * time.Second,
		RetryBase:        10 * time.Second,
		AuditCheckAfter:  6 * time.Hour,
		StepStallAfter:   10 * time.Minute,
	}
	for _, u := range strings.Split(getenv("RETURN_URL_ALLOWLIST"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.ReturnURLAllowlist = append(c.ReturnURLAllowlist, u)
		}
	}
	if v := getenv("REFRESH_MARGIN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("config: REFRESH_MARGIN %q is not a positive duration", v)
		}
		c.RefreshMargin = d
	}

	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"RELAY_TIMEOUT", &c.RelayTimeout}, {"RETRY_BASE_DELAY", &c.RetryBase},
		{"AUDIT_CHECK_AFTER", &c.AuditCheckAfter}, {"STEP_STALL_AFTER", &c.StepStallAfter}} {
		if v := getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return Config{}, fmt.Errorf("config: %s %q is not a positive duration", d.env, v)
			}
			*d.to = x
		}
	}
	switch v := getenv("WEBHOOK_ALLOW_LOCAL"); v {
	case "", "0", "false":
	case "1", "true":
		c.WebhookAllowLocal = true
	default:
		return Config{}, fmt.Errorf("config: WEBHOOK_ALLOW_LOCAL %q: use 1 or 0", v)
	}
	if v := getenv("PREAUTH_CODES_PER_MINUTE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return Config{}, fmt.Errorf("config: PREAUTH_CODES_PER_MINUTE %q is not a positive number", v)
		}
		c.PreAuthPerMinute = n
	}

	values := map[string]string{}
	if prefix := getenv("SECRETS_PARAMETER_PREFIX"); prefix != "" {
		if fetch == nil {
			return Config{}, errors.New("config: SECRETS_PARAMETER_PREFIX is set but no parameter store client was given")
		}
		// The prefix is a path (/wxtpp/prod/); without its final slash the names would run into it.
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		names := make([]string, 0, len(secretEnv))
		for name := range secretEnv {
			names = append(names, prefix+name)
		}
		slices.Sort(names) // one request shape per cold start, whatever the map order
		got, err := fetch.GetParameters(ctx, names)
		if err != nil {
			return Config{}, fmt.Errorf("config: fetch secrets under %s: %w", prefix, err)
		}
		for name := range secretEnv {
			values[name] = got[prefix+name]
		}
	} else {
		for name, env := range secretEnv {
			values[name] = getenv(env)
		}
	}
	// A value written from a file (aws ssm put-parameter --value file://…, or a .env) easily ends in a newline;
	// none of these secrets may contain surrounding white space, and a stray one breaks every signature.
	for name, v := range values {
		values[name] = strings.TrimSpace(v)
	}
	c.Secrets = Secrets{
		ComponentSecret:        values["component_secret"],
		Token:                  values["token"],
		EncodingAESKey:         values["encoding_aes_key"],
		EncodingAESKeyPrevious: values["encoding_aes_key_previous"],
		StateSigningKey:        values["state_signing_key"],
		LinkSigningKey:         values["link_signing_key"],
	}

	var missing []string
	for _, req := range []struct{ name, val string }{
		{"TABLE_NAME", c.TableName},
		{"WECHAT_COMPONENT_APPID", c.ComponentAppID},
		{"component secret (WECHAT_COMPONENT_SECRET or SSM component_secret)", c.Secrets.ComponentSecret},
		{"message token (WECHAT_TOKEN or SSM token)", c.Secrets.Token},
		{"EncodingAESKey (WECHAT_ENCODING_AES_KEY or SSM encoding_aes_key)", c.Secrets.EncodingAESKey},
	} {
		if req.val == "" {
			missing = append(missing, req.name)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("config: missing %s", strings.Join(missing, ", "))
	}
	return c, nil
}

// Secret reads one secret the way Load does: from SSM under SECRETS_PARAMETER_PREFIX when that is set (fetch
// is then required), else from its environment variable. name is the SSM parameter name, e.g.
// "link_signing_key" (LINK_SIGNING_KEY). The operator CLI uses it for the one secret it needs.
func Secret(ctx context.Context, getenv func(string) string, fetch ParameterFetcher, name string) (string, error) {
	env, ok := secretEnv[name]
	if !ok {
		return "", fmt.Errorf("config: unknown secret %q", name)
	}
	prefix := getenv("SECRETS_PARAMETER_PREFIX")
	if prefix == "" {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("config: %s is not set (or set SECRETS_PARAMETER_PREFIX to read %s from SSM)", env, name)
	}
	if fetch == nil {
		return "", errors.New("config: SECRETS_PARAMETER_PREFIX is set but no parameter store client was given")
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	got, err := fetch.GetParameters(ctx, []string{prefix + name})
	if err != nil {
		return "", fmt.Errorf("config: fetch %s%s: %w", prefix, name, err)
	}
	v := strings.TrimSpace(got[prefix+name])
	if v == "" {
		return "", fmt.Errorf("config: SSM parameter %s%s is missing or empty", prefix, name)
	}
	return v, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// LogValue logs the plain settings and only whether each secret is set.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("table_name", c.TableName),
		slog.String("queue_url", c.QueueURL),
		slog.String("dlq_url", c.DLQURL),
		slog.Duration("relay_timeout", c.RelayTimeout),
		slog.Bool("webhook_allow_local", c.WebhookAllowLocal),
		slog.Duration("retry_base_delay", c.RetryBase),
		slog.Duration("audit_check_after", c.AuditCheckAfter),
		slog.Duration("step_stall_after", c.StepStallAfter),
		slog.String("public_base_url", c.PublicBaseURL),
		slog.String("component_appid", c.ComponentAppID),
		slog.String("wechat_api_base", c.WechatAPIBase),
		slog.String("wechat_mp_base", c.WechatMPBase),
		slog.String("wechat_open_base", c.WechatOpenBase),
		slog.Any("return_url_allowlist", c.ReturnURLAllowlist),
		slog.Duration("refresh_margin", c.RefreshMargin),
		slog.Int("preauth_codes_per_minute", c.PreAuthPerMinute),
		slog.Any("secrets", c.Secrets),
	)
}

const redacted = "[redacted]"

// LogValue says which secrets are set, never their values.
func (s Secrets) LogValue() slog.Value {
	state := func(v string) slog.Value {
		if v == "" {
			return slog.StringValue("[empty]")
		}
		return slog.StringValue(redacted)
	}
	return slog.GroupValue(
		slog.Attr{Key: "component_secret", Value: state(s.ComponentSecret)},
		slog.Attr{Key: "token", Value: state(s.Token)},
		slog.Attr{Key: "encoding_aes_key", Value: state(s.EncodingAESKey)},
		slog.Attr{Key: "encoding_aes_key_previous", Value: state(s.EncodingAESKeyPrevious)},
		slog.Attr{Key: "state_signing_key", Value: state(s.StateSigningKey)},
		slog.Attr{Key: "link_signing_key", Value: state(s.LinkSigningKey)},
	)
}

// Format prints Secrets as [redacted] for every fmt verb, so %v, %+v, %#v or %x of a Config cannot leak them.
func (s Secrets) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON encodes Secrets as "[redacted]", so a Config dumped as JSON cannot leak them.
func (s Secrets) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

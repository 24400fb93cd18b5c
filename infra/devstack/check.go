package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/wxtpp/platform/shared/config"
	"github.com/wxtpp/platform/shared/refresher"
)

// Check finds what would stop Start, without starting anything; `make dev` runs it (devstack -check) before it
// starts the emulators, so a bad setting ends there with its message. o comes from OptionsFromEnv(getenv),
// which already refused what it reads. Check adds: the API's port and the sandbox's (the next one) are free on
// 127.0.0.1, and the settings the functions read from the environment they inherit from devstack
// (REFRESH_MARGIN, RELAY_TIMEOUT, PREAUTH_CODES_PER_MINUTE, REFRESH_WINDOW, REFRESH_CONCURRENCY, ...) are
// valid, as the functions themselves would check them at start-up. Every problem is reported, not only the first.
func Check(o Options, getenv func(string) string) error {
	var problems []error
	type port struct {
		what string
		n    int
	}
	ports := []port{{fmt.Sprintf("DEV_PORT %d", o.Port), o.Port}}
	if o.APIBase == "" {
		switch p := o.sandboxPort(); {
		case p > 65535:
			problems = append(problems, fmt.Errorf("DEV_PORT %d leaves no port for the WeChat sandbox, which takes the next one: choose a lower DEV_PORT", o.Port))
		default:
			ports = append(ports, port{fmt.Sprintf("the WeChat sandbox's port %d (DEV_PORT+1)", p), p})
		}
	}
	for _, p := range ports {
		if p.n == 0 {
			continue // any free port
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.n))
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: 127.0.0.1:%d is not free (%v): stop what listens there (another make dev?) or set DEV_PORT to a free port", p.what, p.n, errors.Unwrap(err)))
			continue
		}
		ln.Close()
	}

	// The functions' view: devstack's environment with what Start sets over it (placeholder URLs).
	base := fmt.Sprintf("http://127.0.0.1:%d", max(o.Port, 1))
	over := map[string]string{}
	for _, kv := range o.functionEnv(base, base+"/queue", base+"/dlq", or(o.APIBase, base), or(o.MPBase, base), or(o.OpenBase, base)) {
		k, v, _ := strings.Cut(kv, "=")
		over[k] = v
	}
	fenv := func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	}
	if _, err := config.Load(context.Background(), fenv, nil); err != nil {
		problems = append(problems, fmt.Errorf("the functions would not start: %w", err))
	}
	if err := new(refresher.Refresher).SettingsFromEnv(fenv); err != nil {
		problems = append(problems, fmt.Errorf("the refresh function would not start: %w", err))
	}
	return errors.Join(problems...)
}

// sandboxPort is the port the sandbox listens on: SandboxPort, else the API's next one (0: any).
func (o Options) sandboxPort() int {
	if o.SandboxPort == 0 && o.Port != 0 {
		return o.Port + 1
	}
	return o.SandboxPort
}

// functionEnv is what Start sets in every function's environment, over devstack's own (which the functions
// inherit through the local runner): the table, the queues, the public URL, WeChat and the secrets.
func (o Options) functionEnv(publicURL, queueURL, dlqURL, apiBase, mpBase, openBase string) []string {
	env := []string{
		"TABLE_NAME=" + o.Table,
		"QUEUE_URL=" + queueURL,
		"DLQ_URL=" + dlqURL,
		"WEBHOOK_ALLOW_LOCAL=1", // merchants' webhooks in the local stack are on this machine
		"PUBLIC_BASE_URL=" + publicURL,
		"WECHAT_COMPONENT_APPID=" + o.ComponentAppID,
		"WECHAT_COMPONENT_SECRET=" + o.ComponentSecret,
		"WECHAT_TOKEN=" + o.Token,
		"WECHAT_ENCODING_AES_KEY=" + o.EncodingAESKey,
		"STATE_SIGNING_KEY=" + o.StateSigningKey,
		"LINK_SIGNING_KEY=" + o.LinkSigningKey,
		"RETURN_URL_ALLOWLIST=" + o.ReturnURLAllowlist,
		"WECHAT_API_BASE=" + apiBase,
		"WECHAT_MP_BASE=" + mpBase,
		"WECHAT_OPEN_BASE=" + openBase,
		"LOG_LEVEL=" + o.LogLevel,
		"SECRETS_PARAMETER_PREFIX=", // secrets come from the environment locally
	}
	if o.RetryBase > 0 {
		env = append(env, "RETRY_BASE_DELAY="+o.RetryBase.String())
	}
	// A laptop's campaign should not wait hours: the sandbox's audits take seconds, and a lost audit event
	// or a stalled step is looked at within a minute (the sweep runs with each scheduled refresh).
	return append(env, "AUDIT_CHECK_AFTER=1m", "STEP_STALL_AFTER=1m")
}

package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/config"
)

// Secret values used throughout; none may ever appear in an error or in logged/printed/encoded output.
const (
	secComponent = "compsecret-5b1f0c9e2d"
	secToken     = "msgtoken-a7c3"
	secAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	secAESPrev   = "PREVkeyPREVkeyPREVkeyPREVkeyPREVkeyPREVkey1"
	secState     = "statekey-9d8e7f"
	secLink      = "linkkey-5c4b3a"
)

var allSecrets = []string{secComponent, secToken, secAESKey, secAESPrev, secState}

// env is a map-backed getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// with returns a copy of e with kv pairs set ("" values delete).
func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// plain holds the non-secret required settings.
var plain = env{
	"TABLE_NAME":             "wxtpp-table",
	"WECHAT_COMPONENT_APPID": "wxcomponent0001",
}

// local is a complete local (secrets from environment) setup.
var local = plain.with(
	"WECHAT_COMPONENT_SECRET", secComponent,
	"WECHAT_TOKEN", secToken,
	"WECHAT_ENCODING_AES_KEY", secAESKey,
	"WECHAT_ENCODING_AES_KEY_PREVIOUS", secAESPrev,
	"STATE_SIGNING_KEY", secState,
	"LINK_SIGNING_KEY", secLink,
)

func load(t *testing.T, e env) (config.Config, error) {
	t.Helper()
	return config.Load(context.Background(), e.get, nil)
}

func TestLoadDefaults(t *testing.T) {
	c, err := load(t, local)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		TableName:        "wxtpp-table",
		ComponentAppID:   "wxcomponent0001",
		WechatAPIBase:    "https://api.weixin.qq.com",
		WechatMPBase:     "https://mp.weixin.qq.com",
		WechatOpenBase:   "https://open.weixin.qq.com",
		RefreshMargin:    20 * time.Minute,
		PreAuthPerMinute: 60,
		RelayTimeout:     3 * time.Second,
		RetryBase:        10 * time.Second,
		AuditCheckAfter:  6 * time.Hour,
		StepStallAfter:   10 * time.Minute,
		Secrets: config.Secrets{ComponentSecret: secComponent, Token: secToken, EncodingAESKey: secAESKey,
			EncodingAESKeyPrevious: secAESPrev, StateSigningKey: secState, LinkSigningKey: secLink},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %#v\nwant %#v", c, want) // %#v of Secrets is redacted, so compare fields below too
		if c.Secrets != want.Secrets {
			t.Error("secrets differ from the environment's")
		}
	}
}

func TestLoadPlainSettings(t *testing.T) {
	c, err := load(t, local.with(
		"QUEUE_URL", "http://127.0.0.1:9324/000000000000/jobs",
		"PUBLIC_BASE_URL", "https://wx.example.com/",
		"WECHAT_API_BASE", "http://127.0.0.1:8181//",
		"WECHAT_MP_BASE", "http://127.0.0.1:8182/",
		"WECHAT_OPEN_BASE", "http://127.0.0.1:8183/",
		"RETURN_URL_ALLOWLIST", " https://a.example.com/done , ,https://b.example.com/x,,",
		"REFRESH_MARGIN", "7m30s",
	))
	if err != nil {
		t.Fatal(err)
	}
	if c.QueueURL != "http://127.0.0.1:9324/000000000000/jobs" {
		t.Errorf("QueueURL %q", c.QueueURL)
	}
	if c.PublicBaseURL != "https://wx.example.com" || c.WechatAPIBase != "http://127.0.0.1:8181" || c.WechatMPBase != "http://127.0.0.1:8182" || c.WechatOpenBase != "http://127.0.0.1:8183" {
		t.Errorf("trailing slashes not trimmed: public %q api %q mp %q", c.PublicBaseURL, c.WechatAPIBase, c.WechatMPBase)
	}
	if want := []string{"https://a.example.com/done", "https://b.example.com/x"}; !reflect.DeepEqual(c.ReturnURLAllowlist, want) {
		t.Errorf("allow-list %q, want %q", c.ReturnURLAllowlist, want)
	}
	if c.RefreshMargin != 7*time.Minute+30*time.Second {
		t.Errorf("RefreshMargin %v, want 7m30s", c.RefreshMargin)
	}
}

func TestLoadRelaySettings(t *testing.T) {
	c, err := load(t, local.with("RELAY_TIMEOUT", "1500ms", "RETRY_BASE_DELAY", "2s", "WEBHOOK_ALLOW_LOCAL", "1", "DLQ_URL", "http://q/dlq"))
	if err != nil || c.RelayTimeout != 1500*time.Millisecond || c.RetryBase != 2*time.Second || !c.WebhookAllowLocal || c.DLQURL != "http://q/dlq" {
		t.Fatalf("%+v, %v", c, err)
	}
	for name, v := range map[string]string{"RELAY_TIMEOUT": "0s", "RETRY_BASE_DELAY": "soon", "WEBHOOK_ALLOW_LOCAL": "yes"} {
		if _, err := load(t, local.with(name, v)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, v, err)
		}
	}
}

func TestLoadPreAuthCodesPerMinute(t *testing.T) {
	c, err := load(t, local.with("PREAUTH_CODES_PER_MINUTE", "12"))
	if err != nil || c.PreAuthPerMinute != 12 {
		t.Fatalf("PREAUTH_CODES_PER_MINUTE=12: %d, %v", c.PreAuthPerMinute, err)
	}
	for _, v := range []string{"0", "-3", "many"} {
		if _, err := load(t, local.with("PREAUTH_CODES_PER_MINUTE", v)); err == nil || !strings.Contains(err.Error(), "PREAUTH_CODES_PER_MINUTE") {
			t.Errorf("PREAUTH_CODES_PER_MINUTE %q: %v", v, err)
		}
	}
}

func TestLoadRejectsBadRefreshMargin(t *testing.T) {
	for _, v := range []string{"abc", "10", "0s", "-5m", "5 minutes"} {
		t.Run(v, func(t *testing.T) {
			c, err := load(t, local.with("REFRESH_MARGIN", v))
			if err == nil {
				t.Fatalf("REFRESH_MARGIN %q accepted as %v", v, c.RefreshMargin)
			}
			if !strings.Contains(err.Error(), "REFRESH_MARGIN") {
				t.Errorf("error %q does not name REFRESH_MARGIN", err)
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestLoadNamesEveryMissingSetting(t *testing.T) {
	_, err := load(t, env{})
	if err == nil {
		t.Fatal("empty environment accepted")
	}
	for _, name := range []string{"TABLE_NAME", "WECHAT_COMPONENT_APPID", "WECHAT_COMPONENT_SECRET", "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	// Optional ones are not reported.
	for _, name := range []string{"QUEUE_URL", "PUBLIC_BASE_URL", "WECHAT_ENCODING_AES_KEY_PREVIOUS", "STATE_SIGNING_KEY"} {
		if strings.Contains(err.Error(), name) {
			t.Errorf("error %q names optional %s", err, name)
		}
	}
}

// With only some settings missing, the error names exactly those, and none of the secret values present.
func TestLoadMissingErrorHasNoSecrets(t *testing.T) {
	_, err := load(t, local.with("TABLE_NAME", "", "WECHAT_TOKEN", ""))
	if err == nil {
		t.Fatal("missing settings accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "TABLE_NAME") || !strings.Contains(msg, "WECHAT_TOKEN") {
		t.Errorf("error %q does not name TABLE_NAME and WECHAT_TOKEN", msg)
	}
	for _, name := range []string{"WECHAT_COMPONENT_APPID", "WECHAT_COMPONENT_SECRET", "WECHAT_ENCODING_AES_KEY"} {
		if strings.Contains(msg, name) {
			t.Errorf("error %q names %s, which is set", msg, name)
		}
	}
	assertNoSecrets(t, "error", msg)
}

func TestLoadTrimsSecretWhiteSpace(t *testing.T) {
	c, err := load(t, local.with("WECHAT_TOKEN", secToken+"\n", "WECHAT_ENCODING_AES_KEY", " "+secAESKey+"\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Secrets.Token != secToken || c.Secrets.EncodingAESKey != secAESKey {
		t.Error("white space around secrets was kept")
	}
	// White space only is the same as missing.
	if _, err := load(t, local.with("WECHAT_TOKEN", " \n")); err == nil || !strings.Contains(err.Error(), "WECHAT_TOKEN") {
		t.Errorf("blank WECHAT_TOKEN: err = %v, want it reported missing", err)
	}
}

func TestLoadUsesOSEnvironmentByDefault(t *testing.T) {
	for k, v := range local {
		t.Setenv(k, v)
	}
	t.Setenv("SECRETS_PARAMETER_PREFIX", "")
	t.Setenv("WECHAT_API_BASE", "http://127.0.0.1:8181/")
	c, err := config.Load(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TableName != "wxtpp-table" || c.WechatAPIBase != "http://127.0.0.1:8181" || c.Secrets.Token != secToken {
		t.Error("settings not read from the process environment")
	}
}

// fakeStore is an in-memory ParameterFetcher: a unit test of the name mapping, not of SSM.
type fakeStore struct {
	params map[string]string
	err    error
	calls  [][]string
	ctxVal any
}

type ctxKey struct{}

func (f *fakeStore) GetParameters(ctx context.Context, names []string) (map[string]string, error) {
	f.calls = append(f.calls, append([]string(nil), names...))
	f.ctxVal = ctx.Value(ctxKey{})
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]string{}
	for _, n := range names {
		if v, ok := f.params[n]; ok {
			out[n] = v
		}
	}
	return out, nil
}

func storeWith(prefix string) *fakeStore {
	return &fakeStore{params: map[string]string{
		prefix + "component_secret":          secComponent,
		prefix + "token":                     secToken,
		prefix + "encoding_aes_key":          secAESKey,
		prefix + "encoding_aes_key_previous": secAESPrev,
		prefix + "state_signing_key":         secState,
		prefix + "link_signing_key":          secLink,
		"/other/token":                       "not-ours",
	}}
}

func TestLoadSecretsFromParameterStore(t *testing.T) {
	for _, tc := range []struct{ name, prefix string }{
		{"prefix with slash", "/wxtpp/test/"},
		{"prefix without final slash", "/wxtpp/test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := storeWith("/wxtpp/test/")
			// Environment secrets are ignored when a prefix is set: the parameter store is the source.
			e := plain.with("SECRETS_PARAMETER_PREFIX", tc.prefix, "WECHAT_TOKEN", "env-token-ignored")
			ctx := context.WithValue(context.Background(), ctxKey{}, "request-ctx")
			c, err := config.Load(ctx, e.get, store)
			if err != nil {
				t.Fatal(err)
			}
			want := config.Secrets{ComponentSecret: secComponent, Token: secToken, EncodingAESKey: secAESKey,
				EncodingAESKeyPrevious: secAESPrev, StateSigningKey: secState, LinkSigningKey: secLink}
			if c.Secrets != want {
				t.Error("secrets not mapped from the parameter names")
			}
			wantNames := []string{"/wxtpp/test/component_secret", "/wxtpp/test/encoding_aes_key",
				"/wxtpp/test/encoding_aes_key_previous", "/wxtpp/test/link_signing_key", "/wxtpp/test/state_signing_key", "/wxtpp/test/token"}
			if len(store.calls) != 1 || !reflect.DeepEqual(store.calls[0], wantNames) {
				t.Errorf("fetched %q, want one call for %q", store.calls, wantNames)
			}
			if store.ctxVal != "request-ctx" {
				t.Error("Load did not pass its context to the fetcher")
			}
		})
	}
}

func TestLoadParameterStoreMissingValues(t *testing.T) {
	store := storeWith("/wxtpp/test/")
	delete(store.params, "/wxtpp/test/encoding_aes_key")
	delete(store.params, "/wxtpp/test/encoding_aes_key_previous") // optional
	_, err := config.Load(context.Background(), plain.with("SECRETS_PARAMETER_PREFIX", "/wxtpp/test/").get, store)
	if err == nil || !strings.Contains(err.Error(), "encoding_aes_key") {
		t.Fatalf("err = %v, want encoding_aes_key reported missing", err)
	}
	if strings.Contains(err.Error(), "component_secret") || strings.Contains(err.Error(), "token (") {
		t.Errorf("error %q names settings that were found", err)
	}
	assertNoSecrets(t, "error", err.Error())
}

func TestLoadParameterStoreError(t *testing.T) {
	cause := errors.New("AccessDeniedException: not authorized")
	store := &fakeStore{err: cause}
	c, err := config.Load(context.Background(), local.with("SECRETS_PARAMETER_PREFIX", "/wxtpp/test/").get, store)
	if !errors.Is(err, cause) {
		t.Fatalf("err = %v, want it to wrap the fetch error", err)
	}
	if !strings.Contains(err.Error(), "/wxtpp/test/") {
		t.Errorf("error %q does not name the prefix", err)
	}
	if !reflect.DeepEqual(c, config.Config{}) {
		t.Error("a failed Load returned a partly filled Config")
	}
	assertNoSecrets(t, "error", err.Error())
}

func TestLoadPrefixWithoutFetcher(t *testing.T) {
	_, err := config.Load(context.Background(), local.with("SECRETS_PARAMETER_PREFIX", "/wxtpp/test/").get, nil)
	if err == nil || !strings.Contains(err.Error(), "SECRETS_PARAMETER_PREFIX") {
		t.Fatalf("err = %v, want a clear error naming SECRETS_PARAMETER_PREFIX", err)
	}
}

// However a Config is logged, printed or encoded, no secret value comes out.
func TestConfigRedactsSecrets(t *testing.T) {
	c, err := load(t, local.with("RETURN_URL_ALLOWLIST", "https://a.example.com/done"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("config", "config", c)
	log.Info("config ptr", "config", &c)
	log.Info("secrets", "secrets", c.Secrets)
	log.Info("text", slog.Any("s", c.Secrets))
	var tbuf bytes.Buffer
	slog.New(slog.NewTextHandler(&tbuf, nil)).Info("config", "config", c)
	logged := buf.String() + tbuf.String()
	assertNoSecrets(t, "log", logged)
	// The plain settings are still there, and the log says which secrets are set.
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	cfg, _ := first["config"].(map[string]any)
	secrets, _ := cfg["secrets"].(map[string]any)
	if cfg["table_name"] != "wxtpp-table" || cfg["component_appid"] != "wxcomponent0001" || secrets["token"] != "[redacted]" {
		t.Errorf("logged config lacks its plain settings or secret states: %s", buf.String())
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		assertNoSecrets(t, "fmt "+verb, fmt.Sprintf(verb, c))
		assertNoSecrets(t, "fmt "+verb+" of pointer", fmt.Sprintf(verb, &c))
		assertNoSecrets(t, "fmt "+verb+" of Secrets", fmt.Sprintf(verb, c.Secrets))
	}
	if s := fmt.Sprintf("%+v", c); !strings.Contains(s, "wxtpp-table") {
		t.Errorf("%%+v lost the plain settings: %s", s)
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "json", string(js))
}

func assertNoSecrets(t *testing.T, where, s string) {
	t.Helper()
	for _, sec := range allSecrets {
		for _, form := range []string{sec, fmt.Sprintf("%x", sec), fmt.Sprintf("%X", sec)} {
			if strings.Contains(s, form) {
				t.Errorf("%s contains secret %q: %s", where, sec, s)
			}
		}
	}
}

package devstack_test

import (
	"strings"
	"testing"

	"github.com/wxtpp/platform/infra/devstack"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestOptionsFromEnvRefusesHalfAConfiguration(t *testing.T) {
	secrets := map[string]string{
		"WECHAT_COMPONENT_SECRET": "s", "WECHAT_TOKEN": "t", "WECHAT_ENCODING_AES_KEY": devstack.RandomEncodingAESKey(),
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range secrets {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for name, c := range map[string]struct {
		vars map[string]string
		want string
	}{
		"mp base alone":            {with(map[string]string{"WECHAT_MP_BASE": "https://mp.example.com"}), "WECHAT_MP_BASE is set without WECHAT_API_BASE"},
		"api base without secrets": {map[string]string{"WECHAT_API_BASE": "https://api.example.com"}, "set WECHAT_COMPONENT_SECRET"},
		"bad port":                 {map[string]string{"DEV_PORT": "80a"}, `DEV_PORT "80a"`},
		"bad ticket interval":      {map[string]string{"DEV_TICKET_INTERVAL": "-1s"}, "DEV_TICKET_INTERVAL"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := devstack.OptionsFromEnv(env(c.vars)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}

	o, err := devstack.OptionsFromEnv(env(with(map[string]string{
		"WECHAT_API_BASE": "https://api.example.com", "WECHAT_MP_BASE": "https://mp.example.com",
	})))
	if err != nil || o.APIBase != "https://api.example.com" || o.MPBase != "https://mp.example.com" {
		t.Fatalf("both bases: %+v, %v", o, err)
	}
	if o, err := devstack.OptionsFromEnv(env(nil)); err != nil || o.APIBase != "" || o.MPBase != "" || o.ComponentSecret == "" {
		t.Fatalf("empty environment (the sandbox): %+v, %v", o, err)
	}
}

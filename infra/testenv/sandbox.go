package testenv

import (
	"testing"

	"github.com/wxtpp/platform/infra/sandbox"
)

// The component identity integration tests share with their sandbox.
const (
	ComponentAppID  = "wxcomponent0000001"
	ComponentSecret = "component-secret-for-tests"
	Token           = "msgtoken"
	EncodingAESKey  = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

// Sandbox starts a WeChat sandbox on loopback for one test (stopped when it ends) and returns it with its
// base URL. tweak may adjust the configuration (push URL, clock, TTLs, rotation) before it starts.
func Sandbox(t testing.TB, tweak func(*sandbox.Config)) (*sandbox.Sandbox, string) {
	t.Helper()
	cfg := sandbox.Config{
		ComponentAppID: ComponentAppID, ComponentSecret: ComponentSecret, Token: Token, EncodingAESKey: EncodingAESKey,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb, base
}

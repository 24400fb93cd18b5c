package devstack_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/wxtpp/platform/infra/devstack"
)

// freePort is a port nothing listens on (it was free a moment ago).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// check runs OptionsFromEnv and Check on vars, as devstack -check does.
func check(vars map[string]string) error {
	o, err := devstack.OptionsFromEnv(env(vars))
	if err != nil {
		return err
	}
	return devstack.Check(o, env(vars))
}

func TestCheckFindsWhatWouldStopTheStack(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	external := map[string]string{"WECHAT_API_BASE": "https://api.example.com", "WECHAT_COMPONENT_SECRET": "s",
		"WECHAT_TOKEN": "t", "WECHAT_ENCODING_AES_KEY": devstack.RandomEncodingAESKey()}

	for name, c := range map[string]struct {
		vars map[string]string
		want []string // every one must be in the error
	}{
		"port not a number":   {map[string]string{"DEV_PORT": "abc"}, []string{`DEV_PORT "abc" is not a port number`}},
		"mp base alone":       {map[string]string{"WECHAT_MP_BASE": "https://mp.example.com"}, []string{"WECHAT_MP_BASE is set without WECHAT_API_BASE"}},
		"open base alone":     {map[string]string{"WECHAT_OPEN_BASE": "https://open.example.com"}, []string{"WECHAT_OPEN_BASE is set without WECHAT_API_BASE"}},
		"unknown log level":   {map[string]string{"LOG_LEVEL": "verbose"}, []string{`LOG_LEVEL "verbose"`}},
		"negative refresh":    {map[string]string{"DEV_REFRESH_INTERVAL": "-1m"}, []string{"DEV_REFRESH_INTERVAL"}},
		"API port busy":       {map[string]string{"DEV_PORT": strconv.Itoa(busyPort)}, []string{"DEV_PORT " + strconv.Itoa(busyPort), "is not free"}},
		"sandbox port busy":   {map[string]string{"DEV_PORT": strconv.Itoa(busyPort - 1)}, []string{"the WeChat sandbox's port " + strconv.Itoa(busyPort) + " (DEV_PORT+1)", "is not free"}},
		"no port for sandbox": {map[string]string{"DEV_PORT": "65535"}, []string{"DEV_PORT 65535 leaves no port for the WeChat sandbox"}},
		// The functions inherit devstack's environment: their own settings are checked as they would check them.
		"functions' settings": {map[string]string{"DEV_PORT": "0", "RELAY_TIMEOUT": "soon", "PREAUTH_CODES_PER_MINUTE": "-3"},
			[]string{"the functions would not start", `RELAY_TIMEOUT "soon"`}},
		"refresh settings": {map[string]string{"DEV_PORT": "0", "REFRESH_CONCURRENCY": "0"}, []string{"the refresh function would not start", "REFRESH_CONCURRENCY"}},
		"every problem at once": {map[string]string{"DEV_PORT": strconv.Itoa(busyPort), "REFRESH_WINDOW": "x"},
			[]string{"is not free", "REFRESH_WINDOW"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := check(c.vars)
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// What passes: free ports, any port (0), 0 intervals, and an external WeChat (no sandbox port needed,
	// even when DEV_PORT+1 is taken).
	ok := []map[string]string{
		{"DEV_PORT": strconv.Itoa(freePort(t))},
		{"DEV_PORT": "0", "DEV_TICKET_INTERVAL": "0", "DEV_REFRESH_INTERVAL": "0", "LOG_LEVEL": "DEBUG"},
	}
	ext := map[string]string{"DEV_PORT": strconv.Itoa(busyPort - 1)}
	for k, v := range external {
		ext[k] = v
	}
	if busyPort-1 > 0 {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+ext["DEV_PORT"]); err == nil { // only if the API port is free
			ln.Close()
			ok = append(ok, ext)
		}
	}
	for _, vars := range ok {
		if err := check(vars); err != nil {
			t.Errorf("%v: %v", vars, err)
		}
	}
}

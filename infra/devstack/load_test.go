package devstack_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// BenchmarkMessagePathOpenLoop pushes messages to the message URL at fixed arrival rates (an open loop: each
// push leaves at its scheduled time whether or not earlier ones have been answered, and its latency counts
// from that time, so queueing shows) through the local runner and the real message binary, with DynamoDB
// Local behind it. Three kinds of push, each its own cost:
//
//	relay: the account's tenant has a webhook (on this machine, answering at once): a marker taken and
//	       marked done (2 conditional writes), the signed delivery, "success";
//	reply: 全网发布's TESTCOMPONENT text: the encrypted passive reply, one conditional write;
//	plain: an account whose tenant has no webhook: decrypt, parse, answer, no write.
//
// It prints throughput and p50/p95/p99 per rate, and the highest rate whose p99 stays under 100 ms.
// BENCH_RATES (500,750,1000,1500,2000), BENCH_SECONDS (10), BENCH_INSTANCES (4 processes of the message
// function; Lambda scales out by itself), BENCH_KINDS (relay,reply,plain) and BENCH_WARMUP_SECONDS (5, of
// relay pushes at 200/s first, not measured) tune it.
func BenchmarkMessagePathOpenLoop(b *testing.B) {
	rates := envInts(b, "BENCH_RATES", []int{500, 750, 1000, 1500, 2000})
	seconds := envInt(b, "BENCH_SECONDS", 10)
	instances := envInt(b, "BENCH_INSTANCES", 4)
	kinds := []string{"relay", "reply", "plain"}
	if v := os.Getenv("BENCH_KINDS"); v != "" {
		kinds = strings.Split(v, ",")
	}
	benchInstances = instances
	stack, opts, _ := startStack(b)
	ctx := context.Background()

	// One account per kind; the relay account's tenant has a webhook on this machine.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	accounts := map[string]string{"relay": sandboxOfficialAccount, "reply": sandboxMiniProgram, "plain": stack.Sandbox.Accounts()[5].AppID}
	gh := map[string]string{}
	for kind, appid := range accounts {
		tenant := "bench-" + kind
		webhook := hook.URL + "/wx"
		ch := tenants.Changes{}
		if kind == "relay" {
			ch.Webhook = &webhook
		}
		if _, err := stack.Tenants.Set(ctx, tenant, ch); err != nil {
			b.Fatal(err)
		}
		link, err := stack.AuthLink(tenant, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		pre := preAuthCodeOf(b, link)
		if _, err := stack.Sandbox.Authorize(ctx, appid, pre); err != nil {
			b.Fatal(err)
		}
		a, err := stack.Store.Authorizer(ctx, appid)
		if err != nil || (kind != "reply" && a.Tenant != tenant) {
			b.Fatalf("%s account: %+v, %v", kind, a, err)
		}
		gh[kind] = a.Info.UserName
	}
	crypter, err := wxcrypt.New(opts.Token, opts.EncodingAESKey, opts.ComponentAppID)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}, Timeout: 10 * time.Second}
	msgID := time.Now().UnixNano()
	build := func(kind, target string, n int) []push {
		reqs := make([]push, n)
		for i := range reqs {
			msgID++
			content := "load test"
			if kind == "reply" {
				content = "TESTCOMPONENT_MSG_TYPE_TEXT"
			}
			plain := sandbox.TextMessage(gh[kind], fmt.Sprintf("o_load_fan_%d", i%500), content, msgID, time.Now())
			ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), strconv.Itoa(i)
			body, sig, err := crypter.PushBody(plain, gh[kind], ts, nonce)
			if err != nil {
				b.Fatal(err)
			}
			reqs[i] = push{url: target + "?timestamp=" + ts + "&nonce=" + nonce + "&msg_signature=" + sig + "&encrypt_type=aes", body: body}
		}
		return reqs
	}
	// Warm-up, not measured: DynamoDB Local's JVM compiles its hot paths during the first seconds of load.
	warm := stack.URL + "/wechat/" + accounts["relay"] + "/callback"
	openLoop(client, build("relay", warm, 200*envInt(b, "BENCH_WARMUP_SECONDS", 5)), 200)
	for _, kind := range kinds {
		appid, ok := accounts[kind]
		if !ok {
			b.Fatalf("BENCH_KINDS: unknown kind %q", kind)
		}
		target := stack.URL + "/wechat/" + appid + "/callback"
		best := 0
		for _, rate := range rates {
			n := rate * seconds
			reqs := build(kind, target, n)
			cpu0 := cpuTimes(stack)
			res := openLoop(client, reqs, rate)
			cpu := cpuTimes(stack).minus(cpu0)
			fmt.Printf("message path (%s), open loop %5d/s for %ds: %7.1f answered/s, p50 %6.1f ms, p95 %6.1f ms, p99 %6.1f ms, errors %d/%d\n",
				kind, rate, seconds, res.throughput, ms(res.p50), ms(res.p95), ms(res.p99), res.errors, n)
			fmt.Printf("    CPU per push: DynamoDB Local %.2f ms, message function %.2f ms, local runner + load generator + webhook %.2f ms\n",
				ms(cpu.dynamodb)/float64(n), ms(cpu.function)/float64(n), ms(cpu.self)/float64(n))
			b.ReportMetric(ms(res.p99), fmt.Sprintf("%s-p99-ms@%d/s", kind, rate))
			if res.p99 >= 100*time.Millisecond || res.errors > 0 {
				break
			}
			best = rate
		}
		fmt.Printf("message path (%s): highest rate with p99 < 100 ms: %d/s (%d message function instances)\n", kind, best, instances)
		b.ReportMetric(float64(best), kind+"-max-rate/s")
	}
}

var preAuthRE = regexp.MustCompile(`pre_auth_code=([^&"]+)`)

// preAuthCodeOf opens a signed start link as a merchant would and returns the pre_auth_code its page offers.
func preAuthCodeOf(b *testing.B, link string) string {
	b.Helper()
	resp, err := http.Get(link)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := preAuthRE.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.Fatalf("start page: HTTP %d", resp.StatusCode)
	}
	pre, err := url.QueryUnescape(html.UnescapeString(string(m[1])))
	if err != nil {
		b.Fatal(err)
	}
	return pre
}

// benchInstances, when set, overrides the processes per function startStack gives the stack.
var benchInstances int

type push struct {
	url  string
	body []byte
}

type loadResult struct {
	throughput    float64
	p50, p95, p99 time.Duration
	errors        int
}

// openLoop sends reqs at rate per second, each at its scheduled time.
func openLoop(client *http.Client, reqs []push, rate int) loadResult {
	lat := make([]time.Duration, len(reqs))
	var errs int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i, r := range reqs {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			resp, err := client.Post(r.url, "text/xml", bytes.NewReader(r.body))
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			lat[i] = time.Since(due)
			if !ok {
				mu.Lock()
				errs++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return loadResult{throughput: float64(len(reqs)) / elapsed.Seconds(), p50: q(0.50), p95: q(0.95), p99: q(0.99), errors: errs}
}

// processCPU is CPU time (user + system) spent by the processes of the run, to say where the time goes.
type processCPU struct{ dynamodb, function, self time.Duration }

func (a processCPU) minus(b processCPU) processCPU {
	return processCPU{a.dynamodb - b.dynamodb, a.function - b.function, a.self - b.self}
}

// cpuTimes reads /proc for DynamoDB Local (the java process running DynamoDBLocal.jar), the message
// function's processes and this process (the local runner, the load generator and the webhook).
func cpuTimes(stack *devstack.Stack) processCPU {
	var c processCPU
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cmd, []byte("DynamoDBLocal.jar")) {
			c.dynamodb += procCPU(pid)
		}
	}
	for _, pid := range stack.Runner.PIDs("message") {
		c.function += procCPU(pid)
	}
	c.self = procCPU(os.Getpid())
	return c
}

// procCPU is utime + stime of pid (clock ticks of 10 ms on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces: fields are counted after its closing parenthesis.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func envInts(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s %q", name, v)
		}
		out = append(out, n)
	}
	return out
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s %q is not a positive number", name, v)
	}
	return n
}

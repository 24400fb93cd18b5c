package localrun

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkColdStart measures process start to first Runtime API poll for
// the echo test Lambda (the project's target is <= 50 ms).
func BenchmarkColdStart(b *testing.B) {
	var total, worst time.Duration
	n := 0
	for b.Loop() {
		r, err := Start(b.Context(), []Function{echoFunction()}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range r.ColdStarts("echo") {
			total += d
			worst = max(worst, d)
			n++
		}
		r.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "ms/coldstart")
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms/worst-coldstart")
}

// BenchmarkServeHTTP measures one warm API Gateway round trip through the
// runner and a real bootstrap process.
func BenchmarkServeHTTP(b *testing.B) {
	r, err := Start(b.Context(), []Function{echoFunction()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	base := serve(b, r)
	for b.Loop() {
		resp, err := http.Get(base + "/items/1")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkInvoke measures one warm raw invocation.
func BenchmarkInvoke(b *testing.B) {
	r, err := Start(b.Context(), []Function{{Name: "raw", Binary: echoBin, Env: []string{"ECHO_MODE=raw"}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	payload := []byte(`{"Records":[{"body":"x"}]}`)
	for b.Loop() {
		if _, err := r.Invoke(b.Context(), "raw", payload); err != nil {
			b.Fatal(err)
		}
	}
}

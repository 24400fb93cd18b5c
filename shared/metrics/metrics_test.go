package metrics

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

func capture(t *testing.T, counts map[string]float64, with ...any) []string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With(with...)
	Count(log, counts)
	out := strings.TrimSpace(buf.String())
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// TestCountEmitsEMF decodes the line the way CloudWatch Logs reads it: _aws.Timestamp in ms,
// one directive in Namespace with an empty dimension set, every metric defined with Unit Count and its
// value a number at the top level of the line.
func TestCountEmitsEMF(t *testing.T) {
	before := time.Now().UnixMilli()
	lines := capture(t, map[string]float64{RefreshRuns: 1, TokensRefreshed: 42, RefreshFailures: 0}, "event_id", "e-1")
	after := time.Now().UnixMilli()
	if len(lines) != 1 {
		t.Fatalf("want one line, got %d: %q", len(lines), lines)
	}
	t.Log(lines[0])
	var rec struct {
		AWS struct {
			Timestamp         *int64 `json:"Timestamp"`
			CloudWatchMetrics []struct {
				Namespace  string                        `json:"Namespace"`
				Dimensions [][]string                    `json:"Dimensions"`
				Metrics    []struct{ Name, Unit string } `json:"Metrics"`
			} `json:"CloudWatchMetrics"`
		} `json:"_aws"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, lines[0])
	}
	var top map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &top); err != nil {
		t.Fatal(err)
	}

	if ts := rec.AWS.Timestamp; ts == nil || *ts < before || *ts > after {
		t.Errorf("_aws.Timestamp = %v, want ms between %d and %d", ts, before, after)
	}
	if len(rec.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("want one metric directive, got %+v", rec.AWS.CloudWatchMetrics)
	}
	d := rec.AWS.CloudWatchMetrics[0]
	if d.Namespace != Namespace {
		t.Errorf("Namespace = %q, want %q", d.Namespace, Namespace)
	}
	// Exactly one, empty dimension set: the metric has no dimensions (event_id must not become one).
	if len(d.Dimensions) != 1 || d.Dimensions[0] == nil || len(d.Dimensions[0]) != 0 {
		t.Errorf("Dimensions = %#v, want [[]]", d.Dimensions)
	}
	if !strings.Contains(lines[0], `"Dimensions":[[]]`) {
		t.Errorf("Dimensions not written as [[]]: %s", lines[0])
	}
	want := map[string]float64{RefreshRuns: 1, TokensRefreshed: 42}
	if len(d.Metrics) != len(want) {
		t.Errorf("Metrics = %+v, want exactly %v (zero counts left out)", d.Metrics, want)
	}
	for _, m := range d.Metrics {
		v, ok := want[m.Name]
		if !ok {
			t.Errorf("unexpected metric %q", m.Name)
			continue
		}
		if m.Unit != "Count" {
			t.Errorf("%s: Unit %q, want Count", m.Name, m.Unit)
		}
		if got, ok := top[m.Name].(float64); !ok || got != v {
			t.Errorf("top-level %s = %#v, want the number %v", m.Name, top[m.Name], v)
		}
	}
	if _, ok := top[RefreshFailures]; ok {
		t.Errorf("zero count %s was written", RefreshFailures)
	}
	if top["msg"] != "metrics" || top["level"] != "INFO" {
		t.Errorf("msg %v level %v, want metrics INFO", top["msg"], top["level"])
	}
	if top["event_id"] != "e-1" {
		t.Errorf("logger attributes lost: %s", lines[0])
	}
}

func TestCountSkipsNothingToSay(t *testing.T) {
	for name, counts := range map[string]map[string]float64{
		"nil":        nil,
		"all zero":   {RefreshRuns: 0, RelayFailures: 0},
		"non-finite": {RelayFailures: math.NaN(), MessagesRelayed: math.Inf(1)},
		"no name":    {"": 3},
	} {
		if lines := capture(t, counts); len(lines) != 0 {
			t.Errorf("%s: want no line, got %q", name, lines)
		}
	}
}

func TestCountNilLoggerUsesDefault(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	Count(nil, map[string]float64{JobsDeadLettered: 1})
	if !strings.Contains(buf.String(), `"JobsDeadLettered":1`) {
		t.Errorf("default logger got %q", buf.String())
	}
}

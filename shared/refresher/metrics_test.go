package refresher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/refresher"
)

type failingComponent struct{}

func (failingComponent) Token(context.Context) (string, error) { return "", errors.New("wechat down") }

// TestRunCountsMetrics: every run, even one that fails before touching the table, emits one Wxtpp record
// with RefreshRuns=1, so the dashboard sees the schedule and the alarm sees the failure. (No emulator needed:
// without a component token the run stops before its first query.)
func TestRunCountsMetrics(t *testing.T) {
	var buf bytes.Buffer
	r := &refresher.Refresher{Component: failingComponent{}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	if _, err := r.Run(context.Background()); err == nil {
		t.Fatal("run without a component token succeeded")
	}
	var found []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["msg"] == "metrics" {
			found = append(found, rec)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one metrics record, got %d:\n%s", len(found), buf.String())
	}
	rec := found[0]
	if rec[metrics.RefreshRuns] != 1.0 || rec[metrics.RefreshFailures] != 1.0 {
		t.Errorf("RefreshRuns %v RefreshFailures %v, want 1 and 1", rec[metrics.RefreshRuns], rec[metrics.RefreshFailures])
	}
	if _, ok := rec[metrics.TokensRefreshed]; ok {
		t.Errorf("TokensRefreshed is zero and must be left out: %v", rec)
	}
	if !strings.Contains(buf.String(), `"Namespace":"`+metrics.Namespace+`"`) {
		t.Errorf("no directive in namespace %s:\n%s", metrics.Namespace, buf.String())
	}
}

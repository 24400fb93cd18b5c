package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/wxtpp/platform/shared/logging"
)

func TestDurationsCarryTheirUnit(t *testing.T) {
	var b bytes.Buffer
	logging.New(&b, "info").Info("done", "took", 1500*time.Millisecond, slog.Duration("delay", 230*time.Millisecond), "n", 3)
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["took"] != "1.5s" || line["delay"] != "230ms" || line["n"] != float64(3) {
		t.Errorf("line %s", b.Bytes())
	}
}

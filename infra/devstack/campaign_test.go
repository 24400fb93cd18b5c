package devstack_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/campaigns"
)

// TestCampaignFromTheCLIThroughTheRealBinaries is what README's `make dev` walk-through does: the sandbox's
// mini programs authorized (their `authorized` pushes through the real ticket function), a draft added to the
// template library with the CLI, examples/campaign.json started with the CLI, and `campaign status` watched
// until every app is released; the audit events come back through the real message function and the jobs
// binary releases each app once.
func TestCampaignFromTheCLIThroughTheRealBinaries(t *testing.T) {
	stack, _, _ := startStack(t)
	ctx := context.Background()
	bin := buildCLI(t)
	var apps []string
	for _, a := range stack.Sandbox.Accounts() {
		if a.IsMiniProgram() {
			if _, err := stack.Sandbox.Authorize(ctx, a.AppID, stack.Sandbox.CreatePreAuthCode()); err != nil {
				t.Fatal(err)
			}
			apps = append(apps, a.AppID)
		}
	}
	testenv.Eventually(t, 20*time.Second, "the mini programs stored", func() bool {
		for _, id := range apps {
			if _, err := stack.Store.Authorizer(ctx, id); err != nil {
				return false
			}
		}
		return true
	})

	var added struct {
		TemplateID *int64 `json:"template_id"`
	}
	if err := json.Unmarshal([]byte(operator(t, bin, stack, "templates", "add", "3", "--json")), &added); err != nil || added.TemplateID == nil {
		t.Fatalf("templates add: %+v, %v", added, err)
	}
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	job := strings.Replace(string(example), `"template_id": 1,`, `"template_id": `+strconv.FormatInt(*added.TemplateID, 10)+`,`, 1)
	file := filepath.Join(t.TempDir(), "campaign.json")
	if err := os.WriteFile(file, []byte(job), 0o600); err != nil {
		t.Fatal(err)
	}
	operator(t, bin, stack, "campaign", "start", file)

	var status struct {
		Campaign struct {
			State string `json:"State"`
		} `json:"campaign"`
		Counts map[string]int `json:"counts"`
	}
	testenv.Eventually(t, 90*time.Second, "every app released in `campaign status`", func() bool {
		out, err := runOperator(bin, stack, "campaign", "status", "demo-1", "--json")
		return err == nil && json.Unmarshal([]byte(out), &status) == nil && status.Counts[campaigns.StateReleased] == len(apps)
	})
	for _, id := range apps {
		st := stack.Sandbox.CodeStats(id)
		if st.Commits != 1 || st.Submits != 1 || st.Releases != 1 || st.ReleasedVersion != "1.2.0" {
			t.Errorf("%s: %+v", id, st)
		}
		if !strings.Contains(st.ExtJSON, `"extAppid":"`+id+`"`) {
			t.Errorf("%s committed ext_json %s", id, st.ExtJSON)
		}
	}
}

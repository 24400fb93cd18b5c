package platform_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The functions must not link html/template or text/template: executing a template makes the linker keep
// every exported method of every type (reflection), which took one function from 11 MB to 19 MB, past the
// 15 MB the Lambda binaries are held to. Pages are written by hand (shared/authpages, shared/fanauth).
func TestFunctionsLinkNoTemplates(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "./functions/...") // as infra/sam.mk builds them
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "html/template" || pkg == "text/template" {
			t.Errorf("a function links %s", pkg)
		}
	}
}

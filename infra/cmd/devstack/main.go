// Command devstack runs the whole platform locally (`make dev`): it builds every function, starts the WeChat
// sandbox and the functions behind an emulated API Gateway, and prints the URLs. Ctrl-C stops everything.
// It expects DynamoDB Local and the SQS emulator (infra/scripts/with-emulators.sh starts them).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/wxtpp/platform/infra/devstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := devstack.OptionsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	opts.BinDir = filepath.Join(root, "build", "local")
	fmt.Println("devstack: building functions…")
	if err := devstack.Build(ctx, root, opts.BinDir); err != nil {
		return err
	}
	if opts.AWS, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
		return fmt.Errorf("AWS config: %w", err)
	}
	opts.Logs = os.Stdout
	stack, err := devstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	if err := stack.PrintURLs(os.Stdout); err != nil {
		stack.Close()
		return err
	}
	<-ctx.Done()
	fmt.Println("\ndevstack: stopping…")
	return stack.Close()
}

// repoRoot is the folder of the module's go.mod, so the stack builds and runs from any folder of the
// repository, not only its root.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the project's Go module (go env GOMOD is %q): run make dev from the repository", gomod)
	}
	return filepath.Dir(gomod), nil
}

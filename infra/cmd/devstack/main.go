// Command devstack runs the whole platform locally (`make dev`): it builds every function, starts the WeChat
// sandbox and the functions behind an emulated API Gateway, and prints the URLs. Ctrl-C stops everything.
// It expects DynamoDB Local and the SQS emulator (infra/scripts/with-emulators.sh starts them).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
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
	root, err := os.Getwd()
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
	stack.PrintURLs(os.Stdout)
	<-ctx.Done()
	fmt.Println("\ndevstack: stopping…")
	return stack.Close()
}

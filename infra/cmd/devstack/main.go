// Command devstack runs the whole platform locally (`make dev`): it builds every function, starts the WeChat
// sandbox and the functions behind an emulated API Gateway, and prints the URLs. Ctrl-C (SIGINT) or SIGTERM
// stops everything it started and ends with status 0. It expects DynamoDB Local and the SQS emulator
// (infra/scripts/with-emulators.sh starts them).
//
// devstack -check only checks the settings (the environment, the ports, the Go module) and starts nothing:
// `make dev` (infra/scripts/dev.sh) runs it before it starts the emulators, so a bad setting fails at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") { // Check reports every problem, one a line
			fmt.Fprintln(os.Stderr, "devstack:", line)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "check the settings and the ports, start nothing (make dev runs this before the emulators)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (settings come from the environment: see README.md)", fs.Args())
	}
	opts, root, err := checked(ctx, getenv)
	if err != nil {
		return err
	}
	if *check {
		return nil
	}

	opts.BinDir = filepath.Join(root, "build", "local")
	fmt.Fprintln(stdout, "devstack: building functions…")
	if err := devstack.Build(ctx, root, opts.BinDir); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while building: nothing runs yet
		}
		return err
	}
	if opts.AWS, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
		return fmt.Errorf("AWS config: %w", err)
	}
	opts.Logs = stdout
	stack, err := devstack.Start(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting; Start closed what it had started
		}
		return err
	}
	if err := stack.PrintURLs(stdout); err != nil {
		stack.Close()
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\ndevstack: stopping…")
	if err := stack.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "devstack: stopped")
	return nil
}

// checked reads and checks the options (devstack.OptionsFromEnv, devstack.Check) and finds the repository.
func checked(ctx context.Context, getenv func(string) string) (devstack.Options, string, error) {
	opts, err := devstack.OptionsFromEnv(getenv)
	if err != nil {
		return devstack.Options{}, "", err
	}
	if err := devstack.Check(opts, getenv); err != nil {
		return devstack.Options{}, "", err
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return devstack.Options{}, "", err
	}
	return opts, root, nil
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

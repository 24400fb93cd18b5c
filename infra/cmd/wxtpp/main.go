// Command wxtpp is the service provider's operator CLI: tenants and signed authorization links (see
// infra/operator, and `wxtpp help`).
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/wxtpp/platform/infra/operator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cli := &operator.CLI{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr}
	code := cli.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

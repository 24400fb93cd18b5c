// Command wxtpp is the service provider's operator CLI: tenants, signed authorization links, release
// campaigns and the template library (see infra/operator, and `wxtpp help`).
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
	cli := &operator.CLI{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	code := cli.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

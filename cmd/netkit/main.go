// Command netkit is one binary of network tools; "netkit hub" runs a
// WebSocket message hub. Run "netkit --help" for the list.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/netkit/netkit/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling, so that a second
	// one ends the process at once instead of waiting for a graceful stop.
	context.AfterFunc(ctx, stop)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

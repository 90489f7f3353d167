// Command centrifugo runs the scenarios of "netkit bench hub" against a
// Centrifugo server, speaking Centrifugo's JSON client protocol, so that
// both servers are measured by the same load generator with the same flags:
//
//	go run ./bench/centrifugo fanout --url ws://127.0.0.1:8000/connection/websocket
//	go run ./bench/centrifugo idle --connections 10000 --server-pid $(pidof centrifugo)
//	go run ./bench/centrifugo echo --count 10000 --json
//
// --api does not apply (Centrifugo has no /api/info). config.json beside
// this file configures Centrifugo v6 for it: memory engine, anonymous
// clients allowed to subscribe and publish on channels without a namespace
// (bench, echo, idle-N). See bench/compare-hub.sh.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/netkit/netkit/internal/bench"
	"github.com/netkit/netkit/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	cfg := bench.DefaultConfig()
	cfg.URL = "ws://127.0.0.1:8000/connection/websocket"
	cfg.Dialect = dialect{}
	code := cli.ExecuteBenchHub(ctx, "centrifugo", os.Args[1:], cfg, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

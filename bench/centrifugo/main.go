// Command centrifugo runs the scenarios of "netkit bench hub" against a
// Centrifugo server, speaking Centrifugo's JSON client protocol, so that
// both servers are measured by the same load generator:
//
//	go run ./bench/centrifugo fanout --url ws://127.0.0.1:8000/connection/websocket
//	go run ./bench/centrifugo idle --connections 10000 --server-pid $(pidof centrifugo)
//	go run ./bench/centrifugo echo --count 10000 --json
//
// The flags are those of "netkit bench hub SCENARIO" without --api (Centrifugo
// has no /api/info). config.json beside this file configures Centrifugo v6
// for it: memory engine, anonymous clients allowed to subscribe and publish
// on channels without a namespace (bench, echo, idle-N). See
// bench/compare-hub.sh.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/netkit/netkit/internal/bench"
)

const usage = `usage: go run ./bench/centrifugo fanout|idle|echo [flags]

Runs a "netkit bench hub" scenario against Centrifugo. Flags: go run
./bench/centrifugo SCENARIO -h
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg := bench.DefaultConfig()
	cfg.URL = "ws://127.0.0.1:8000/connection/websocket"
	cfg.Dialect = dialect{}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sc bench.Scenario
	switch args[0] {
	case "fanout":
		c := bench.DefaultFanout()
		fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "subscriber connections")
		fs.IntVar(&c.Publishers, "publishers", c.Publishers, "publisher connections")
		fs.IntVar(&c.Size, "size", c.Size, "bytes of each message's data value")
		fs.Float64Var(&c.Rate, "rate", c.Rate, "messages per second, all publishers together; 0 means as fast as -window allows")
		fs.IntVar(&c.Window, "window", c.Window, "unacknowledged publishes allowed per publisher")
		fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to publish")
		fs.DurationVar(&c.Drain, "drain", c.Drain, "how long to wait for messages in flight after publishing stops")
		fs.StringVar(&c.Channel, "channel", c.Channel, "the channel to publish on")
		sc = &c
	case "idle":
		c := bench.DefaultIdle()
		fs.IntVar(&c.Connections, "connections", c.Connections, "connections to open")
		fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to hold them once all are open")
		fs.StringVar(&c.ChannelPrefix, "channel-prefix", c.ChannelPrefix, "connection i subscribes to this prefix followed by i")
		sc = &c
	case "echo":
		c := bench.DefaultEcho()
		fs.IntVar(&c.Count, "count", c.Count, "round trips; 0 means as many as fit in -duration")
		fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to run when -count is 0")
		fs.IntVar(&c.Size, "size", c.Size, "bytes of each message's data value")
		fs.StringVar(&c.Channel, "channel", c.Channel, "the channel to publish on")
		sc = &c
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs.StringVar(&cfg.URL, "url", cfg.URL, "WebSocket URL of Centrifugo")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of Centrifugo on this machine, to report its CPU time and memory")
	sourceIPs := fs.String("source-ips", "", "local addresses to dial from in turn: 127.0.0.2,127.0.0.3 or 127.0.0.2-127.0.0.9")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "time allowed to open, be accepted and subscribe, per connection")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "connections being opened at once")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "centrifugo %s: unexpected argument %q\n", args[0], fs.Arg(0))
		return 2
	}
	ips, err := bench.ParseSourceIPs(*sourceIPs)
	if err != nil {
		fmt.Fprintf(stderr, "centrifugo %s: -source-ips: %v\n", args[0], err)
		return 2
	}
	cfg.SourceIPs = ips
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && stderr == os.Stderr {
		cfg.Progress = stderr
	}

	rep, err := bench.Run(ctx, cfg, sc)
	if rep != nil {
		if *asJSON {
			json.NewEncoder(stdout).Encode(rep)
		} else {
			rep.WriteText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "centrifugo %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netkit/netkit/internal/bench"
)

// benchOptions is what a "netkit bench hub" command hands to its run
// function.
type benchOptions struct {
	Config   bench.Config
	Scenario bench.Scenario
	JSON     bool // --json: the report as one JSON object
	Stdout   io.Writer
	Stderr   io.Writer
}

// benchFlags are the flags every "netkit bench hub" command has, before
// they are turned into a bench.Config.
type benchFlags struct {
	cfg       bench.Config
	sourceIPs string
	json      bool
}

// benchHelp is the end of "netkit bench hub --help": what every scenario
// reports and needs.
const benchHelp = `The report goes to stdout: as text, or with --json as one JSON object for
scripts. While it runs, a progress line is shown on stderr if stderr is a
terminal.

With --server-pid (the server runs on this machine) the report adds what
/proc says about it: CPU seconds per million delivered messages and memory
(RSS) per connection, figures that stay meaningful when the generator and
the server share cores. With --api it adds the hub's GET /api/info; the key
is --api-key, else $NETKIT_HUB_API_KEY.

Each connection is a file descriptor: the generator raises its soft limit
to the hard limit and refuses to start a scenario that needs more. One
source address reaches one server address from about 28,000 ports; for more
connections give --source-ips (127.0.0.2-127.0.0.9 on loopback).`

// benchScenarioHelp ends each scenario's --help.
const benchScenarioHelp = `The report goes to stdout, as text or with --json as one JSON object; a
progress line goes to stderr if it is a terminal. --server-pid adds the
hub's CPU time and memory per connection from /proc, --api its GET
/api/info. See "netkit bench hub --help" about file descriptors and
--source-ips.`

// benchSetup is what every "netkit bench hub" scenario command shares.
type benchSetup struct {
	env  []string                                   // os.Environ form
	base bench.Config                               // defaults: the server's URL and Dialect
	runF func(context.Context, *benchOptions) error // if not nil, runs instead of the generator (tests)
}

// newBenchCmd returns "netkit bench" with its "hub" commands. env is the
// environment in os.Environ form; runF, if not nil, runs instead of the
// load generator once the options are read, so that tests can check them.
func newBenchCmd(env []string, runF func(context.Context, *benchOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a server with generated load",
		Long: `Measure a server with generated load, like redis-benchmark or nats bench:
run it against your own deployment to size it and to trust it.`,
		Example: `  netkit bench hub fanout --url ws://127.0.0.1:9999/ws`,
		Args:    benchGroupArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchHubCmd(benchSetup{env: env, base: bench.DefaultConfig(), runF: runF}))
	return cmd
}

// ExecuteBenchHub runs the command line of one "netkit bench hub" scenario
// (args start with fanout, backpressure, idle, echo, connect or recover)
// against the server that base's URL
// and Dialect reach, and returns the exit status. Adapters for other
// servers under bench/ use it, so that every server is measured by the same
// generator with the same flags. name names the command in help and errors.
func ExecuteBenchHub(ctx context.Context, name string, args []string, base bench.Config, stdout, stderr io.Writer) int {
	cmd := newBenchHubCmd(benchSetup{env: os.Environ(), base: base})
	cmd.Use = name
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetUsageFunc(usage)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	return run(ctx, cmd, args, stdout, stderr)
}

func newBenchHubCmd(setup benchSetup) *cobra.Command {
	hub := &cobra.Command{
		Use:   "hub",
		Short: "Load-test a netkit hub over WebSocket",
		Long: `Load-test a netkit hub over WebSocket with one of six scenarios:

  fanout        N subscribers on one channel, P publishers as fast as the
                hub acknowledges (or at a set rate); throughput, loss,
                latency
  backpressure  one publisher that does not wait for replies, N readers
                and optionally stuck subscribers that never read; who the
                hub slows, who it drops and why
  idle          N connections on a channel each, held open; what a
                connection costs the hub
  echo          one client's publish to its own delivery, one at a time;
                round trip latency
  connect       N clients connect (with HS256 tokens given --jwt-secret);
                connections per second, server CPU per connect
  recover       N subscribers leave, messages are published, all come
                back at once and recover them; time and server CPU

` + benchHelp,
		Example: `  netkit bench hub fanout --subscribers 1000
  netkit bench hub backpressure --subscribers 1000 --stuck 1
  netkit bench hub idle --connections 10000 --server-pid $(pidof netkit)
  netkit bench hub echo --count 10000 --json
  netkit bench hub connect --connections 1000 --jwt-secret s3cret --server-pid $(pidof netkit)
  netkit bench hub recover --subscribers 1000 --messages 100`,
		Args: benchGroupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	hub.AddCommand(
		newBenchFanoutCmd(setup),
		newBenchBackpressureCmd(setup),
		newBenchIdleCmd(setup),
		newBenchEchoCmd(setup),
		newBenchConnectCmd(setup),
		newBenchRecoverCmd(setup),
	)
	return hub
}

func newBenchFanoutCmd(setup benchSetup) *cobra.Command {
	sc := bench.DefaultFanout()
	bf := newBenchFlags(setup.base)
	cmd := &cobra.Command{
		Use:   "fanout",
		Short: "Many subscribers on one channel, publishers as fast as acknowledged",
		Long: `Open --subscribers connections subscribed to one channel and --publishers
connections that publish --size-byte messages to it for --duration: as fast
as the hub acknowledges, with at most --window unacknowledged publishes per
publisher, or at --rate messages per second in all.

Every message carries its publisher, a sequence number and its send time.
Every subscriber checks each message: gaps (loss), duplicates and order are
counted per subscriber and always reported, with the number of subscribers
affected. After publishing stops, the generator waits up to --drain for
messages in flight; what has not arrived then is lost. Latency is from send
to delivery, over all deliveries.

` + benchScenarioHelp,
		Example: `  # 1000 subscribers, one publisher, 100-byte messages, max rate, 10 s
  netkit bench hub fanout --url ws://127.0.0.1:9999/ws

  # 5000 subscribers at 1000 messages per second, server CPU per delivery
  netkit bench hub fanout --subscribers 5000 --rate 1000 --server-pid $(pidof netkit)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCmd(cmd, setup, bf, &sc)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&sc.Subscribers, "subscribers", sc.Subscribers, "subscriber connections")
	fs.IntVar(&sc.Publishers, "publishers", sc.Publishers, "publisher connections")
	fs.IntVar(&sc.Size, "size", sc.Size, fmt.Sprintf("`bytes` of each message's data value (%d to %d)", bench.MinSize, bench.MaxSize))
	fs.Float64Var(&sc.Rate, "rate", sc.Rate, "messages per second, all publishers together; 0 means as fast as --window allows")
	fs.IntVar(&sc.Window, "window", sc.Window, "unacknowledged publishes allowed per publisher")
	fs.DurationVar(&sc.Duration, "duration", sc.Duration, "how long to publish")
	fs.DurationVar(&sc.Drain, "drain", sc.Drain, "how long to wait for messages in flight after publishing stops")
	fs.StringVar(&sc.Channel, "channel", sc.Channel, "the channel to publish on")
	fs.StringVar(&sc.PublishURL, "publish-url", "", "WebSocket `URL` the publishers connect to instead of --url: another node of a cluster, so every message crosses the broker")
	bf.bind(fs)
	return cmd
}

func newBenchBackpressureCmd(setup benchSetup) *cobra.Command {
	sc := bench.DefaultBackpressure()
	bf := newBenchFlags(setup.base)
	cmd := &cobra.Command{
		Use:   "backpressure",
		Short: "A publisher that does not wait for replies: who the hub slows, who it drops",
		Long: `Open --subscribers connections that subscribe to one channel and read as
fast as they can, --stuck more that subscribe and then never read (with a
4 KiB receive buffer, so that their sockets fill soon), and one publisher
that sends --size-byte publishes without waiting for replies: --count of
them, or as many as fit in --duration (whichever ends first). A hub with
flow control slows the publisher and drops only the stuck subscribers; one
without drops readers that were reading.

Reports the publisher's achieved rate (what the hub let it send), the
publishes acknowledged, distinct messages per reading subscriber (min,
median, max of what each should get), the readers the hub dropped by
disconnect code and when the first went, whether each stuck subscriber was
dropped (its socket is read at the end) and, from the leave push the
readers see, how long after publishing started; loss and latency as in
fanout. --json adds each reader's delivered, lost and drop. After
publishing stops the generator waits up to --drain for messages in flight;
a publish still blocked (the hub stopped reading the publisher) --timeout
after publishing should have stopped is cut short and reported.

` + benchScenarioHelp,
		Example: `  # 1000 readers and one stuck subscriber, 10 s of pipelined publishes
  netkit bench hub backpressure --subscribers 1000 --stuck 1

  # 100,000 publishes to 100 readers, with the hub's CPU time
  netkit bench hub backpressure --count 100000 --server-pid $(pidof netkit) --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCmd(cmd, setup, bf, &sc)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&sc.Subscribers, "subscribers", sc.Subscribers, "subscriber connections that read as fast as they can")
	fs.IntVar(&sc.Stuck, "stuck", sc.Stuck, "subscriber connections that never read")
	fs.IntVar(&sc.Size, "size", sc.Size, fmt.Sprintf("`bytes` of each message's data value (%d to %d)", bench.MinSize, bench.MaxSize))
	fs.IntVar(&sc.Count, "count", sc.Count, "publishes to send; 0 means as many as fit in --duration")
	fs.DurationVar(&sc.Duration, "duration", sc.Duration, "how long to publish at most")
	fs.DurationVar(&sc.Drain, "drain", sc.Drain, "how long to wait for replies and messages in flight after publishing stops")
	fs.StringVar(&sc.Channel, "channel", sc.Channel, "the channel to publish on")
	bf.bind(fs)
	return cmd
}

func newBenchIdleCmd(setup benchSetup) *cobra.Command {
	sc := bench.DefaultIdle()
	bf := newBenchFlags(setup.base)
	cmd := &cobra.Command{
		Use:   "idle",
		Short: "Many idle connections: what a connection costs the hub",
		Long: `Open --connections connections, --concurrency at a time, each subscribed to
its own channel (idle-0, idle-1, ...), hold them all for --duration, then
close them. Reports connect errors, the time to open them, connections the
hub dropped, and with --server-pid the hub's memory per connection, with
--api the connections, goroutines and heap the hub reports.

` + benchScenarioHelp,
		Example: `  # 10,000 connections against a hub on this machine
  netkit bench hub idle --server-pid $(pidof netkit) --api http://127.0.0.1:9999

  # 19,000 connections from 4 source addresses
  netkit bench hub idle --connections 19000 --source-ips 127.0.0.2-127.0.0.5`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCmd(cmd, setup, bf, &sc)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&sc.Connections, "connections", sc.Connections, "connections to open")
	fs.DurationVar(&sc.Duration, "duration", sc.Duration, "how long to hold them once all are open")
	fs.StringVar(&sc.ChannelPrefix, "channel-prefix", sc.ChannelPrefix, "connection i subscribes to this `prefix` followed by i")
	bf.bind(fs)
	return cmd
}

func newBenchEchoCmd(setup benchSetup) *cobra.Command {
	sc := bench.DefaultEcho()
	bf := newBenchFlags(setup.base)
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "One client's publish to its own delivery: round trip latency",
		Long: `Open one connection subscribed to --channel. Publish a --size-byte message,
wait until the hub delivers it back and acknowledges it, then publish the
next: --count round trips, or as many as fit in --duration. Reports the
round trip's percentiles.

` + benchScenarioHelp,
		Example: `  netkit bench hub echo --count 10000
  netkit bench hub echo --duration 30s --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCmd(cmd, setup, bf, &sc)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&sc.Count, "count", sc.Count, "round trips; 0 means as many as fit in --duration")
	fs.DurationVar(&sc.Duration, "duration", sc.Duration, "how long to run when --count is 0")
	fs.IntVar(&sc.Size, "size", sc.Size, fmt.Sprintf("`bytes` of each message's data value (%d to %d)", bench.MinSize, bench.MaxSize))
	fs.StringVar(&sc.Channel, "channel", sc.Channel, "the channel to publish on")
	bf.bind(fs)
	return cmd
}

func newBenchConnectCmd(setup benchSetup) *cobra.Command {
	sc := bench.DefaultConnect()
	bf := newBenchFlags(setup.base)
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Many clients connect with tokens: connections per second, CPU per connect",
		Long: `Open --connections connections, --concurrency at a time, each with its own
HS256 token for user bench-N signed with --jwt-secret (none without it),
and wait for each to complete the handshake (the hub's welcome). The tokens
are signed before the measured window starts. Reports connections per
second, errors, the handshake's percentiles (dial to welcome) and with
--server-pid the hub's CPU time per connect. The connections stay open for
--hold, then close.

` + benchScenarioHelp,
		Example: `  # 1000 clients with tokens, the hub's CPU per connect
  netkit bench hub connect --jwt-secret s3cret --server-pid $(pidof netkit)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCmd(cmd, setup, bf, &sc)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&sc.Connections, "connections", sc.Connections, "connections to open")
	fs.DurationVar(&sc.Hold, "hold", sc.Hold, "how long to keep them open once all are open")
	bf.bind(fs)
	return cmd
}

func newBenchRecoverCmd(setup benchSetup) *cobra.Command {
	sc := bench.DefaultRecover()
	bf := newBenchFlags(setup.base)
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Subscribers come back at once and recover what they missed",
		Long: `Open --subscribers connections subscribed to --channel, note each one's
position (offset and epoch) and close them all. Then publish --messages
--size-byte messages, one at a time, and reconnect every subscriber at once
(--concurrency does not apply), each subscribing with since its position.

Reports the time from the reconnect until the last client had every missed
message, the replies with recovered:true and recovered:false, the clients
that got all messages in order and once, each client's time from dial to
its last missed message, and with --server-pid the hub's CPU time over the
reconnect, per client. The channel needs history (on by default).

` + benchScenarioHelp,
		Example: `  # 1000 subscribers recover 100 messages, with the hub's CPU time
  netkit bench hub recover --server-pid $(pidof netkit)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchCmd(cmd, setup, bf, &sc)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&sc.Subscribers, "subscribers", sc.Subscribers, "subscriber connections that leave and come back")
	fs.IntVar(&sc.Messages, "messages", sc.Messages, "messages published while they are away")
	fs.IntVar(&sc.Size, "size", sc.Size, fmt.Sprintf("`bytes` of each message's data value (%d to %d)", bench.MinSize, bench.MaxSize))
	fs.StringVar(&sc.Channel, "channel", sc.Channel, "the channel to subscribe and publish on")
	bf.bind(fs)
	return cmd
}

func newBenchFlags(base bench.Config) *benchFlags { return &benchFlags{cfg: base} }

// bind adds the flags every scenario has, after its own.
func (b *benchFlags) bind(fs *pflag.FlagSet) {
	c := &b.cfg
	fs.StringVar(&c.URL, "url", c.URL, "WebSocket `URL` of the hub")
	fs.StringVar(&c.API, "api", c.API, "base `URL` of the hub's HTTP API, to report its GET /api/info (http://127.0.0.1:9999)")
	fs.StringVar(&c.APIKey, "api-key", c.APIKey, "bearer `key` for --api (default $NETKIT_HUB_API_KEY)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", c.JWTSecret, "HS256 `secret` to sign a token for each connection, user bench-N (default $NETKIT_HUB_JWT_SECRET; none: anonymous)")
	fs.Var((*pidValue)(&c.ServerPID), "server-pid", "`pid` of the hub on this machine, to report its CPU time and memory")
	fs.StringVar(&b.sourceIPs, "source-ips", b.sourceIPs, "local `addresses` to dial from in turn: 127.0.0.2,127.0.0.3 or 127.0.0.2-127.0.0.9")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "time allowed to open, be accepted and subscribe, per connection")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "connections being opened at once")
	fs.BoolVar(&b.json, "json", false, "print the report as one JSON object")
}

// runBenchCmd turns the flags into options and runs the scenario.
func runBenchCmd(cmd *cobra.Command, setup benchSetup, bf *benchFlags, sc bench.Scenario) error {
	ips, err := bench.ParseSourceIPs(bf.sourceIPs)
	if err != nil {
		return &usageError{fmt.Errorf("--source-ips: %w", err)}
	}
	opts := &benchOptions{Config: bf.cfg, Scenario: sc, JSON: bf.json, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
	opts.Config.SourceIPs = ips
	if opts.Config.APIKey == "" {
		opts.Config.APIKey = envValue(setup.env, "NETKIT_HUB_API_KEY")
	}
	if opts.Config.JWTSecret == "" {
		opts.Config.JWTSecret = envValue(setup.env, "NETKIT_HUB_JWT_SECRET")
	}
	if isBenchTerminal(opts.Stderr) {
		opts.Config.Progress = opts.Stderr
	}
	if setup.runF != nil {
		return setup.runF(cmd.Context(), opts)
	}
	return runBench(cmd.Context(), opts)
}

// runBench runs the load generator and writes its report, also when the
// run stopped early.
func runBench(ctx context.Context, opts *benchOptions) error {
	rep, err := bench.Run(ctx, opts.Config, opts.Scenario)
	if rep != nil {
		var werr error
		if opts.JSON {
			werr = json.NewEncoder(opts.Stdout).Encode(rep)
		} else {
			werr = rep.WriteText(opts.Stdout)
		}
		err = errors.Join(err, werr)
	}
	if err == nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	return err
}

// benchGroupArgs rejects an unknown subcommand of a command group.
func benchGroupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{errors.New(msg)}
}

// isTerminal reports whether w is a terminal (a character device).
func isBenchTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/udp"
)

// udpOptions is what a "netkit udp" command hands to its run function.
type udpOptions struct {
	Command string // "serve", "dial" or "bench"
	Listen  string // serve: --listen
	Serve   udp.ServeConfig
	Dial    udp.DialConfig
	Bench   udp.BenchConfig
	JSON    bool // bench: --json
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// newUDPCmd returns "netkit udp" with serve, dial and bench. runF, if not
// nil, runs instead of the command once its flags are checked, so that
// tests can check them.
func newUDPCmd(_ []string, runF func(context.Context, *udpOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "udp",
		Short: "UDP server, client and loss/jitter benchmark",
		Long: `UDP tools: a server that echoes, prints or discards datagrams from any
number of peers, a client that sends lines or test datagrams and prints the
replies, and a benchmark that measures loss, reordering, duplicates, jitter
and round-trip time against an echo server, like iperf3 -u.`,
		Example: `  netkit udp serve --mode echo
  echo hello | netkit udp dial 127.0.0.1:8001
  netkit udp bench 127.0.0.1:8001 --rate 10000 --duration 10s`,
		Args: benchGroupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	run := func(cmd *cobra.Command, opts *udpOptions) error {
		opts.Stdin, opts.Stdout, opts.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return runUDP(cmd.Context(), opts)
	}
	cmd.AddCommand(newUDPServeCmd(run), newUDPDialCmd(run), newUDPBenchCmd(run))
	return cmd
}

func newUDPServeCmd(run func(*cobra.Command, *udpOptions) error) *cobra.Command {
	opts := &udpOptions{Command: "serve", Listen: ":8001"}
	var mode string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Echo, print or discard UDP datagrams",
		Long: `Serve UDP on one socket for any number of peers. In echo mode each datagram
goes back to its sender; in print mode each is written to stdout as
"<peer> <bytes>: <text>", with control characters and invalid UTF-8 escaped
like Go's %q; discard mode only counts. Datagrams of any size up to 64 KiB
and any content are handled.

On Linux the server reads up to 32 datagrams with one recvmmsg and sends a
batch's echoes with one sendmmsg, the echoes of one size to one peer as one
message the kernel cuts into datagrams (UDP GSO, where the kernel offers
it); elsewhere it makes one system call per datagram. It asks for 4 MiB socket buffers (Linux caps them at
net.core.rmem_max and wmem_max).

It logs to stderr as key=value lines: where it listens, and on SIGINT or
SIGTERM its totals: datagrams, bytes, distinct peers, truncated datagrams
and failed echoes.`,
		Example: `  # Echo server for "netkit udp bench", on every interface
  netkit udp serve

  # Show what arrives on port 5000 of the loopback interface
  netkit udp serve --listen 127.0.0.1:5000 --mode print

  # IPv6 only
  netkit udp serve --listen [::1]:8001`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := udp.ParseMode(mode)
			if err != nil {
				return &usageError{fmt.Errorf("--mode %q: want echo, print or discard", mode)}
			}
			opts.Serve.Mode = m
			return run(cmd, opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&opts.Listen, "listen", opts.Listen, "`address` to listen on: :PORT for every interface, HOST:PORT or [IPv6]:PORT")
	fs.StringVar(&mode, "mode", "echo", "what to do with each datagram: echo, print or discard")
	return cmd
}

func newUDPDialCmd(run func(*cobra.Command, *udpOptions) error) *cobra.Command {
	opts := &udpOptions{Command: "dial", Dial: udp.DialConfig{Timeout: time.Second, Size: 64}}
	cmd := &cobra.Command{
		Use:   "dial HOST:PORT",
		Short: "Send datagrams and print the replies",
		Long: `Send datagrams to HOST:PORT and print each reply on its own line, escaped
like "netkit udp serve --mode print" does. Each line of stdin is one
datagram (without its newline). With --count it sends that many test
datagrams of --size bytes instead, and fails if none comes back.

After the last datagram it waits --timeout for replies still on their way:
it stops earlier when every datagram has had its reply.`,
		Example: `  # One datagram per line
  printf 'one\ntwo\n' | netkit udp dial 127.0.0.1:8001

  # A quick test without stdin: 5 datagrams of 1000 bytes
  netkit udp dial [::1]:8001 --count 5 --size 1000`,
		Args: hostPortArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dial.Addr = args[0]
			c := opts.Dial
			switch {
			case c.Timeout <= 0:
				return &usageError{fmt.Errorf("--timeout %v: want a duration like 1s", c.Timeout)}
			case c.Count < 0:
				return &usageError{fmt.Errorf("--count %d: want a number of datagrams, or 0 to read stdin", c.Count)}
			case c.Size < 1 || c.Size > 65507:
				return &usageError{fmt.Errorf("--size %d: want 1 to 65507 bytes", c.Size)}
			case cmd.Flags().Changed("size") && c.Count == 0:
				return &usageError{errors.New("--size needs --count")}
			}
			return run(cmd, opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	c := &opts.Dial
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "how long to wait for replies after the last datagram")
	fs.IntVar(&c.Count, "count", 0, "send this many test datagrams instead of reading stdin")
	fs.IntVar(&c.Size, "size", c.Size, "bytes per test datagram; needs --count")
	return cmd
}

func newUDPBenchCmd(run func(*cobra.Command, *udpOptions) error) *cobra.Command {
	opts := &udpOptions{Command: "bench", Bench: udp.BenchConfig{Rate: 1000, Size: 64, Duration: 10 * time.Second, Wait: time.Second}}
	cmd := &cobra.Command{
		Use:   "bench HOST:PORT",
		Short: "Measure loss, jitter and round trip against a UDP echo server",
		Long: `Send --rate datagrams per second of --size bytes for --duration to a UDP
echo server ("netkit udp serve --mode echo", or socat ... PIPE) and measure
what comes back. Each datagram carries a sequence number and its send time.

The report gives datagrams sent and received, loss (every datagram whose
echo did not come back within --wait after the last send, lost on either
way), reordering (echoes arriving after a later one), duplicates, the
achieved send rate, the round-trip time's min, p50, p90, p99 and max, and
the RFC 3550 interarrival jitter. Jitter is computed on round-trip times:
the transit time of each datagram is the arrival of its echo minus the send
time it carries, both read from this machine's clock, so no clock
synchronisation is needed; it includes the variation of both directions.

Up to 10,000 datagrams/s each leaves at its own time. Above, the sender
wakes about 10,000 times a second and sends the datagrams due together, in
bursts of up to 64: on Linux as one send that the kernel cuts into
datagrams (UDP GSO), which lets one client drive several hundred thousand
datagrams/s.

--json prints the report as one JSON object for scripts.`,
		Example: `  # 10 seconds at 1000 datagrams/s of 64 bytes
  netkit udp bench 127.0.0.1:8001

  # Heavier: 50000 datagrams/s of 1200 bytes, as JSON
  netkit udp bench 10.0.0.2:8001 --rate 50000 --size 1200 --duration 30s --json`,
		Args: hostPortArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Bench.Addr = args[0]
			c := opts.Bench
			switch {
			case c.Rate < 1:
				return &usageError{fmt.Errorf("--rate %d: want at least 1 datagram per second", c.Rate)}
			case c.Size < udp.MinBenchSize || c.Size > 65507:
				return &usageError{fmt.Errorf("--size %d: want %d to 65507 bytes", c.Size, udp.MinBenchSize)}
			case c.Duration <= 0:
				return &usageError{fmt.Errorf("--duration %v: want a duration like 10s", c.Duration)}
			case c.Wait <= 0:
				return &usageError{fmt.Errorf("--wait %v: want a duration like 1s", c.Wait)}
			}
			return run(cmd, opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	c := &opts.Bench
	fs.IntVar(&c.Rate, "rate", c.Rate, "datagrams per second to send")
	fs.IntVar(&c.Size, "size", c.Size, fmt.Sprintf("bytes per datagram, %d to 65507", udp.MinBenchSize))
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to send")
	fs.DurationVar(&c.Wait, "wait", c.Wait, "how long to wait for late echoes after the last send")
	fs.BoolVar(&opts.JSON, "json", false, "print the report as one JSON object")
	return cmd
}

// hostPortArg checks for exactly one HOST:PORT argument.
func hostPortArg(_ *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return &usageError{errors.New("missing HOST:PORT")}
	case len(args) > 1:
		return &usageError{fmt.Errorf("unexpected argument %q", args[1])}
	}
	if err := checkAddr(args[0]); err != nil {
		return &usageError{err}
	}
	return nil
}

// runUDP runs a udp command.
func runUDP(ctx context.Context, opts *udpOptions) error {
	switch opts.Command {
	case "serve":
		return runUDPServe(ctx, opts)
	case "dial":
		_, err := udp.Dial(ctx, opts.Dial, opts.Stdin, opts.Stdout)
		return err
	}
	rep, err := udp.Bench(ctx, opts.Bench)
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(opts.Stdout)
}

// runUDPServe serves until ctx ends and prints the totals.
func runUDPServe(ctx context.Context, opts *udpOptions) error {
	addr, err := net.ResolveUDPAddr("udp", opts.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", opts.Listen, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return err // "listen udp :8001: bind: address already in use"
	}
	// A daemon: its log lines are slog text, like tcp serve's and the hub's.
	log := slog.New(slog.NewTextHandler(opts.Stderr, nil))
	log.Info("listening", "addr", conn.LocalAddr().String(), "mode", string(opts.Serve.Mode), "batched", udp.Batched)
	cfg := opts.Serve
	cfg.Out = opts.Stdout
	st, err := udp.Serve(ctx, conn, cfg)
	log.Info("stopped", "datagrams", st.Datagrams, "bytes", st.Bytes, "peers", st.Peers, "truncated", st.Truncated, "echo_errors", st.Errors)
	return err
}

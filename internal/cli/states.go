package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/states"
)

// statesOptions is what "netkit states" hands to its run function.
type statesOptions struct {
	Source   states.Source
	Filter   states.Filter
	JSON     bool          // --json
	Summary  bool          // --summary
	Procs    bool          // -p, --processes
	Explain  bool          // --explain
	Watch    bool          // --watch
	Interval time.Duration // --interval, for --watch
	Stdout   io.Writer
	Stderr   io.Writer
}

// statesFlags are the flags as typed, before checkStates reads them.
type statesFlags struct {
	port      int
	state     string
	listening bool
	source    string
}

// newStatesCmd returns "netkit states". runF, if not nil, runs instead of
// reading sockets once the flags are checked, so that tests can check
// them.
func newStatesCmd(_ []string, runF func(context.Context, *statesOptions) error) *cobra.Command {
	opts := &statesOptions{Interval: states.DefaultInterval}
	var f statesFlags
	cmd := &cobra.Command{
		Use:   "states",
		Short: "Show TCP connections and their states, or watch them change",
		Long: `Show the TCP sockets of this machine, IPv4 and IPv6: state, receive and send
queues, local and remote address. It answers "netstat -an | grep PORT" and
"ss -tan". -p (--processes) adds the process that owns each socket, where
you may see it (as a normal user, your own processes), as "ss -tanp" does:
finding owners reads every /proc/PID/fd, so it is only done when asked.
--summary counts sockets by state.

--watch takes a snapshot every --interval and prints each change it sees,
with the time and the socket's states so far: "new" when it appeared
while watching, "gone" when it went. It also listens to the kernel's
socket-destroy notifications (netlink sock_diag): a connection that opens
and closes between two snapshots still shows, in the state it was freed
in (CLOSE). Where the kernel does not offer them, or does not let this
user join, the first line says so and only the snapshots are compared:
then a change shorter than the interval is not seen. Ctrl-C stops and
prints how many of each transition were seen.

--explain draws the TCP state diagram of RFC 793 with how many sockets
sit in each state now.

Sockets are read through netlink sock_diag, as ss does, or from
/proc/net/tcp and /proc/net/tcp6; --source picks one, and auto uses
/proc when netlink fails. Linux only.`,
		Example: `  # Every TCP socket, and those on port 8000 with their processes
  netkit states
  netkit states --port 8000 -p

  # Listening sockets; connections in TIME_WAIT as JSON
  netkit states --listening
  netkit states --state time-wait --json

  # How many sockets in each state
  netkit states --summary

  # Watch connections to port 8000 open and close; Ctrl-C to stop
  netkit states --watch --port 8000 --interval 50ms

  # The state diagram, with counts
  netkit states --explain`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkStates(opts, f); err != nil {
				return err
			}
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStates(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&f.port, "port", 0, "only sockets with this local or remote `port`")
	fs.StringVar(&f.state, "state", "", "only sockets in this `state`: listen, established, time-wait, ...")
	fs.BoolVar(&f.listening, "listening", false, "only listening sockets, like --state listen")
	fs.BoolVarP(&opts.Procs, "processes", "p", false, "show the process owning each socket (reads every /proc/PID/fd)")
	fs.BoolVar(&opts.Summary, "summary", false, "count sockets by state instead of listing them")
	fs.BoolVar(&opts.JSON, "json", false, "print JSON: an array of sockets, the counts, or with --watch one object per change")
	fs.BoolVar(&opts.Watch, "watch", false, "print state changes as they are seen until Ctrl-C, then a summary")
	fs.DurationVar(&opts.Interval, "interval", opts.Interval, "with --watch, time between snapshots")
	fs.BoolVar(&opts.Explain, "explain", false, "draw the TCP state diagram with how many sockets sit in each state")
	fs.StringVar(&f.source, "source", string(states.Auto), "read sockets from this `source`: netlink, proc (/proc/net/tcp*) or auto")
	return cmd
}

// checkStates reads the flags into opts and checks they go together.
func checkStates(opts *statesOptions, f statesFlags) error {
	src, err := states.ParseSource(f.source)
	if err != nil {
		return &usageError{fmt.Errorf("--source %q: want auto, netlink or proc", f.source)}
	}
	opts.Source = src
	if f.port < 0 || f.port > 65535 {
		return &usageError{fmt.Errorf("--port %d: want a number from 1 to 65535", f.port)}
	}
	opts.Filter.Port = uint16(f.port)
	if f.state != "" {
		st, err := states.ParseState(f.state)
		if err != nil {
			return &usageError{fmt.Errorf("--state %q: want one of LISTEN, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING, CLOSE", f.state)}
		}
		opts.Filter.State = st
	}
	if f.listening {
		if opts.Filter.State != 0 && opts.Filter.State != states.Listen {
			return &usageError{fmt.Errorf("--listening and --state %s don't go together", opts.Filter.State)}
		}
		opts.Filter.State = states.Listen
	}
	modes := 0
	for _, on := range []bool{opts.Summary, opts.Watch, opts.Explain} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return &usageError{errors.New("--summary, --watch and --explain don't go together: pick one")}
	case opts.Watch && opts.Filter.State != 0:
		return &usageError{errors.New("--watch follows sockets through every state: use --port, not --state or --listening")}
	case opts.Procs && (opts.Summary || opts.Watch || opts.Explain):
		return &usageError{errors.New("--processes goes with the socket list only, not --summary, --watch or --explain")}
	case opts.Explain && opts.JSON:
		return &usageError{errors.New("--explain draws text: leave out --json, or use --summary --json for the counts")}
	case opts.Interval <= 0:
		return &usageError{fmt.Errorf("--interval %v: want a duration like 100ms", opts.Interval)}
	}
	return nil
}

// runStates prints what the options ask for.
func runStates(ctx context.Context, opts *statesOptions) error {
	if opts.Watch {
		return watchStates(ctx, opts)
	}
	// One snapshot, then exit: the garbage collector has nothing to win
	// until the heap is large (a snapshot of 10,000 sockets is about 1.2
	// MB, --summary keeps none), and on two busy cores its work was a
	// quarter of the command's CPU time. Past 256 MiB it runs as usual.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if opts.Summary {
		// Counted as the sockets are read, none kept.
		n, err := states.CountFrom(ctx, opts.Source, opts.Filter)
		if err != nil {
			return err
		}
		if opts.JSON {
			return states.WriteCountsJSON(opts.Stdout, n)
		}
		return states.WriteCounts(opts.Stdout, n)
	}
	all, err := states.Snapshot(ctx, opts.Source)
	if err != nil {
		return err
	}
	// The snapshot is ours: filter and sort it in place.
	socks := states.Pick(all, opts.Filter)
	if opts.Explain {
		return states.WriteDiagram(opts.Stdout, socks)
	}
	states.Sort(socks)
	if opts.Procs {
		owners, err := states.Owners(ctx)
		if err != nil {
			return err
		}
		states.SetOwners(socks, owners)
	}
	if opts.JSON {
		return states.WriteJSON(opts.Stdout, socks)
	}
	return states.WriteTable(opts.Stdout, socks, opts.Procs)
}

// watchStates logs changes until ctx ends, then prints the summary.
func watchStates(ctx context.Context, opts *statesOptions) error {
	enc := json.NewEncoder(opts.Stdout)
	var werr error
	cfg := states.WatchConfig{
		Source: opts.Source, Port: opts.Filter.Port, Interval: opts.Interval,
		Started: func(n int, notify error) {
			what := "every TCP port"
			if opts.Filter.Port != 0 {
				what = fmt.Sprintf("TCP port %d", opts.Filter.Port)
			}
			how := "and on every socket-destroy notification"
			if notify != nil {
				how = fmt.Sprintf("only (no socket-destroy notifications: %v)", notify)
			}
			fmt.Fprintf(opts.Stderr, "watching %s every %v %s, %d sockets now; Ctrl-C to stop\n", what, opts.Interval, how, n)
		},
	}
	ts, err := states.Watch(ctx, cfg, func(e states.Event) {
		if werr != nil {
			return
		}
		if opts.JSON {
			werr = enc.Encode(e)
		} else {
			_, werr = fmt.Fprintln(opts.Stdout, e)
		}
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("writing the log: %w", werr)
	}
	if opts.JSON {
		return nil
	}
	return states.WriteTransitions(opts.Stdout, ts)
}

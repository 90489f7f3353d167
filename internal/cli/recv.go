package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/netkit/netkit/internal/config"
	"github.com/netkit/netkit/internal/transfer"
)

// recvOptions is what "netkit recv" hands to its run function.
type recvOptions struct {
	Listen  string                 // --listen
	Confirm bool                   // --confirm: ask on Stdin before accepting each offer
	Yes     bool                   // --yes: accept every offer without asking (with Confirm, still show it)
	Config  transfer.RecvConfig    // Events and Confirm are left nil: the run function sets them
	Stdin   io.Reader              // answers to --confirm
	Style   transfer.ProgressStyle // from --quiet, --json and whether stderr is a terminal
	Stdout  io.Writer              // --json events
	Stderr  io.Writer              // progress, hashes, summaries, errors
}

// newRecvCmd returns "netkit recv". env is the environment in os.Environ
// form (TERM=dumb turns the progress bars off); runF, if not nil, runs
// instead of the receiver once the flags are checked, so that tests can
// check them.
func newRecvCmd(env []string, runF func(context.Context, *recvOptions) error) *cobra.Command {
	opts := &recvOptions{
		Listen: ":8000",
		Config: transfer.RecvConfig{Dir: ".", IdleTimeout: 30 * time.Second, Hold: 2 * time.Minute,
			MaxConns: 16, MaxFailures: 10},
	}
	var out outputFlags
	var rd relayDefault
	var maxSize string
	cmd := &cobra.Command{
		Use:   "recv [[--relay RELAY] CODE]",
		Short: "Receive files from netkit send",
		Long: `Receive files from "netkit send" into --dir. Several senders can send at
once; recv serves them until interrupted (Ctrl-C), or with --once until the
first transfer ends. It first says where files go and prints the command
to run on the sending machine.

Who may send:
  (default)  only a sender with the code recv prints (like
             7-tiger-lamp-cloud, or the one given with --code). Both ends
             prove they know it before any name or byte is accepted (a
             password-authenticated key exchange: the code cannot be
             guessed offline from what is on the wire), and everything is
             encrypted. After --max-failures wrong codes recv retires the
             code and exits. Listens on all interfaces (:8000), since
             nobody without the code gets anything.
  --relay RELAY CODE
             fetch from "netkit send --relay", which printed CODE: no open
             port here or there. One transfer, then recv exits. With a
             default relay ([transfer] relay in the --config file, or
             NETKIT_TRANSFER_RELAY), "netkit recv CODE" is enough;
             --no-relay or --relay "" turns it off.
  --open     anyone who can reach the port may send, nothing is
             encrypted. Listens on 127.0.0.1:8000 unless --listen says
             otherwise.
  --classic  the classic teaching protocol, for the many small programs
             that implement it: the sender sends a file name (one trailing
             newline is dropped, so printf 'name\n' | nc works), recv
             answers "ok" and writes the bytes until the connection closes.
             Anyone may send; no hash, no resume. Listens on
             127.0.0.1:8000 unless --listen says otherwise.
  --tls      the older encrypted mode: prints a certificate fingerprint for
             "send --tls --code"; anyone may send. 127.0.0.1:8000 unless
             --listen.

With --confirm recv shows each offer once the sender has proved the code
(who, how many files, how large, the first names) and accepts it only when
answered y on the terminal; anything else declines it, and the sender is
told. --confirm needs stdin to be a terminal: without one (a script, a
service) recv refuses to start unless --yes is given too, which shows each
offer and accepts it without asking. --yes alone accepts every offer, as
recv does without --confirm.

A file appears under its name only once all of it arrived intact; until
then it is a partial file inside --dir. With the code, every byte comes in
encrypted records that recv authenticates, in order, so a changed byte
fails the transfer; the BLAKE3 hash printed is the one the sender computed
of what it sent. With --open and --tls, recv hashes what arrives and
compares it with the sender's BLAKE3 hash. When
a transfer is interrupted (a sender stopped, the connection cut, recv
stopped), the partial file is kept and the same send resumes from it. A
file that is already there with the same size and hash is skipped.

recv writes nothing outside --dir. It rejects names that are absolute,
contain "..", control characters or a path through a symbolic link, and
names sent twice. It never replaces an existing file unless --overwrite,
and rejects files larger than --max-size or than the free space. Space and
names are held for a sender only while its data moves: one that sends
nothing but keepalives for --hold is dropped and they are released. A
sender that comes back from the same host takes over the names of its
earlier, stalled connection.

` + transferOutputHelp + `

Sizes are written like 512MiB or 10GiB (powers of 1024).

Exit status: 0 when stopped by Ctrl-C or after --once, 1 when recv cannot
listen or --dir is not a directory, after --max-failures wrong codes, or
with --once or --relay when a file was rejected or failed, 2 for wrong
flags.`,
		Example: `  # Receive into ~/Downloads on port 8000 until Ctrl-C; prints the code
  netkit recv --dir ~/Downloads

  # Fetch what "netkit send --relay relay.example.org" offered with its code
  netkit recv --relay relay.example.org 7-tiger-lamp-cloud

  # The same with a default relay set (e.g. in ~/.profile)
  export NETKIT_TRANSFER_RELAY=relay.example.org
  netkit recv 7-tiger-lamp-cloud

  # One file from a classic sender on the local network, then exit
  netkit recv --classic --listen :8000 --once`,
		Args: func(cmd *cobra.Command, args []string) error {
			// A code argument fetches through the default relay.
			if err := rd.resolve(cmd, env, &opts.Config.Relay, len(args) == 1); err != nil {
				return err
			}
			switch {
			case opts.Config.Relay == "" && len(args) == 1 && isCode(args[0]):
				return &usageError{fmt.Errorf("a code argument fetches through a relay: give --relay RELAY (or set a default: [transfer] relay in --config, or NETKIT_TRANSFER_RELAY); to require this code from senders, use --code %s", args[0])}
			case opts.Config.Relay != "" && len(args) != 1:
				return &usageError{errors.New("--relay RELAY needs the CODE that netkit send --relay printed, like 7-tiger-lamp-cloud")}
			case opts.Config.Relay == "" && len(args) > 0:
				return &usageError{fmt.Errorf("unexpected argument %q (recv takes flags only; with --relay, the code)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Config.Code = args[0]
			}
			if err := checkRecv(opts, maxSize, cmd.Flags().Changed("listen")); err != nil {
				return err
			}
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if opts.Confirm && !opts.Yes {
				if !inputIsTerminal(cmd.InOrStdin()) {
					return &usageError{errors.New("--confirm asks y/n on the terminal, and stdin is not one: add --yes to accept every offer (each is still shown), or run recv in a terminal")}
				}
				opts.Stdin = cmd.InOrStdin()
			}
			opts.Style = out.style(opts.Stderr, env)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRecv(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	c := &opts.Config
	fs.StringVar(&opts.Listen, "listen", opts.Listen, "listen on this `address`, HOST:PORT or :PORT (default :8000 with a code, 127.0.0.1:8000 with --open, --classic or --tls)")
	fs.StringVar(&c.Dir, "dir", c.Dir, "write files into this `directory`, which must exist")
	fs.StringVar(&c.Code, "code", "", "require this `code` (a number and three words, like 7-tiger-lamp-cloud) instead of a new one")
	fs.StringVar(&c.Relay, "relay", "", "fetch through the relay at `HOST[:PORT]` (port "+strconv.Itoa(transfer.DefaultRelayPort)+" if none); the code is the argument")
	fs.BoolVar(&c.Open, "open", false, "take files from anyone who can reach the port, without a code or encryption")
	fs.BoolVar(&c.Once, "once", false, "exit after one transfer")
	fs.BoolVar(&opts.Confirm, "confirm", false, "show each offer (names and sizes, after the code) and accept it only if answered y on the terminal")
	fs.BoolVar(&opts.Yes, "yes", false, "accept every offer without asking; with --confirm each offer is still shown (for scripts and services, which have no terminal)")
	fs.BoolVar(&c.Classic, "classic", false, "speak the classic protocol (name, \"ok\", bytes): anyone may send, no hash, no resume")
	fs.BoolVar(&c.Overwrite, "overwrite", false, "replace existing files that differ from the ones sent")
	fs.StringVar(&maxSize, "max-size", "", "reject files larger than this `size`, like 10GiB (default no limit)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "drop a sender that stalls this long, keeping its partial file; 0 waits forever")
	fs.DurationVar(&c.Hold, "hold", c.Hold, "drop a sender that moves no file data this long, keepalives or not, releasing its space and names")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "serve at most this many connections at once; more are told to try later")
	fs.IntVar(&c.MaxFailures, "max-failures", c.MaxFailures, "after this many wrong codes, retire the code and exit")
	fs.BoolVar(&c.TLS, "tls", false, "older mode: TLS with a new self-signed certificate, its fingerprint printed for senders; anyone may send")
	rd.bind(fs)
	out.bind(fs, "print only errors, and the code senders need")
	return cmd
}

// checkRecv checks the flags, turns --max-size into a number and picks
// the default listen address: every interface only when a code is
// required.
func checkRecv(opts *recvOptions, maxSize string, listenSet bool) error {
	c := &opts.Config
	modes := 0
	for _, on := range []bool{c.Relay != "", c.Open, c.Classic, c.TLS} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return &usageError{errors.New("--relay, --open, --classic and --tls are different ways to receive: pick one")}
	}
	if c.Code != "" && (c.Open || c.Classic || c.TLS) {
		return &usageError{errors.New("--code goes with the default mode or --relay: --open, --classic and --tls take files without a code")}
	}
	if c.Code != "" {
		if _, _, err := transfer.ParseCode(c.Code); err != nil {
			return &usageError{fmt.Errorf("code %q: want a number and three words like 7-tiger-lamp-cloud", c.Code)}
		}
	}
	if c.Relay != "" {
		if listenSet {
			return &usageError{errors.New("--relay and --listen don't go together: through a relay recv listens on no port")}
		}
		c.Relay = withDefaultPort(c.Relay, transfer.DefaultRelayPort)
		c.Once = true
	}
	if !listenSet && (c.Open || c.Classic || c.TLS) {
		opts.Listen = "127.0.0.1:8000"
	}
	if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
		return &usageError{fmt.Errorf("--listen %q: want HOST:PORT or :PORT, like :8000", opts.Listen)}
	}
	if maxSize != "" {
		n, err := config.ParseSize(maxSize)
		if err != nil {
			return &usageError{fmt.Errorf("--max-size %q: want a size like 10GiB, in %s", maxSize, config.SizeUnits)}
		}
		c.MaxSize = n
	}
	if c.IdleTimeout < 0 {
		return &usageError{fmt.Errorf("--idle-timeout %v: want a duration like 30s, or 0 for none", c.IdleTimeout)}
	}
	if c.Hold <= 0 {
		return &usageError{fmt.Errorf("--hold %v: want a duration like 2m (a sender must move data that often)", c.Hold)}
	}
	if c.MaxConns < 1 || c.MaxFailures < 1 {
		return &usageError{errors.New("--max-conns and --max-failures: want a number of at least 1")}
	}
	fi, err := os.Stat(c.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--dir %s: no such directory", c.Dir)
	case err != nil:
		return fmt.Errorf("--dir: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("--dir %s: not a directory", c.Dir)
	}
	return nil
}

// runRecv listens and receives until ctx ends, or after one transfer with
// --once, showing the progress.
func runRecv(ctx context.Context, opts *recvOptions) error {
	var ln net.Listener
	if opts.Config.Relay == "" {
		var err error
		if ln, err = net.Listen("tcp", opts.Listen); err != nil {
			return err // "listen tcp :8000: bind: address already in use"
		}
		defer ln.Close()
	}
	prog := transfer.NewProgress(transfer.ProgressConfig{
		Style: opts.Style, Out: opts.Stdout, Err: opts.Stderr,
		Receiver: true, Classic: opts.Config.Classic, TLS: opts.Config.TLS, Confirm: opts.Confirm,
	})
	var t tally
	cfg := opts.Config
	cfg.Events = t.count(prog.Event)
	switch {
	case opts.Confirm && opts.Yes:
		cfg.Confirm = acceptShown(opts.Stderr)
	case opts.Confirm:
		cfg.Confirm = confirmer(opts.Stdin, opts.Stderr)
	}
	var err error
	if ln == nil {
		err = transfer.ReceiveRelay(ctx, cfg)
	} else {
		err = transfer.Receive(ctx, ln, cfg)
	}
	if cerr := prog.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the progress: %w", cerr)
	}
	switch {
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed)):
		return nil // stopped by Ctrl-C: the normal end of a receiver
	case err != nil && cfg.Once && t.broken.Load() > 0:
		// The transfer's error was shown as an event already.
		return errors.New("the transfer did not finish (reason above)")
	case err == nil && cfg.Once:
		return t.err(0, 0)
	case err != nil:
		return plainError{err}
	}
	return nil
}

// isCode reports whether s parses as a transfer code.
func isCode(s string) bool {
	_, _, err := transfer.ParseCode(s)
	return err == nil
}

// inputIsTerminal reports whether r, recv's stdin, is a terminal that
// --confirm can ask on. Tests replace it.
var inputIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirmer returns a RecvConfig.Confirm that shows each offer on w and
// reads y or n from in, one offer at a time. No answer (end of input) is
// no.
func confirmer(in io.Reader, w io.Writer) func(transfer.Offer) bool {
	var mu sync.Mutex
	br := bufio.NewReader(in)
	return func(o transfer.Offer) bool {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, offerText(o)+"accept? [y/N] ")
		line, _ := br.ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true
		}
		io.WriteString(w, "declined\n")
		return false
	}
}

// acceptShown returns a RecvConfig.Confirm for --confirm --yes: it shows
// each offer on w and accepts it.
func acceptShown(w io.Writer) func(transfer.Offer) bool {
	var mu sync.Mutex
	return func(o transfer.Offer) bool {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, offerText(o)+"accepted (--yes)\n")
		return true
	}
}

// offerText describes an offer in lines: who, how much, the first names.
func offerText(o transfer.Offer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s offers %s, %s:\n", o.Peer, fileCount(int64(o.Files)), byteCount(o.Bytes))
	for _, f := range o.Names {
		if f.Dir {
			fmt.Fprintf(&b, "  %s/\n", f.Name)
		} else {
			fmt.Fprintf(&b, "  %s (%s)\n", f.Name, byteCount(f.Size))
		}
	}
	if more := o.Entries - len(o.Names); more > 0 {
		fmt.Fprintf(&b, "  and %d more\n", more)
	}
	return b.String()
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/netkit/netkit/internal/config"
	"github.com/netkit/netkit/internal/transfer"
)

// sendOptions is what "netkit send" hands to its run function.
type sendOptions struct {
	Config transfer.SendConfig    // Events is left nil: the run function sets it
	Style  transfer.ProgressStyle // from --quiet, --json and whether stderr is a terminal
	Stdout io.Writer              // --json events
	Stderr io.Writer              // progress, hashes, summary, errors
}

// transferOutputHelp ends the description of send and recv.
const transferOutputHelp = `Progress goes to stderr: a bar per file in flight when stderr is a terminal,
otherwise one line per file. Each verified file is printed with its BLAKE3
hash, and a summary ends the transfer. --quiet prints only errors; --json
prints one JSON object per event on stdout instead, for scripts.`

// newSendCmd returns "netkit send". env is the environment in os.Environ
// form (TERM=dumb turns the progress bars off); runF, if not nil, runs
// instead of the transfer once the arguments are checked, so that tests
// can check them.
func newSendCmd(env []string, runF func(context.Context, *sendOptions) error) *cobra.Command {
	opts := &sendOptions{Config: transfer.SendConfig{IdleTimeout: 30 * time.Second}}
	var out outputFlags
	var rd relayDefault
	cmd := &cobra.Command{
		Use:   "send --code CODE PATH... HOST:PORT | send [--relay RELAY] PATH...",
		Short: "Send files and directories to netkit recv",
		Long: `Send files and directories to "netkit recv". Directories are sent with
everything under them, keeping relative paths, modes and modification
times. Symbolic links are skipped with a warning, or with --follow sent as
the files they point to.

Who may send, and how:
  --code CODE HOST:PORT  the default. recv printed the code (like
                         7-tiger-lamp-cloud) and listens at HOST:PORT. Both
                         ends prove they know the code before any name or
                         byte of a file moves (a password-authenticated key
                         exchange: the code cannot be guessed offline from
                         what is on the wire), and everything is encrypted.
  --relay RELAY          neither end needs an open port: send makes a room
                         on the relay (netkit relay) and prints a new code;
                         on the other machine run netkit recv --relay RELAY
                         CODE. The relay sees only encrypted bytes.
                         With a default relay set (below), "netkit send
                         PATH..." goes through it.
  --open HOST:PORT       no code, nothing encrypted: only to a receiver that
                         runs with --open, which takes files from anyone.
  --classic HOST:PORT    the classic teaching protocol (the file's name, the
                         receiver's "ok", the bytes until the connection
                         closes), understood by many small programs: one
                         regular file, no code, no hash, no resume.

The receiver answers for each file: it accepts it, skips it when it
already has the same file (same size and BLAKE3 hash), or rejects it with a
reason, printed here. Every file is hashed while it is sent and verified by
the receiver before it appears there under its name. When a transfer is
interrupted, the receiver keeps what it got: run the same command again and
it resumes where it stopped. Progress and the bytes in the summary are what
the receiver confirmed it has.

Default relay: no relay is built into netkit, but one can be set with
[transfer] relay = "HOST[:PORT]" in a TOML file given with --config, or
NETKIT_TRANSFER_RELAY=HOST[:PORT] in the environment (the variable wins).
send then uses it whenever none of --code, --open, --classic or --tls is
given; --no-relay or --relay "" turns it off for one command.

--tls with --code FINGERPRINT is the older encrypted mode ("netkit recv
--tls"), kept for scripts: it checks the receiver, but the receiver takes
files from anyone.

` + transferOutputHelp + `

Exit status: 0 when every file was sent and verified or skipped as already
there, 1 when a file was rejected or failed or the transfer stopped, 2 for
wrong arguments.`,
		Example: `  # Send a directory to the receiver that printed the code 7-tiger-lamp-cloud
  netkit send --code 7-tiger-lamp-cloud photos/ 192.168.1.20:8000

  # Through a relay: prints a code for "netkit recv --relay relay.example.org CODE"
  netkit send --relay relay.example.org photos/

  # Through the default relay (set once, e.g. in ~/.profile)
  export NETKIT_TRANSFER_RELAY=relay.example.org
  netkit send photos/

  # To a receiver that runs with --open (anyone may send to it)
  netkit send --open notes.txt 127.0.0.1:8000

  # To a classic receiver (or "netkit recv --classic")
  netkit send --classic notes.txt host:8000`,
		Args: func(cmd *cobra.Command, args []string) error {
			c := &opts.Config
			direct := c.Code != "" || c.Open || c.Classic || c.TLS
			if err := rd.resolve(cmd, env, &c.Relay, !direct); err != nil {
				return err
			}
			return sendArgs(args, c.Relay != "")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &opts.Config
			if c.Relay != "" {
				c.Paths = args
			} else {
				c.Paths, c.Addr = args[:len(args)-1], args[len(args)-1]
			}
			if err := checkSend(c); err != nil {
				return err
			}
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts.Style = out.style(opts.Stderr, env)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSend(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	c := &opts.Config
	fs.StringVar(&c.Code, "code", "", "the `code` netkit recv printed, like 7-tiger-lamp-cloud (with --tls: its fingerprint)")
	fs.StringVar(&c.Relay, "relay", "", "send through the relay at `HOST[:PORT]` (port "+strconv.Itoa(transfer.DefaultRelayPort)+" if none), printing a new code for the receiver")
	fs.BoolVar(&c.Open, "open", false, "no code and no encryption: only to a receiver that runs with --open")
	fs.BoolVar(&c.Follow, "follow", false, "send the files symbolic links point to instead of skipping the links")
	fs.BoolVar(&c.Classic, "classic", false, "speak the classic protocol (name, \"ok\", bytes): one regular file, no code, not verified")
	fs.BoolVar(&c.TLS, "tls", false, "older mode: TLS to the receiver whose certificate fingerprint is --code (netkit recv --tls)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "give up when the receiver stalls this long; 0 waits forever")
	rd.bind(fs)
	out.bind(fs, "print only errors (and with --relay the code)")
	return cmd
}

// transferSettings is what send and recv read from --config and the
// environment: the [transfer] section.
type transferSettings struct {
	Transfer transfer.Config `koanf:"transfer"`
}

// relayDefault is the relay send and recv use when --relay is not given:
// [transfer] relay in the --config file, or NETKIT_TRANSFER_RELAY.
type relayDefault struct {
	file    string // --config
	noRelay bool   // --no-relay
}

func (d *relayDefault) bind(fs *pflag.FlagSet) {
	fs.StringVar(&d.file, "config", "", "read [transfer] relay, the default relay, from this TOML `file` (NETKIT_TRANSFER_RELAY also sets it)")
	fs.BoolVar(&d.noRelay, "no-relay", false, "ignore the default relay of --config and NETKIT_TRANSFER_RELAY (as --relay \"\" does)")
}

// resolve sets *relay to the default relay when the command wants one
// (use: no mode flag says otherwise) and neither --relay (even empty)
// nor --no-relay was given. The settings are loaded in any case, so that
// a broken file or variable is reported whatever the flags.
func (d *relayDefault) resolve(cmd *cobra.Command, env []string, relay *string, use bool) error {
	set := transferSettings{Transfer: transfer.DefaultConfig()}
	loader, err := config.New(&set, envPrefix)
	if err != nil {
		return err
	}
	if err := loader.Load(d.file, env); err != nil {
		return err
	}
	explicit := cmd.Flags().Changed("relay")
	switch {
	case d.noRelay && explicit && *relay != "":
		return &usageError{errors.New("--relay and --no-relay don't go together: pick one")}
	case d.noRelay || explicit || !use:
		return nil
	}
	*relay = set.Transfer.Relay
	return nil
}

// sendArgs checks that there is something to send and, without a relay,
// an address last.
func sendArgs(args []string, relay bool) error {
	switch {
	case relay && len(args) == 0:
		return &usageError{errors.New("missing PATH...: what to send")}
	case relay:
		return nil
	case len(args) == 0:
		return &usageError{errors.New("missing PATH... HOST:PORT: what to send and where (or --relay RELAY PATH...)")}
	case len(args) == 1 && checkAddr(args[0]) == nil:
		return &usageError{fmt.Errorf("nothing to send: give at least one PATH before %s", args[0])}
	case len(args) == 1:
		return &usageError{fmt.Errorf("missing the receiver's HOST:PORT after %s (or send through a relay with --relay RELAY)", args[0])}
	}
	return nil
}

// checkSend checks what the flags and arguments say together.
func checkSend(c *transfer.SendConfig) error {
	if c.IdleTimeout < 0 {
		return &usageError{fmt.Errorf("--idle-timeout %v: want a duration like 30s, or 0 for none", c.IdleTimeout)}
	}
	modes := 0
	for _, on := range []bool{c.Relay != "", c.Open, c.Classic, c.TLS} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return &usageError{errors.New("--relay, --open, --classic and --tls are different ways to send: pick one")}
	}
	if c.Relay != "" {
		if c.Code != "" {
			return &usageError{errors.New("--relay makes a new code and prints it; --code is for sending to a receiver that printed one")}
		}
		c.Relay = withDefaultPort(c.Relay, transfer.DefaultRelayPort)
		return nil
	}
	if err := checkAddr(c.Addr); err != nil {
		return &usageError{err}
	}
	switch {
	case c.Open || c.Classic:
		if c.Code != "" {
			return &usageError{fmt.Errorf("--code and --%s don't go together: an --open or classic receiver checks no code", map[bool]string{true: "open", false: "classic"}[c.Open])}
		}
	case c.TLS:
		if c.Code == "" {
			return &usageError{errors.New(`--tls needs --code, the fingerprint "netkit recv --tls" printed`)}
		}
	default:
		if c.Code == "" {
			return &usageError{errors.New(`missing --code: the code "netkit recv" printed, like 7-tiger-lamp-cloud (or --open for a receiver that runs with --open)`)}
		}
		if _, _, err := transfer.ParseCode(c.Code); err != nil {
			return &usageError{fmt.Errorf("--code %q: want the code netkit recv printed, a number and three words like 7-tiger-lamp-cloud", c.Code)}
		}
	}
	if !c.Classic {
		return nil
	}
	if len(c.Paths) != 1 {
		return &usageError{fmt.Errorf("--classic sends exactly one file, got %d paths", len(c.Paths))}
	}
	// A path that does not exist is for Send to report, like any file it
	// cannot read.
	if fi, err := os.Stat(c.Paths[0]); err == nil && !fi.Mode().IsRegular() {
		return &usageError{fmt.Errorf("--classic sends one regular file; %s is not one", c.Paths[0])}
	}
	return nil
}

// withDefaultPort adds port to a HOST without one.
func withDefaultPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
}

// checkAddr checks that addr is HOST:PORT with a port number.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && ae.Err == "missing port in address" {
			return fmt.Errorf("%s: missing port; want HOST:PORT like %s:8000", addr, addr)
		}
		return fmt.Errorf("%s: want HOST:PORT like 192.168.1.20:8000 or [::1]:8000", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%s: port %q: want a number from 1 to 65535", addr, port)
	}
	return nil
}

// runSend sends the files, showing the progress, and turns files that
// did not arrive into an error.
func runSend(ctx context.Context, opts *sendOptions) error {
	prog := transfer.NewProgress(transfer.ProgressConfig{
		Style: opts.Style, Out: opts.Stdout, Err: opts.Stderr, Classic: opts.Config.Classic,
	})
	var t tally
	cfg := opts.Config
	cfg.Events = t.count(prog.Event)
	sum, err := transfer.Send(ctx, cfg)
	if cerr := prog.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the progress: %w", cerr)
	}
	switch {
	case err != nil && ctx.Err() != nil && !cfg.Classic:
		return fmt.Errorf("interrupted; the receiver keeps the %s it confirmed: send again to resume", byteCount(sum.Bytes))
	case err != nil && ctx.Err() != nil:
		return errors.New("interrupted")
	case err != nil:
		return plainError{err}
	}
	return t.err(sum.Rejected, sum.Failed)
}

// tally counts, from a transfer's events, the files rejected or failed and
// the connections that broke. Its count function may be called from
// several goroutines at once.
type tally struct {
	rejected atomic.Int64
	failed   atomic.Int64
	broken   atomic.Int64 // errors about no file: a connection's end
}

// count returns an event function that counts, then calls next.
func (t *tally) count(next func(transfer.Event)) func(transfer.Event) {
	return func(e transfer.Event) {
		switch {
		case e.Kind == transfer.EventReject:
			t.rejected.Add(1)
		case e.Kind == transfer.EventError && e.File != "":
			t.failed.Add(1)
		case e.Kind == transfer.EventError:
			t.broken.Add(1)
		}
		next(e)
	}
}

// err returns an error that counts the files not transferred, or nil.
// rejected and failed are a Summary's counts, used if larger.
func (t *tally) err(rejected, failed int) error {
	r, f := max(t.rejected.Load(), int64(rejected)), max(t.failed.Load(), int64(failed))
	switch {
	case r == 0 && f == 0:
		return nil
	case f == 0:
		return fmt.Errorf("%s rejected (reasons above)", fileCount(r))
	case r == 0:
		return fmt.Errorf("%s failed (reasons above)", fileCount(f))
	}
	return fmt.Errorf("%s not transferred: %d rejected, %d failed (reasons above)", fileCount(r+f), r, f)
}

// plainError shows a transfer error without the package's prefix: the
// user reads "cannot connect to ...", not "transfer: cannot connect".
type plainError struct{ err error }

func (e plainError) Error() string { return strings.TrimPrefix(e.err.Error(), "transfer: ") }
func (e plainError) Unwrap() error { return e.err }

// byteCount writes n in powers of 1024: "512 B", "3.2 MiB".
func byteCount(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, units := float64(n)/1024, "KMGTPE"
	i := 0
	for f >= 1023.95 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}

// fileCount is "1 file" or "n files".
func fileCount(n int64) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}

// outputFlags are the display flags of send and recv.
type outputFlags struct {
	quiet bool
	json  bool
}

// bind adds the flags; quiet is the usage of --quiet.
func (o *outputFlags) bind(fs *pflag.FlagSet, quiet string) {
	fs.BoolVar(&o.quiet, "quiet", false, quiet)
	fs.BoolVar(&o.json, "json", false, "print each event as one JSON object per line on stdout; errors still go to stderr")
}

// style picks how to show the progress on stderr: bars only on a
// terminal that can move the cursor.
func (o *outputFlags) style(stderr io.Writer, env []string) transfer.ProgressStyle {
	switch {
	case o.json:
		return transfer.ProgressJSON
	case o.quiet:
		return transfer.ProgressQuiet
	case isTerminal(stderr) && envValue(env, "TERM") != "dumb":
		return transfer.ProgressBars
	default:
		return transfer.ProgressLines
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

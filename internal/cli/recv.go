package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/config"
	"github.com/netkit/netkit/internal/transfer"
)

// recvOptions is what "netkit recv" hands to its run function.
type recvOptions struct {
	Listen string                 // --listen
	Config transfer.RecvConfig    // Events is left nil: the run function sets it
	Style  transfer.ProgressStyle // from --quiet, --json and whether stderr is a terminal
	Stdout io.Writer              // --json events
	Stderr io.Writer              // progress, hashes, summaries, errors
}

// newRecvCmd returns "netkit recv". env is the environment in os.Environ
// form (TERM=dumb turns the progress bars off); runF, if not nil, runs
// instead of the receiver once the flags are checked, so that tests can
// check them.
func newRecvCmd(env []string, runF func(context.Context, *recvOptions) error) *cobra.Command {
	opts := &recvOptions{
		Listen: ":8000",
		Config: transfer.RecvConfig{Dir: ".", IdleTimeout: 30 * time.Second},
	}
	var out outputFlags
	var maxSize string
	cmd := &cobra.Command{
		Use:   "recv",
		Short: "Receive files from netkit send",
		Long: `Receive files from "netkit send" into --dir. Several senders can send at
once; recv serves them until interrupted (Ctrl-C), or with --once until the
first transfer ends.

Every file is checked against the BLAKE3 hash the sender computed before it
appears under its name; until then it is a partial file inside --dir. When
a transfer is interrupted (a sender stopped, the connection cut, recv
stopped), the partial file is kept and the same send resumes from it. A
file that is already there with the same size and hash is skipped.

recv writes nothing outside --dir. It rejects names that are absolute,
contain "..", control characters or a path through a symbolic link, and
names sent twice. It never replaces an existing file unless --overwrite,
and rejects files larger than --max-size or than the free space.

With --tls recv makes a self-signed certificate and prints its code;
senders pass it with "--tls --code CODE" and refuse any other certificate.

--classic speaks the classic teaching protocol instead, so that the many
small programs that implement it can send here: the sender sends a file
name, recv answers "ok" and writes the bytes until the connection closes.
There is no hash and no resume; every rule above about names and sizes
still holds.

` + transferOutputHelp + `

Sizes are written like 512MiB or 10GiB (powers of 1024).

Exit status: 0 when stopped by Ctrl-C or after --once, 1 when recv cannot
listen or --dir is not a directory, or with --once when a file was rejected
or failed, 2 for wrong flags.`,
		Example: `  # Receive into ~/Downloads on port 8000 until Ctrl-C
  netkit recv --dir ~/Downloads

  # Encrypted: print a code for the sender's --code
  netkit recv --tls

  # One file from a classic sender, then exit
  netkit recv --classic --once`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRecv(opts, maxSize); err != nil {
				return err
			}
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
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
	fs.StringVar(&opts.Listen, "listen", opts.Listen, "listen on this `address`, HOST:PORT or :PORT")
	fs.StringVar(&c.Dir, "dir", c.Dir, "write files into this `directory`, which must exist")
	fs.BoolVar(&c.Once, "once", false, "exit after one transfer")
	fs.BoolVar(&c.Classic, "classic", false, "speak the classic protocol (name, \"ok\", bytes): no hash, no resume")
	fs.BoolVar(&c.Overwrite, "overwrite", false, "replace existing files that differ from the ones sent")
	fs.StringVar(&maxSize, "max-size", "", "reject files larger than this `size`, like 10GiB (default no limit)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "drop a sender that stalls this long, keeping its partial file; 0 waits forever")
	fs.BoolVar(&c.TLS, "tls", false, "encrypt with a new self-signed certificate and print its code for senders")
	out.bind(fs, "print only errors, and with --tls the code senders need")
	return cmd
}

// checkRecv checks the flags and turns --max-size into a number.
func checkRecv(opts *recvOptions, maxSize string) error {
	c := &opts.Config
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
	if c.Classic && c.TLS {
		return &usageError{errors.New("--classic and --tls don't go together: the classic protocol is plain TCP")}
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
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err // "listen tcp :8000: bind: address already in use"
	}
	defer ln.Close()
	prog := transfer.NewProgress(transfer.ProgressConfig{
		Style: opts.Style, Out: opts.Stdout, Err: opts.Stderr,
		Receiver: true, Classic: opts.Config.Classic,
	})
	var t tally
	cfg := opts.Config
	cfg.Events = t.count(prog.Event)
	err = transfer.Receive(ctx, ln, cfg)
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
	}
	return err
}

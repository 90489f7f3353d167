package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/config"
	"github.com/netkit/netkit/internal/transfer"
)

// relayOptions is what "netkit relay" hands to its run function.
type relayOptions struct {
	Listen string               // --listen
	Config transfer.RelayConfig // Logger is left nil: the run function sets it
	Stderr io.Writer            // the log
}

// newRelayCmd returns "netkit relay". runF, if not nil, runs instead of
// the relay once the flags are checked, so that tests can check them.
func newRelayCmd(runF func(context.Context, *relayOptions) error) *cobra.Command {
	opts := &relayOptions{
		Listen: ":" + strconv.Itoa(transfer.DefaultRelayPort),
		Config: transfer.RelayConfig{MaxRooms: 100, RoomTime: 6 * time.Hour, WaitTime: 10 * time.Minute},
	}
	roomBytes := "64GiB"
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Relay transfers between netkit send and recv that cannot reach each other",
		Long: `Relay transfers for "netkit send --relay" and "netkit recv --relay", so
that neither end needs an open port: both connect out to the relay.

The sender makes a room named by the number at the start of its new code
(7 in 7-tiger-lamp-cloud) and waits; the receiver joins it with the same
code, and from then on the relay copies bytes both ways. The relay learns
the room number and sees only encrypted bytes: the words of the code never
pass through it, and the key exchange that runs through it admits no
offline guessing. A relay that tries a guess, or changes a byte, makes the
transfer fail with an error on both ends.

Limits: --max-rooms rooms at once (waiting or paired), --room-bytes from
each end of a room, --room-time for a paired room, --wait for a room
whose receiver has not come. A room that reaches a limit is closed, and
both ends report the transfer broken (run the same send again: it
resumes).

No relay address is built into netkit: run one where both ends can reach
it (default port ` + strconv.Itoa(transfer.DefaultRelayPort) + `). Users name it with --relay, or once as their
default relay (NETKIT_TRANSFER_RELAY=HOST, or [transfer] relay in a file
given to send and recv with --config). It logs one line per room to
stderr.`,
		Example: `  # A relay on the default port
  netkit relay

  # Smaller rooms, for a relay open to the Internet
  netkit relay --listen :9000 --max-rooms 20 --room-bytes 4GiB --room-time 1h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRelay(opts, roomBytes); err != nil {
				return err
			}
			opts.Stderr = cmd.ErrOrStderr()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRelay(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	c := &opts.Config
	fs.StringVar(&opts.Listen, "listen", opts.Listen, "listen on this `address`, HOST:PORT or :PORT")
	fs.IntVar(&c.MaxRooms, "max-rooms", c.MaxRooms, "rooms open at once, waiting or paired; more senders are told to try later")
	fs.StringVar(&roomBytes, "room-bytes", roomBytes, "carry at most this `size` from each end of a room, like 4GiB")
	fs.DurationVar(&c.RoomTime, "room-time", c.RoomTime, "close a paired room after this long")
	fs.DurationVar(&c.WaitTime, "wait", c.WaitTime, "close a room whose receiver has not come after this long")
	return cmd
}

// checkRelay checks the flags and turns --room-bytes into a number.
func checkRelay(opts *relayOptions, roomBytes string) error {
	c := &opts.Config
	if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
		return &usageError{fmt.Errorf("--listen %q: want HOST:PORT or :PORT, like :%d", opts.Listen, transfer.DefaultRelayPort)}
	}
	n, err := config.ParseSize(roomBytes)
	if err != nil || n <= 0 {
		return &usageError{fmt.Errorf("--room-bytes %q: want a size like 4GiB, in %s", roomBytes, config.SizeUnits)}
	}
	c.RoomBytes = n
	if c.MaxRooms < 1 {
		return &usageError{errors.New("--max-rooms: want a number of at least 1")}
	}
	if c.RoomTime <= 0 || c.WaitTime <= 0 {
		return &usageError{errors.New("--room-time and --wait: want a duration like 10m")}
	}
	return nil
}

// runRelay listens and relays until ctx ends.
func runRelay(ctx context.Context, opts *relayOptions) error {
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err
	}
	cfg := opts.Config
	cfg.Logger = newLogger(opts.Stderr, DefaultLogConfig())
	cfg.Logger.Info("relay: listening", "addr", ln.Addr().String())
	return transfer.Relay(ctx, ln, cfg)
}

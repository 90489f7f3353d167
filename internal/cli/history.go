package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/client"
)

// historyOptions is what "netkit history" hands to its run function.
type historyOptions struct {
	Conn    hubConn
	Channel string
	Limit   int              // --limit; 0: all the hub keeps
	Since   *client.Position // --since
	Stdout  io.Writer
}

func newHistoryCmd(env []string, runF func(context.Context, *historyOptions) error) *cobra.Command {
	opts := &historyOptions{}
	var since string
	cmd := &cobra.Command{
		Use:   "history CHANNEL",
		Short: "Print the recent messages of a hub channel",
		Long: `Print the messages a netkit hub keeps for CHANNEL, oldest first, one JSON
line each, in the form "netkit sub" prints. Without --since, the newest
--limit messages; with --since OFFSET:EPOCH, the oldest --limit after that
position, so a script can page forward. Needs a hub that keeps history.

The hub is --url, or NETKIT_URL, or ws://localhost:9999/ws; --token or
NETKIT_TOKEN is sent when connecting.

Exit status: 0 on success, 1 when it failed, 2 for wrong arguments.`,
		Example: `  netkit history room
  netkit history room --limit 10
  netkit history room --since 41:6b1f0c2a --limit 100`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("want one CHANNEL, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel, opts.Stdout = args[0], cmd.OutOrStdout()
			if opts.Limit < 0 {
				return &usageError{fmt.Errorf("--limit %d: want a positive number, or 0 for all", opts.Limit)}
			}
			if since != "" {
				pos, err := parsePosition(since)
				if err != nil {
					return err
				}
				opts.Since = &pos
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runHistory(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&opts.Limit, "limit", 0, "at most `N` messages; 0 prints all the hub keeps")
	fs.StringVar(&since, "since", "", "only messages after the one at `OFFSET:EPOCH`")
	addHubConnFlags(fs, env, &opts.Conn)
	return cmd
}

// parsePosition reads OFFSET:EPOCH for --since.
func parsePosition(s string) (client.Position, error) {
	off, epoch, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(off, 10, 64)
	if !ok || err != nil || epoch == "" {
		return client.Position{}, &usageError{fmt.Errorf("--since %q: want OFFSET:EPOCH, like 41:6b1f0c2a", s)}
	}
	return client.Position{Offset: n, Epoch: epoch}, nil
}

func runHistory(ctx context.Context, opts *historyOptions) error {
	c, err := opts.Conn.dial(ctx, false)
	if err != nil {
		return err
	}
	defer c.Close()
	var res client.HistoryResult
	if err := opts.Conn.call(ctx, func(ctx context.Context) error {
		res, err = c.History(ctx, opts.Channel, client.HistoryOptions{Limit: opts.Limit, Since: opts.Since})
		return err
	}); err != nil {
		var ce *client.Error
		if errors.As(err, &ce) && ce.Code == client.CodeBadRequest && strings.Contains(ce.Message, "history") {
			return fmt.Errorf("%w (this hub keeps no history)", err)
		}
		return err
	}
	enc := newJSONLines(opts.Stdout)
	for _, m := range res.Messages {
		if err := enc.Encode(subLine{Push: "message", Channel: m.Channel, Offset: &m.Offset, Epoch: m.Epoch, From: &m.From, Data: m.Data}); err != nil {
			return err
		}
	}
	return nil
}

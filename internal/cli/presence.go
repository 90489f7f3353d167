package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/client"
)

// presenceOptions is what "netkit presence" hands to its run function.
type presenceOptions struct {
	Conn    hubConn
	Channel string
	Stdout  io.Writer
}

func newPresenceCmd(env []string, runF func(context.Context, *presenceOptions) error) *cobra.Command {
	opts := &presenceOptions{}
	cmd := &cobra.Command{
		Use:   "presence CHANNEL",
		Short: "List who is subscribed to a hub channel",
		Long: `List the connections subscribed to CHANNEL on a netkit hub, one JSON line
each, sorted by client id: {"client":"9f2c4e1ab3d07788","user":"alice"}.
Nothing is printed for a channel without subscribers.

The hub is --url, or NETKIT_URL, or ws://localhost:9999/ws; --token or
NETKIT_TOKEN is sent when connecting.

Exit status: 0 on success, 1 when it failed, 2 for wrong arguments.`,
		Example: `  netkit presence room
  netkit presence room | jq -r .user | sort -u`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("want one CHANNEL, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel, opts.Stdout = args[0], cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPresence(cmd.Context(), opts)
		},
	}
	cmd.Flags().SortFlags = false
	addHubConnFlags(cmd.Flags(), env, &opts.Conn)
	return cmd
}

func runPresence(ctx context.Context, opts *presenceOptions) error {
	c, err := opts.Conn.dial(ctx, false)
	if err != nil {
		return err
	}
	defer c.Close()
	var clients []client.ClientInfo
	if err := opts.Conn.call(ctx, func(ctx context.Context) error {
		clients, err = c.Presence(ctx, opts.Channel)
		return err
	}); err != nil {
		return err
	}
	enc := newJSONLines(opts.Stdout)
	for _, ci := range clients {
		if err := enc.Encode(ci); err != nil {
			return err
		}
	}
	return nil
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// The hub's direct message is "netkit dm", not "netkit send": "send" is
// the file sender, and "netkit hub send" would make "hub", which runs the
// server with its own flags, a group of client commands too. "dm" is the
// common word for a direct message, as in the dm#alice,bob private
// channels.

// dmOptions is what "netkit dm" hands to its run function.
type dmOptions struct {
	Conn   hubConn
	User   string
	Data   json.RawMessage
	Stdout io.Writer
}

func newDMCmd(env []string, runF func(context.Context, *dmOptions) error) *cobra.Command {
	opts := &dmOptions{}
	cmd := &cobra.Command{
		Use:   "dm USER DATA",
		Short: "Send a direct message to a hub user",
		Long: `Send DATA as a direct message to every connection of USER on a netkit hub
(the hub's "send" command; "netkit send" sends files). DATA that parses as
JSON is sent as that JSON value; anything else as a JSON string. It prints
how many connections got it, {"delivered":N}; a user with no connection is
not an error.

The hub is --url, or NETKIT_URL, or ws://localhost:9999/ws; --token or
NETKIT_TOKEN is sent when connecting.

Exit status: 0 when the hub took the message, 1 when it failed, 2 for wrong
arguments.`,
		Example: `  netkit dm alice '{"text":"psst"}'
  netkit dm anon-5a1b2c3d hello`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{fmt.Errorf("want USER and DATA, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.User, opts.Data = args[0], jsonOrString(args[1])
			opts.Stdout = cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDM(cmd.Context(), opts)
		},
	}
	cmd.Flags().SortFlags = false
	addHubConnFlags(cmd.Flags(), env, &opts.Conn)
	return cmd
}

func runDM(ctx context.Context, opts *dmOptions) error {
	c, err := opts.Conn.dial(ctx, false)
	if err != nil {
		return err
	}
	defer c.Close()
	var n int
	if err := opts.Conn.call(ctx, func(ctx context.Context) error {
		n, err = c.Send(ctx, opts.User, opts.Data)
		return err
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(opts.Stdout, "{\"delivered\":%d}\n", n)
	return err
}

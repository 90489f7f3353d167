package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netkit/netkit/client"
)

// This file holds "netkit pub" and what the hub client commands (pub, sub,
// dm, presence, history) share: --url, --token and connecting.

// defaultHubURL is where the client commands look for a hub without --url
// or NETKIT_URL.
const defaultHubURL = "ws://localhost:9999/ws"

// hubConn is how a client command reaches the hub.
type hubConn struct {
	URL     string        // --url, NETKIT_URL
	Token   string        // --token, NETKIT_TOKEN
	Timeout time.Duration // --timeout: connecting, and each call of a one-shot command
}

// addHubConnFlags adds --url and --token, defaulting to NETKIT_URL and
// NETKIT_TOKEN, and --timeout.
func addHubConnFlags(fs *pflag.FlagSet, env []string, hc *hubConn) {
	hc.URL = envValue(env, "NETKIT_URL")
	if hc.URL == "" {
		hc.URL = defaultHubURL
	}
	hc.Token = envValue(env, "NETKIT_TOKEN")
	hc.Timeout = 10 * time.Second
	fs.StringVar(&hc.URL, "url", hc.URL, "WebSocket `URL` of the hub (env NETKIT_URL)")
	fs.StringVar(&hc.Token, "token", hc.Token, "`JWT` sent to the hub when connecting (env NETKIT_TOKEN)")
	fs.DurationVar(&hc.Timeout, "timeout", hc.Timeout, "give up connecting, or waiting for the hub's answer, after this long")
}

// dial connects to the hub. Its errors are one line that says what to
// check.
func (hc *hubConn) dial(ctx context.Context, reconnect bool, opts ...client.Option) (*client.Client, error) {
	if hc.Timeout <= 0 {
		return nil, &usageError{fmt.Errorf("--timeout %v: want a duration like 10s", hc.Timeout)}
	}
	dctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	opts = append(opts, client.WithToken(hc.Token), client.WithHandshakeTimeout(hc.Timeout))
	if !reconnect {
		opts = append(opts, client.WithReconnect(client.ReconnectPolicy{Disabled: true}))
	}
	c, err := client.Dial(dctx, hc.URL, opts...)
	if err != nil {
		return nil, hc.explain(err)
	}
	return c, nil
}

// explain turns a connect error into one line that says what to check.
func (hc *hubConn) explain(err error) error {
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.Code == client.CodeUnauthorized:
		return fmt.Errorf("the hub at %s refused the token: %s (check --token or NETKIT_TOKEN)", hc.URL, ce.Message)
	case errors.As(err, &ce):
		return fmt.Errorf("the hub at %s refused the connection: %s", hc.URL, ce.Message)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused (is the hub running? --url or NETKIT_URL sets the address)", hc.URL)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot connect to %s: no answer within %s", hc.URL, hc.Timeout)
	case errors.Is(err, client.ErrBadURL):
		return &usageError{fmt.Errorf("--url %q: want ws://HOST:PORT/ws or wss://HOST:PORT/ws", hc.URL)}
	}
	return fmt.Errorf("cannot connect to %s: %w", hc.URL, err)
}

// call runs one call of a one-shot command under --timeout.
func (hc *hubConn) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	return f(ctx)
}

// pubOptions is what "netkit pub" hands to its run function.
type pubOptions struct {
	Conn    hubConn
	Channel string
	Data    *json.RawMessage // the DATA argument; nil: read stdin
	Stdin   io.Reader
	Stdout  io.Writer
}

// maxStdinLine bounds one line of stdin that pub publishes.
const maxStdinLine = 1 << 20

func newPubCmd(env []string, runF func(context.Context, *pubOptions) error) *cobra.Command {
	opts := &pubOptions{}
	cmd := &cobra.Command{
		Use:   "pub CHANNEL [DATA]",
		Short: "Publish a message to a hub channel",
		Long: `Publish DATA to CHANNEL on a netkit hub, or, without DATA, each line of
stdin as one message (blank lines are skipped). DATA or a line that parses
as JSON is sent as that JSON value; anything else is sent as a JSON string.
Nothing is printed on success.

The hub is --url, or NETKIT_URL, or ws://localhost:9999/ws; --token or
NETKIT_TOKEN is sent when connecting.

Exit status: 0 when every message was published, 1 when connecting or a
publish failed, 2 for wrong arguments.`,
		Example: `  netkit pub room '{"text":"hello"}'
  netkit pub room hello                  # the JSON string "hello"
  tail -f app.log | netkit pub logs      # one message per line
  NETKIT_URL=wss://hub.example.com/ws netkit pub room 42`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return &usageError{fmt.Errorf("want CHANNEL and an optional DATA, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel = args[0]
			if len(args) == 2 {
				d := jsonOrString(args[1])
				opts.Data = &d
			}
			opts.Stdin, opts.Stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPub(cmd.Context(), opts)
		},
	}
	cmd.Flags().SortFlags = false
	addHubConnFlags(cmd.Flags(), env, &opts.Conn)
	return cmd
}

// jsonOrString returns s if it is a JSON value, else s as a JSON string.
func jsonOrString(s string) json.RawMessage {
	if t := strings.TrimSpace(s); t != "" && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	var b strings.Builder
	newJSONLines(&b).Encode(s) // cannot fail for a string
	return json.RawMessage(strings.TrimSuffix(b.String(), "\n"))
}

func runPub(ctx context.Context, opts *pubOptions) error {
	c, err := opts.Conn.dial(ctx, false)
	if err != nil {
		return err
	}
	defer c.Close()
	publish := func(data json.RawMessage) error {
		return opts.Conn.call(ctx, func(ctx context.Context) error {
			_, err := c.Publish(ctx, opts.Channel, data)
			return err
		})
	}
	if opts.Data != nil {
		return publish(*opts.Data)
	}
	sc := bufio.NewScanner(opts.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), maxStdinLine)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if err := publish(jsonOrString(sc.Text())); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	return nil
}

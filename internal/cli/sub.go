package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/client"
)

// subOptions is what "netkit sub" hands to its run function.
type subOptions struct {
	Conn     hubConn
	Channels []string
	Since    *client.Position // --since, one channel only
	Last     int              // --last
	Count    int              // --count; 0: until Ctrl-C
	Presence bool             // --presence
	Events   bool             // --events
	Stdout   io.Writer
	Stderr   io.Writer
}

func newSubCmd(env []string, runF func(context.Context, *subOptions) error) *cobra.Command {
	opts := &subOptions{}
	var since string
	cmd := &cobra.Command{
		Use:   "sub CHANNEL...",
		Short: "Print the messages of hub channels",
		Long: `Subscribe to one or more channels of a netkit hub and print each message as
one JSON line, as the hub pushes it plus the epoch of its offset:

  {"push":"message","channel":"room","offset":42,"epoch":"6b1f0c2a","from":"anon-5a1b2c3d","data":{"text":"hi"}}

--events also prints join and leave lines ({"push":"join",...}); --presence
prints who is subscribed to each channel once subscribed
({"push":"presence","channel":"room","clients":[...]}).

--since OFFSET:EPOCH (one channel) starts after that message, and --last N
with the channel's last N messages, when the hub keeps history. When the
connection drops, sub reconnects and resumes after the last message it
printed; if the hub cannot say that nothing was missed (it restarted, or
it keeps no history), a warning goes to stderr.

Exit status: 0 after --count messages or Ctrl-C, 1 when connecting fails
or the hub ends the subscription for good, 2 for wrong arguments.`,
		Example: `  netkit sub room
  netkit sub room chat --events
  netkit sub room --count 1 | jq .data
  netkit sub room --since 41:6b1f0c2a
  netkit sub room --last 10 --count 10`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{errors.New("want at least one CHANNEL")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channels = args
			if err := checkSub(opts, since); err != nil {
				return err
			}
			opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSub(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&since, "since", "", "start after the message at `OFFSET:EPOCH` (one channel; needs hub history)")
	fs.IntVar(&opts.Last, "last", 0, "start with the channel's last `N` messages (needs hub history)")
	fs.IntVar(&opts.Count, "count", 0, "exit after `N` messages; 0 runs until Ctrl-C")
	fs.BoolVar(&opts.Presence, "presence", false, "print who is subscribed to each channel once subscribed")
	fs.BoolVar(&opts.Events, "events", false, "print join and leave events too")
	addHubConnFlags(fs, env, &opts.Conn)
	return cmd
}

// checkSub reads --since and checks the flags go together.
func checkSub(opts *subOptions, since string) error {
	if since != "" {
		pos, err := parsePosition(since)
		if err != nil {
			return err
		}
		if len(opts.Channels) != 1 {
			return &usageError{errors.New("--since names a position in one channel: give one CHANNEL")}
		}
		opts.Since = &pos
	}
	switch {
	case opts.Since != nil && opts.Last > 0:
		return &usageError{errors.New("--since and --last don't go together: pick one")}
	case opts.Last < 0:
		return &usageError{fmt.Errorf("--last %d: want a positive number", opts.Last)}
	case opts.Count < 0:
		return &usageError{fmt.Errorf("--count %d: want a positive number, or 0 for no limit", opts.Count)}
	}
	return nil
}

// subLine is one line sub prints.
type subLine struct {
	Push    string               `json:"push"`
	Channel string               `json:"channel"`
	Offset  *uint64              `json:"offset,omitempty"`
	Epoch   string               `json:"epoch,omitempty"`
	From    *string              `json:"from,omitempty"`
	Data    json.RawMessage      `json:"data,omitempty"`
	Client  string               `json:"client,omitempty"`
	User    string               `json:"user,omitempty"`
	Clients *[]client.ClientInfo `json:"clients,omitempty"` // presence: present even when empty
}

// newJSONLines returns an encoder of one JSON value per line that leaves
// < > & as they are, as the hub sent them.
func newJSONLines(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// subPrinter writes lines from every subscription's goroutine, one at a
// time, and counts messages towards --count.
type subPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	err    error // the first write error; guarded by mu
	n      int   // messages printed; guarded by mu
	count  int
	enough chan struct{} // closed at --count messages, or on a write error
}

func (p *subPrinter) print(l subLine, isMessage bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil || (p.count > 0 && p.n >= p.count) {
		return
	}
	if err := newJSONLines(p.w).Encode(l); err != nil {
		p.err = err
		close(p.enough)
		return
	}
	if isMessage {
		p.n++
		if p.n == p.count {
			close(p.enough)
		}
	}
}

func runSub(ctx context.Context, opts *subOptions) error {
	p := &subPrinter{w: opts.Stdout, count: opts.Count, enough: make(chan struct{})}
	warn := func(format string, args ...any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintf(opts.Stderr, "netkit sub: "+format+"\n", args...)
	}
	c, err := opts.Conn.dial(ctx, true,
		client.OnDisconnect(func(err error) {
			if de := (*client.DisconnectError)(nil); !errors.As(err, &de) || !de.Final {
				warn("connection lost (%v); reconnecting", err)
			}
		}))
	if err != nil {
		return err
	}
	defer c.Close()
	for _, ch := range opts.Channels {
		if err := subscribeAndPrint(ctx, c, ch, opts, p, warn); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return nil // Ctrl-C
	case <-p.enough:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-c.Done():
		return fmt.Errorf("stopped: %w", c.Err())
	}
}

// subscribeAndPrint subscribes to channel with handlers that print.
func subscribeAndPrint(ctx context.Context, c *client.Client, channel string, opts *subOptions, p *subPrinter, warn func(string, ...any)) error {
	sopts := []client.SubscribeOption{
		client.OnMessage(func(m client.Message) {
			p.print(subLine{Push: "message", Channel: m.Channel, Offset: &m.Offset, Epoch: m.Epoch, From: &m.From, Data: m.Data}, true)
		}),
		client.OnSubscribed(func(s client.Subscribed) {
			if (s.Resubscribe || opts.Since != nil) && !s.Recovered {
				warn("subscribed to %s at offset %d of epoch %s, but the hub could not confirm that no message was missed", channel, s.Offset, s.Epoch)
			}
		}),
	}
	if opts.Events {
		sopts = append(sopts, client.OnJoinLeave(func(jl client.JoinLeave) {
			push := "leave"
			if jl.Join {
				push = "join"
			}
			p.print(subLine{Push: push, Channel: jl.Channel, Client: jl.Client, User: jl.User}, false)
		}))
	}
	if opts.Since != nil {
		sopts = append(sopts, client.Since(*opts.Since))
	}
	if opts.Last > 0 {
		sopts = append(sopts, client.Last(opts.Last))
	}
	sctx, cancel := context.WithTimeout(ctx, opts.Conn.Timeout)
	defer cancel()
	if _, err := c.Subscribe(sctx, channel, sopts...); err != nil {
		return err
	}
	if opts.Presence {
		clients, err := c.Presence(sctx, channel)
		if err != nil {
			return err
		}
		if clients == nil {
			clients = []client.ClientInfo{}
		}
		p.print(subLine{Push: "presence", Channel: channel, Clients: &clients}, false)
	}
	return nil
}

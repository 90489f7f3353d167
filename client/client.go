// Package client is the Go client of the netkit hub (protocol v1,
// docs/protocol.md): subscribe to channels, publish, send direct
// messages, and ask for presence and history over one WebSocket that
// reconnects by itself.
//
// A subscription remembers the offset and epoch of the last message it
// delivered. After a reconnect it subscribes again with "since" that
// position; a hub with history then pushes the missed messages first and
// answers recovered:true. The subscription reports recovered true or false
// to its OnSubscribed function (false: messages may be missing, for
// example after a hub restart, which starts a new epoch) and never
// delivers an offset twice.
//
// The client stops reconnecting when the hub says it is pointless: an
// expired token (disconnect "token_expired"), a refused token (HTTP 401 at
// connect) or a "policy" disconnect (an operator's kick). Done and Err
// tell why it stopped.
//
// Everything that waits takes a context; a Client is safe for concurrent
// use, and Close leaves no goroutine behind.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netkit/netkit/internal/protocol"
)

// Client is a connection to the hub that reconnects by itself. Create it
// with Dial and end it with Close.
type Client struct {
	url  string
	opts options
	log  *slog.Logger
	ids  atomic.Int64

	mu        sync.Mutex
	cn        *conn                    // current connection; nil while reconnecting (guarded by mu)
	connected chan struct{}            // closed when cn is set (guarded by mu)
	subs      map[string]*Subscription // guarded by mu
	token     string                   // guarded by mu
	welcome   protocol.ServerObject    // of the current connection (guarded by mu)
	err       error                    // why the client stopped (guarded by mu)
	stopped   bool                     // no new subscription may start (guarded by mu)

	cancel context.CancelFunc // ends run; called by Close
	stop   <-chan struct{}    // closed by Close
	done   chan struct{}      // closed when run has returned and every goroutine ended
	subWG  sync.WaitGroup
}

// Dial connects to the hub at rawURL (ws://HOST:PORT/ws or wss://...;
// http and https are taken for ws and wss) and returns a client whose
// connection is open. The first connection is not retried: a bad URL, a
// refused connection or a refused token fail here, at once. Later
// connection losses are retried by the reconnect policy.
func Dial(ctx context.Context, rawURL string, opts ...Option) (*Client, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		url:       u,
		opts:      defaultOptions(),
		connected: make(chan struct{}),
		subs:      make(map[string]*Subscription),
		done:      make(chan struct{}),
	}
	for _, o := range opts {
		o(&c.opts)
	}
	c.log = c.opts.log
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("url", u)
	c.token = c.opts.token
	cn, err := dialConn(ctx, &c.opts, c.url, c.token)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel, c.stop = cancel, runCtx.Done()
	c.setConn(cn)
	go c.run(runCtx, cn)
	return c, nil
}

func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err == nil {
		switch u.Scheme {
		case "http":
			u.Scheme = "ws"
		case "https":
			u.Scheme = "wss"
		}
	}
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", fmt.Errorf("%w %q: want ws://HOST:PORT/PATH or wss://HOST:PORT/PATH", ErrBadURL, raw)
	}
	return u.String(), nil
}

// setConn starts cn and makes it the current connection.
func (c *Client) setConn(cn *conn) {
	c.startConn(cn)
	c.publishConn(cn)
}

func (c *Client) startConn(cn *conn) {
	cn.start(c.opts.readTimeout, func(o protocol.ServerObject) { c.handlePush(cn, o) })
}

// publishConn makes cn the connection calls use.
func (c *Client) publishConn(cn *conn) {
	c.mu.Lock()
	c.cn = cn
	c.welcome = cn.welcome
	close(c.connected)
	c.mu.Unlock()
}

// Close ends the connection and every subscription, and returns when all
// of the client's goroutines have, which includes waiting for handlers
// that are running. It must not be called from a handler of the client.
// Later calls return nil at once.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Done is closed when the client has stopped: after Close, after a final
// disconnect, or when the reconnect policy gave up.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped: nil after Close, a *DisconnectError
// with Final set, an *Error (a token refused at reconnect) or an error
// wrapping ErrGaveUp. It returns nil while the client runs.
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// User returns the user id the hub gave the current connection (from its
// welcome push). An anonymous client gets a new one on every connection;
// with a token it is the token's subject.
func (c *Client) User() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome.User
}

// ClientID returns the hub's id of the current connection.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome.Client
}

// current returns the open connection, waiting while the client
// reconnects.
func (c *Client) current(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, wait := c.cn, c.connected
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-wait:
		case <-c.done:
			if err := c.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrClosed, err)
			}
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// do runs one command on the current connection, waiting for a connection
// while the client reconnects. A command in flight when its connection
// drops fails with ErrConnectionLost; it is not resent, since the hub may
// have carried it out.
func (c *Client) do(ctx context.Context, cmd protocol.ClientCommand) (protocol.ServerObject, error) {
	select {
	case <-c.stop:
		return protocol.ServerObject{}, ErrClosed
	default:
	}
	for {
		cn, err := c.current(ctx)
		if err != nil {
			return protocol.ServerObject{}, err
		}
		o, err := cn.do(ctx, c.ids.Add(1), cmd, nil)
		if !errors.Is(err, errNotSent) {
			return o, err
		}
		c.lost(cn)
	}
}

// Publish publishes data to channel and returns the message's offset.
// data is marshalled to JSON; a json.RawMessage or []byte holding JSON is
// sent as it is.
func (c *Client) Publish(ctx context.Context, channel string, data any) (uint64, error) {
	raw, err := marshalData(data)
	if err != nil {
		return 0, fmt.Errorf("client: publish to %s: %w", channel, err)
	}
	o, err := c.do(ctx, protocol.ClientCommand{Op: protocol.OpPublish, Channel: channel, Data: raw})
	if err != nil {
		return 0, fmt.Errorf("client: publish to %s: %w", channel, err)
	}
	var r protocol.PublishResult
	if err := json.Unmarshal(o.Result, &r); err != nil {
		return 0, fmt.Errorf("client: publish to %s: bad reply: %w", channel, err)
	}
	return r.Offset, nil
}

// Send sends data as a direct message to every connection of user and
// returns how many connections it reached (0 is not an error).
func (c *Client) Send(ctx context.Context, user string, data any) (int, error) {
	raw, err := marshalData(data)
	if err != nil {
		return 0, fmt.Errorf("client: send to %s: %w", user, err)
	}
	o, err := c.do(ctx, protocol.ClientCommand{Op: protocol.OpSend, To: user, Data: raw})
	if err != nil {
		return 0, fmt.Errorf("client: send to %s: %w", user, err)
	}
	var r protocol.SendResult
	if err := json.Unmarshal(o.Result, &r); err != nil {
		return 0, fmt.Errorf("client: send to %s: bad reply: %w", user, err)
	}
	return r.Delivered, nil
}

// ClientInfo names one connection and its user.
type ClientInfo struct {
	Client string `json:"client"`
	User   string `json:"user"`
}

// Presence lists the connections subscribed to channel, sorted by client
// id.
func (c *Client) Presence(ctx context.Context, channel string) ([]ClientInfo, error) {
	o, err := c.do(ctx, protocol.ClientCommand{Op: protocol.OpPresence, Channel: channel})
	if err != nil {
		return nil, fmt.Errorf("client: presence of %s: %w", channel, err)
	}
	var r protocol.PresenceResult
	if err := json.Unmarshal(o.Result, &r); err != nil {
		return nil, fmt.Errorf("client: presence of %s: bad reply: %w", channel, err)
	}
	out := make([]ClientInfo, len(r.Clients))
	for i, ci := range r.Clients {
		out[i] = ClientInfo(ci)
	}
	return out, nil
}

// Position is a place in a channel's sequence of messages.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// HistoryOptions selects messages of History. The zero value asks for
// everything the hub keeps.
type HistoryOptions struct {
	Limit int       // at most this many messages; 0: all
	Since *Position // only messages after this position (paging forward)
}

// HistoryResult is a channel's position and the messages History
// returned, oldest first.
type HistoryResult struct {
	Position
	Messages []Message
}

// History returns the channel's recent messages. Without Since it returns
// the newest Limit messages; with Since, the oldest Limit after it.
func (c *Client) History(ctx context.Context, channel string, ho HistoryOptions) (HistoryResult, error) {
	cmd := protocol.ClientCommand{Op: opHistory, Channel: channel, Limit: ho.Limit}
	if ho.Since != nil {
		cmd.Since = &protocol.StreamPos{Offset: ho.Since.Offset, Epoch: ho.Since.Epoch}
	}
	o, err := c.do(ctx, cmd)
	if err != nil {
		return HistoryResult{}, fmt.Errorf("client: history of %s: %w", channel, err)
	}
	var r protocol.HistoryResult
	if err := json.Unmarshal(o.Result, &r); err != nil {
		return HistoryResult{}, fmt.Errorf("client: history of %s: bad reply: %w", channel, err)
	}
	res := HistoryResult{Position: Position{Offset: r.Offset, Epoch: r.Epoch}}
	for _, raw := range r.Messages {
		m, err := protocol.DecodeServerObject(raw)
		if err != nil {
			return HistoryResult{}, fmt.Errorf("client: history of %s: %w", channel, err)
		}
		res.Messages = append(res.Messages, Message{Channel: channel, Offset: m.Offset, Epoch: r.Epoch, From: m.From, Data: m.Data})
	}
	return res, nil
}

// Ops of the hub's history and auth (issue 14). They are spelled here
// rather than in internal/protocol, which gains them with the hub.
const (
	opHistory = "history"
	opRefresh = "refresh"
)

// Ping makes a round trip to the hub.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.do(ctx, protocol.ClientCommand{Op: protocol.OpPing}); err != nil {
		return fmt.Errorf("client: ping: %w", err)
	}
	return nil
}

// Refresh renews the connection's credentials with a new token (the hub's
// refresh command) and uses it for later reconnects. The new token must
// name the same user.
func (c *Client) Refresh(ctx context.Context, token string) error {
	if _, err := c.do(ctx, protocol.ClientCommand{Op: opRefresh, Token: token}); err != nil {
		return fmt.Errorf("client: refresh: %w", err)
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return nil
}

// Direct is a direct message to this client's user.
type Direct struct {
	From string          // the sender's user id; "" from the HTTP API
	Data json.RawMessage // the JSON value sent
}

func marshalData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, fmt.Errorf("data is not valid JSON")
		}
		return d, nil
	case []byte:
		if !json.Valid(d) {
			return nil, fmt.Errorf("data is not valid JSON")
		}
		return d, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// handlePush routes a push from the reader goroutine.
func (c *Client) handlePush(cn *conn, o protocol.ServerObject) {
	switch o.Push {
	case protocol.PushMessage, protocol.PushJoin, protocol.PushLeave:
		c.mu.Lock()
		s := c.subs[o.Channel]
		c.mu.Unlock()
		if s != nil {
			s.push(cn, o)
		}
	case protocol.PushDirect:
		if c.opts.onDirect != nil {
			c.opts.onDirect(Direct{From: o.From, Data: o.Data})
		}
	case protocol.PushDisconnect:
		c.log.Info("hub disconnects", "code", o.Code, "reason", o.Reason)
	}
}

// sleep waits d, or returns false when the client is closing.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/auth"
)

// Command ids the generator uses on every connection. Publishes are
// numbered from firstPublishID by sequence number.
const (
	idHello        = 1
	idSubscribe    = 2
	firstPublishID = 3
)

// dialer opens WebSocket connections, each from the next source address.
type dialer struct {
	ws      websocket.Dialer
	url     string
	dialect Dialect
	timeout time.Duration  // for connecting, the handshake and subscribing
	secret  []byte         // signs a token for each connection, if set
	users   *atomic.Uint64 // numbers the users of signed tokens; shared by copies
}

// newDialer returns a dialer for cfg. rcvBuf, if > 0, is the SO_RCVBUF
// its sockets ask for before they connect (the kernel may double it).
func newDialer(cfg *Config, rcvBuf int) *dialer {
	var next atomic.Uint64
	src := cfg.SourceIPs
	d := &dialer{url: cfg.URL, dialect: cfg.Dialect, timeout: cfg.Timeout, secret: []byte(cfg.JWTSecret), users: new(atomic.Uint64)}
	d.ws = websocket.Dialer{
		HandshakeTimeout: cfg.Timeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  1024,
		// Idle connections hold no write buffer.
		WriteBufferPool: &sync.Pool{},
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			if len(src) > 0 {
				ip := src[(next.Add(1)-1)%uint64(len(src))]
				nd.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
			}
			if rcvBuf > 0 {
				nd.Control = func(_, _ string, rc syscall.RawConn) error {
					var serr error
					if err := rc.Control(func(fd uintptr) { serr = setRcvBuf(fd, rcvBuf) }); err != nil {
						return err
					}
					return serr
				}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	return d
}

// tokenTTL is how long the tokens the generator signs are valid: longer
// than any run.
const tokenTTL = 24 * time.Hour

// signToken returns an HS256 token for user "bench-N" (N counts the tokens
// signed) if the dialer has a secret, else "".
func (d *dialer) signToken() (string, error) {
	if len(d.secret) == 0 {
		return "", nil
	}
	user := "bench-" + strconv.FormatUint(d.users.Add(1), 10)
	return auth.Sign(d.secret, auth.Claims{User: user}, tokenTTL)
}

// dial opens a connection, with a token of its own if the dialer has a
// secret, and waits until the server has accepted it.
func (d *dialer) dial(ctx context.Context) (*conn, error) {
	token, err := d.signToken()
	if err != nil {
		return nil, err
	}
	return d.dialToken(ctx, token)
}

// dialToken opens a connection that presents token ("" for none) and waits
// until the server has accepted it.
func (d *dialer) dialToken(ctx context.Context, token string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	u, err := d.dialect.URL(d.url, token)
	if err != nil {
		return nil, err
	}
	ws, _, err := d.ws.DialContext(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	c := &conn{ws: ws, dialect: d.dialect, rbuf: make([]byte, 0, 4096)}
	stop := context.AfterFunc(ctx, func() { ws.SetReadDeadline(time.Now()) })
	defer stop()
	if err := c.handshake(token); err != nil {
		ws.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %v)", ctx.Err(), d.timeout)
		}
		return nil, err
	}
	return c, nil
}

// dialSubscribed opens a connection and subscribes it to channel.
func (d *dialer) dialSubscribed(ctx context.Context, channel string) (*conn, error) {
	c, _, err := d.dialSubscribe(ctx, d.dialect.Subscribe(nil, idSubscribe, channel))
	return c, err
}

// dialSubscribe opens a connection, sends it cmd, a subscribe command with
// id idSubscribe, and returns the reply's result.
func (d *dialer) dialSubscribe(ctx context.Context, cmd []byte) (*conn, SubscribeResult, error) {
	c, err := d.dial(ctx)
	if err != nil {
		return nil, SubscribeResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.ws.SetReadDeadline(time.Now()) })
	defer stop()
	res, err := c.subscribe(cmd)
	if err != nil {
		c.ws.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("subscribe: %w (after %v)", ctx.Err(), d.timeout)
		}
		return nil, res, err
	}
	return c, res, nil
}

// conn is one WebSocket connection to the server. Its reader (one
// goroutine at a time) calls readEvents; any goroutine may write.
type conn struct {
	ws      *websocket.Conn
	dialect Dialect
	rbuf    []byte  // the last frame; owned by the reader
	events  []Event // the last frame's events; owned by the reader
	pong    []byte  // owned by the reader
	client  string  // the server's id for this connection, if the dialect says
	wmu     sync.Mutex
}

// errDisconnected is a disconnect push from the server.
var errDisconnected = errors.New("disconnected by the server")

func (c *conn) handshake(token string) error {
	if hello := c.dialect.Hello(nil, idHello, token); len(hello) > 0 {
		if err := c.write(hello); err != nil {
			return err
		}
	}
	for {
		evs, err := c.readEvents()
		if err != nil {
			return err
		}
		for _, ev := range evs {
			switch ev.Kind {
			case EventReady:
				c.client = string(ev.Client)
				return nil
			case EventError, EventDisconnect:
				return fmt.Errorf("connect: %s", ev.Text)
			}
		}
	}
}

// subscribe sends cmd, a subscribe with id idSubscribe, and reads up to
// its reply. Publications that arrive before the reply are skipped; those
// that share its frame after it are counted in the result's Publications
// (messages a server recovers come right after the reply).
func (c *conn) subscribe(cmd []byte) (SubscribeResult, error) {
	if err := c.write(cmd); err != nil {
		return SubscribeResult{}, fmt.Errorf("subscribe: %w", err)
	}
	for {
		evs, err := c.readEvents()
		if err != nil {
			return SubscribeResult{}, fmt.Errorf("subscribe: %w", err)
		}
		for i, ev := range evs {
			switch {
			case ev.Kind == EventReply && ev.ID == idSubscribe:
				res, err := c.dialect.SubscribeResult(ev.Text)
				if err != nil {
					return res, err
				}
				for _, after := range evs[i+1:] {
					if after.Kind == EventPublication {
						res.Publications++
					}
				}
				return res, nil
			case ev.Kind == EventError && ev.ID == idSubscribe:
				return SubscribeResult{}, fmt.Errorf("subscribe: %s", ev.Text)
			case ev.Kind == EventDisconnect:
				return SubscribeResult{}, fmt.Errorf("subscribe: %w: %s", errDisconnected, ev.Text)
			}
		}
	}
}

// write sends b as one text frame.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// holdOpen reads until the connection ends: it answers pings and notices a
// server that hangs up, counting the end in dropped unless closing is set
// (the scenario closes its connections itself).
func (c *conn) holdOpen(closing *atomic.Bool, dropped *atomic.Int64) {
	for {
		if _, err := c.readEvents(); err != nil {
			if !closing.Load() {
				dropped.Add(1)
			}
			return
		}
	}
}

// readEvents reads one frame and returns its events, which stay valid until
// the next call. It answers pings itself (they are returned too).
func (c *conn) readEvents() ([]Event, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	buf := c.rbuf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	c.rbuf = buf
	c.events = c.dialect.AppendEvents(c.events[:0], buf)
	for _, ev := range c.events {
		if ev.Kind == EventPing {
			c.pong = c.dialect.Pong(c.pong[:0])
			if err := c.write(c.pong); err != nil {
				return nil, err
			}
		}
	}
	return c.events, nil
}

// close sends a close frame (waiting at most 250ms) and closes the
// socket, which ends the reader's readEvents with an error.
func (c *conn) close() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(250*time.Millisecond))
	c.ws.Close()
}

// dialMany opens n connections, at most concurrency at a time, calling open
// for each index. Each success is passed to opened (which starts its reader)
// in the dialing goroutine; each failure is counted. It returns when all
// have been tried or ctx ends.
func dialMany(ctx context.Context, n, concurrency int, open func(ctx context.Context, i int) error, st *connectStats) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := open(ctx, i); err != nil {
				if ctx.Err() == nil {
					st.fail(err)
				}
				return
			}
			st.opened.Add(1)
		})
	}
	wg.Wait()
}

// connectStats counts connection attempts; safe for concurrent use.
type connectStats struct {
	opened atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	first  string // the first error; guarded by mu
}

func (s *connectStats) fail(err error) {
	if s.failed.Add(1) == 1 {
		s.mu.Lock()
		s.first = err.Error()
		s.mu.Unlock()
	}
}

func (s *connectStats) firstError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// ParseSourceIPs parses a list of source addresses for --source-ips:
// comma-separated addresses and ranges, "127.0.0.2,127.0.0.3",
// "127.0.0.2-127.0.0.9" or "127.0.0.2-9" (the last byte).
func ParseSourceIPs(s string) ([]netip.Addr, error) {
	var ips []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		from, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("source address %q: %w", part, err)
		}
		if !isRange {
			ips = append(ips, from)
			continue
		}
		to, err := parseRangeEnd(from, hi)
		if err != nil {
			return nil, fmt.Errorf("source range %q: %w", part, err)
		}
		for a := from; a.Compare(to) <= 0; a = a.Next() {
			ips = append(ips, a)
			if len(ips) > 1<<16 {
				return nil, fmt.Errorf("source range %q: more than 65536 addresses", part)
			}
		}
	}
	return ips, nil
}

// parseRangeEnd parses the end of a range starting at from: a whole address
// of the same family, or for IPv4 just its last byte.
func parseRangeEnd(from netip.Addr, s string) (netip.Addr, error) {
	to, err := netip.ParseAddr(s)
	if err != nil && from.Is4() {
		last, rest, ok := parseUint([]byte(s))
		if !ok || len(rest) > 0 || last > 255 {
			return netip.Addr{}, fmt.Errorf("want an address or a last byte 0-255 after '-', got %q", s)
		}
		b := from.As4()
		b[3] = byte(last)
		to, err = netip.AddrFrom4(b), nil
	}
	if err != nil {
		return netip.Addr{}, err
	}
	if to.BitLen() != from.BitLen() || to.Less(from) {
		return netip.Addr{}, fmt.Errorf("%v is not after %v", to, from)
	}
	return to, nil
}

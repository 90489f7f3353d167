// Package wsloop is netkit's WebSocket connection layer. It upgrades HTTP
// requests and serves each connection on one of two paths: an event loop
// (epoll on Linux) for raw TCP sockets, where an idle connection costs a
// few hundred bytes and no goroutine, and a goroutine path for everything
// else (TLS, other platforms). Both speak RFC 6455 framing through the same
// reader and writer code, write everything due for a connection in one
// system call, and bound every buffer a peer can grow. The package knows
// nothing of the hub's protocol: it is handed encoded objects and the bytes
// of the disconnect push.
package wsloop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Modes of Config.Mode.
const (
	ModeAuto      = "auto"      // epoll for raw TCP sockets on Linux, goroutine otherwise
	ModeEpoll     = "epoll"     // like auto, but New fails where there is no epoll
	ModeGoroutine = "goroutine" // a reader goroutine per connection and a writer on demand
)

// closeWait bounds the closing handshake: how long a connection waits for
// the peer's close frame (or end of stream) after sending its own.
const closeWait = 2 * time.Second

// Closing is how a connection ends: Push (the hub's disconnect push, sent
// as a last text frame; nil for none), then a close frame with Status and
// Reason (cut to 123 bytes).
type Closing struct {
	Push   []byte
	Status int
	Reason string
}

func (c Closing) equal(o Closing) bool {
	return c.Status == o.Status && c.Reason == o.Reason && bytes.Equal(c.Push, o.Push)
}

// Reason names a close the layer decides by itself.
type Reason int

// Reasons for closes the layer decides.
const (
	ReasonTooLarge     Reason = iota + 1 // a message over MaxMessage: close at once (1009)
	ReasonBadUTF8                        // a text message or close reason that is not UTF-8 (1007)
	ReasonProtocol                       // a framing violation, invalid close code (1002)
	ReasonSlowConsumer                   // queue over its hard limit, or over its soft limit for WriteTimeout
)

var reasonNames = map[Reason]string{
	ReasonTooLarge:     "too large",
	ReasonBadUTF8:      "bad UTF-8",
	ReasonProtocol:     "protocol",
	ReasonSlowConsumer: "slow consumer",
}

// String names r for logs.
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Config sets a Layer's paths and limits; the hub fills it from its own
// Config.
type Config struct {
	Mode          string        // "auto" (or ""), "epoll" or "goroutine"; see the Mode constants
	Pollers       int           // event-loop goroutines; 0 means GOMAXPROCS
	MaxMessage    int64         // largest inbound message; a larger one closes with ReasonTooLarge
	QueueMessages int           // soft limit per connection, in objects; over it Enqueue reports Congested
	QueueBytes    int64         // soft limit per connection, in bytes; the hard limits are twice the soft ones
	TotalBytes    int64         // soft limit on bytes queued over all connections; 0 = none; over it Enqueue reports Congested
	PingInterval  time.Duration // how often each connection is pinged
	PongTimeout   time.Duration // how long after a ping a silent connection is dropped
	WriteTimeout  time.Duration // how long a connection may stay over its soft limit, or leave written bytes untaken
	WriteDelay    time.Duration // 0 = write at once; else gather what is due for up to this long
	// Closings says what to send for each Reason; every Reason needs one.
	Closings map[Reason]Closing
	// CheckOrigin vets the Origin of an upgrade request; nil accepts all.
	CheckOrigin func(r *http.Request) bool
	// UpgradeError writes the HTTP error reply of a failed upgrade (reason
	// is a *HandshakeError, or the error of a failed hijack); nil answers
	// with reason as plain text.
	UpgradeError func(w http.ResponseWriter, r *http.Request, status int, reason error)
	Log          *slog.Logger // nil discards
}

func (c *Config) check() error {
	var errs []error
	switch c.Mode {
	case "", ModeAuto, ModeGoroutine:
	case ModeEpoll:
		if !epollSupported {
			errs = append(errs, errors.New("wsloop: mode epoll needs Linux; use auto or goroutine"))
		}
	default:
		errs = append(errs, fmt.Errorf("wsloop: mode %q: want auto, epoll or goroutine", c.Mode))
	}
	if c.MaxMessage <= 0 || c.QueueMessages <= 0 || c.QueueBytes <= 0 || c.PingInterval <= 0 || c.PongTimeout <= 0 || c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("wsloop: MaxMessage, QueueMessages, QueueBytes, PingInterval, PongTimeout and WriteTimeout must be positive"))
	}
	if c.TotalBytes < 0 || c.WriteDelay < 0 || c.Pollers < 0 {
		errs = append(errs, errors.New("wsloop: TotalBytes, WriteDelay and Pollers must not be negative"))
	}
	for r := ReasonTooLarge; r <= ReasonSlowConsumer; r++ {
		cl, ok := c.Closings[r]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("wsloop: Closings has no entry for %v", r))
		case !validCloseCode(cl.Status):
			errs = append(errs, fmt.Errorf("wsloop: Closings[%v]: status %d may not be sent", r, cl.Status))
		}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Options are per-connection choices made at Upgrade.
type Options struct {
	// Joined sends several objects due at once in one text frame, joined
	// by "\n" (opt-in, the old behaviour); by default each object is a
	// frame of its own.
	Joined bool
}

// Pressure is what Enqueue did with an object.
type Pressure int

// Pressures that Enqueue reports.
const (
	// Queued: below the soft limits.
	Queued Pressure = iota
	// Congested: queued, but the connection (or TotalBytes) is over its
	// soft limit; OnDrain follows once it is back under.
	Congested
	// Dropped: not queued (hard limit hit, which closes with
	// ReasonSlowConsumer, or the connection is closing or closed).
	Dropped
)

// Conn is one upgraded connection, on either path.
type Conn interface {
	// Start begins serving; h gets messages, OnDrain, and OnClose exactly
	// once. Call it once, after Upgrade; if the Layer has stopped, h's
	// OnClose runs before Start returns.
	Start(h Handler)
	// Enqueue queues one encoded server object; it never blocks. b is
	// shared and never modified.
	Enqueue(b []byte) Pressure
	// Close ends the connection; the first call wins: queued objects (not
	// for the slow-consumer Closing), c.Push, a close frame, then the
	// closing handshake (a bounded wait for the peer's close frame).
	Close(c Closing)
	// Abort drops the connection at once.
	Abort()
	// Closed returns the Closing the connection was closed with; false if
	// it is open, the peer went away, or it was aborted.
	Closed() (Closing, bool)
	// SetReadPaused may be called from any goroutine: while paused no
	// further message is handed to OnMessage and the read (pong) deadline
	// does not run. Frames already read are kept for after the pause.
	SetReadPaused(paused bool)
	// QueuePeak is the most server objects the connection's outbound
	// queue has held at once since it was upgraded.
	QueuePeak() int
	// RemoteAddr is the peer's address as the HTTP request gave it.
	RemoteAddr() string
	// Path is "epoll" or "goroutine", for logs and tests.
	Path() string
}

// Handler gets a connection's events. On the epoll path they run on a
// poller goroutine; on the goroutine path OnMessage runs on the reader
// goroutine and OnDrain on the writer, so they may run concurrently.
// Neither may block.
type Handler interface {
	// OnMessage gets one whole message; a text message is valid UTF-8.
	// msg is valid only during the call.
	OnMessage(msg []byte, binary bool)
	// OnDrain follows an Enqueue that reported Congested, once the queue
	// is back under its soft limits and its bytes have left for the
	// socket.
	OnDrain()
	// OnClose is called once, after the socket is closed.
	OnClose()
}

// Layer upgrades connections and serves them until Run's context ends.
type Layer struct {
	cfg     Config
	total   *total // nil without TotalBytes
	ep      *epoll // nil: every connection takes the goroutine path
	running atomic.Bool

	mu      sync.Mutex
	conns   map[*goConn]struct{} // goroutine-path connections; guarded by mu
	stopped bool                 // Run has ended; guarded by mu
	wg      sync.WaitGroup       // one count per goroutine-path connection
}

// New validates cfg and returns a Layer; Run serves its connections.
func New(cfg Config) (*Layer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Pollers == 0 {
		cfg.Pollers = runtime.GOMAXPROCS(0)
	}
	l := &Layer{cfg: cfg, conns: make(map[*goConn]struct{})}
	if cfg.TotalBytes > 0 {
		l.total = &total{soft: cfg.TotalBytes}
	}
	if epollSupported && cfg.Mode != ModeGoroutine {
		ep, err := newEpoll(l)
		if err != nil {
			return nil, err
		}
		l.ep = ep
	}
	return l, nil
}

// Run serves connections until ctx ends, then closes every connection
// still open (each gets OnClose) and returns. Call it once.
func (l *Layer) Run(ctx context.Context) error {
	if l.running.Swap(true) {
		return errors.New("wsloop: Run called twice")
	}
	var err error
	if l.ep != nil {
		err = l.ep.run(ctx)
	} else {
		<-ctx.Done()
	}
	l.mu.Lock()
	l.stopped = true
	conns := make([]*goConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Abort()
	}
	l.wg.Wait()
	return err
}

// Upgrade completes the WebSocket handshake and returns the connection:
// Hijack, then Accept with no greeting. A returned Conn has completed the
// handshake. On error it has already answered the request or closed the
// connection.
func (l *Layer) Upgrade(w http.ResponseWriter, r *http.Request, opts Options) (Conn, error) {
	p, err := l.Hijack(w, r, opts)
	if err != nil {
		return nil, err
	}
	if err := p.Accept(nil); err != nil {
		return nil, err
	}
	return p.Conn(), nil
}

// Pending is a connection whose opening handshake the layer has vetted and
// taken over, not yet answered: Accept answers it. Its Conn may be
// enqueued to and closed at once; what is queued, and the close, go out
// after the 101 response.
type Pending struct {
	l      *Layer
	nc     net.Conn
	tc     *net.TCPConn // the epoll path: the socket to hand to the loop
	key    string
	joined bool
	conn   Conn
	ep     *epollConn // the epoll path's Conn, nil on the goroutine path
	done   bool
}

// Hijack vets r as an opening handshake (RFC 6455 section 4.2; refusals
// are HandshakeErrors, answered through Config.UpgradeError) and takes
// over its connection. The connection takes the epoll path for a raw TCP
// socket when Mode allows, and the goroutine path otherwise (TLS, or no
// file descriptor). On error it has already answered the request or closed
// the connection.
func (l *Layer) Hijack(w http.ResponseWriter, r *http.Request, opts Options) (*Pending, error) {
	key, herr := checkHandshake(r, l.cfg.CheckOrigin)
	hj, ok := w.(http.Hijacker)
	if herr == nil && !ok {
		herr = errNoHijack
	}
	if herr != nil {
		l.refuse(w, r, herr)
		return nil, fmt.Errorf("wsloop: upgrade: %w", herr)
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		l.refuse(w, r, &HandshakeError{Status: http.StatusInternalServerError, Reason: err.Error()})
		return nil, fmt.Errorf("wsloop: upgrade: %w", err)
	}
	if brw.Reader.Buffered() > 0 {
		nc.Close()
		return nil, errors.New("wsloop: upgrade: client sent data before handshake is complete")
	}
	p := &Pending{l: l, nc: nc, key: key, joined: opts.Joined}
	if tc, ok := nc.(*net.TCPConn); ok && l.ep != nil && r.TLS == nil {
		p.tc = tc
		p.ep = l.ep.newConn(r.RemoteAddr, opts)
		p.conn = p.ep
	} else {
		p.conn = newGoConn(l, nc, r.RemoteAddr, opts)
	}
	return p, nil
}

// Conn returns the connection; call its Start after Accept.
func (p *Pending) Conn() Conn { return p.conn }

// Accept writes the 101 response and greeting, encoded server objects
// framed like queued ones (the hub's welcome), in one write(2), and hands
// the socket to its path. Keep greeting small: the write blocks until the
// socket has taken it. If the write fails, the connection is dropped (its
// Start calls OnClose at once) and Accept returns the error. Call it once,
// before Start.
func (p *Pending) Accept(greeting [][]byte) error {
	if p.done {
		return errors.New("wsloop: Accept called twice")
	}
	p.done = true
	bp := handshakeBuffers.Get().(*[]byte)
	buf := appendFrames(appendAccept((*bp)[:0], p.key), greeting, p.joined)
	_, err := p.nc.Write(buf)
	if cap(buf) <= 4<<10 {
		*bp = buf[:0]
		handshakeBuffers.Put(bp)
	}
	if err == nil && p.ep != nil {
		err = p.l.ep.attach(p.ep, p.tc)
	}
	if err != nil {
		p.conn.Abort()
		p.nc.Close()
		return fmt.Errorf("wsloop: upgrade: %w", err)
	}
	return nil
}

// refuse answers a refused handshake: Config.UpgradeError, or a plain
// text reply that gives the reason. A version refusal names the version
// this side speaks (RFC 6455 section 4.4).
func (l *Layer) refuse(w http.ResponseWriter, r *http.Request, e *HandshakeError) {
	if e.Status == http.StatusUpgradeRequired {
		w.Header().Set("Sec-WebSocket-Version", "13")
	}
	if l.cfg.UpgradeError != nil {
		l.cfg.UpgradeError(w, r, e.Status, e)
		return
	}
	http.Error(w, e.Reason, e.Status)
}

// track adds a goroutine-path connection to the set Run closes at its end;
// false means Run has ended.
func (l *Layer) track(c *goConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *Layer) untrack(c *goConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

func (l *Layer) newOutbox() *Outbox {
	o := NewOutbox(l.cfg.QueueMessages, l.cfg.QueueBytes)
	o.total = l.total
	return o
}

// closeRequest is how a connection was asked to end; the first one wins.
type closeRequest struct {
	closing   Closing
	apply     bool // send closing; false: drop (Abort, or the peer went away)
	dropQueue bool // do not send what is queued (slow consumer)
	drain     bool // a read violation: stop decoding, send closing, then discard until end of stream
}

var abortRequest = &closeRequest{}

// request builds the close request for a Closing given to Close.
func (l *Layer) request(c Closing) *closeRequest {
	return &closeRequest{closing: c, apply: true, dropQueue: c.equal(l.cfg.Closings[ReasonSlowConsumer])}
}

// reasonRequest builds the close request for a close the layer decides.
func (l *Layer) reasonRequest(r Reason) *closeRequest {
	return &closeRequest{closing: l.cfg.Closings[r], apply: true, dropQueue: r == ReasonSlowConsumer, drain: r != ReasonSlowConsumer}
}

// overTooLong reports whether o has been over its soft limits for longer
// than WriteTimeout.
func (l *Layer) overTooLong(o *Outbox, now int64) bool {
	since := o.OverSince()
	return since != 0 && now-since > int64(l.cfg.WriteTimeout)
}

// appendFrames appends objects as server text frames: one frame each, or
// one frame of "\n"-joined objects.
func appendFrames(dst []byte, objects [][]byte, joined bool) []byte {
	if len(objects) == 0 {
		return dst
	}
	if !joined {
		for _, b := range objects {
			dst = appendHeader(dst, opText, len(b))
			dst = append(dst, b...)
		}
		return dst
	}
	n := len(objects) - 1
	for _, b := range objects {
		n += len(b)
	}
	dst = appendHeader(dst, opText, n)
	for i, b := range objects {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, b...)
	}
	return dst
}

// appendClosing appends what is left to send of a connection closed with
// c: queued objects, the push and the close frame.
func appendClosing(dst []byte, objects [][]byte, joined bool, c Closing) []byte {
	dst = appendFrames(dst, objects, joined)
	if c.Push != nil {
		dst = appendHeader(dst, opText, len(c.Push))
		dst = append(dst, c.Push...)
	}
	return appendClose(dst, c.Status, c.Reason)
}

// appendEcho appends the close frame that answers a peer's close with code
// (0: the peer gave none, and neither do we).
func appendEcho(dst []byte, code int) []byte {
	if code == 0 {
		return appendHeader(dst, opClose, 0)
	}
	return appendClose(dst, code, "")
}

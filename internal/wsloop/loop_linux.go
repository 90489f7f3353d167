//go:build linux

package wsloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/netkit/netkit/internal/protocol"
)

// Supported reports whether this platform has the event loop.
const Supported = true

// closeWait bounds the closing handshake: how long a connection waits for
// the peer's close frame after sending its own.
const closeWait = 2 * time.Second

// sweepEvery is how often a poller checks its connections' timers at most;
// shorter ping settings make it check more often.
const sweepEvery = time.Second

// Loop runs connections on a few poller goroutines.
type Loop struct {
	cfg     Config
	pollers []*poller
	next    atomic.Uint32
	running atomic.Bool
	stopped atomic.Bool
}

// New creates a loop's pollers. Run starts them.
func New(cfg Config) (*Loop, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := cfg.Pollers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	l := &Loop{cfg: cfg}
	for range n {
		p, err := newPoller(l)
		if err != nil {
			l.closePollers()
			return nil, err
		}
		l.pollers = append(l.pollers, p)
	}
	return l, nil
}

func (l *Loop) closePollers() {
	for _, p := range l.pollers {
		unix.Close(p.epfd)
		unix.Close(p.efd)
	}
}

// Run runs the pollers until ctx ends, then closes every connection still
// open (each gets OnClose) and returns.
func (l *Loop) Run(ctx context.Context) error {
	if l.running.Swap(true) {
		return errors.New("wsloop: Run called twice")
	}
	var wg sync.WaitGroup
	errs := make([]error, len(l.pollers))
	for i, p := range l.pollers {
		wg.Go(func() { errs[i] = p.run() })
	}
	stop := context.AfterFunc(ctx, func() {
		l.stopped.Store(true)
		for _, p := range l.pollers {
			p.wake()
		}
	})
	wg.Wait()
	stop()
	l.closePollers()
	return errors.Join(errs...)
}

// Attach takes over nc, a connection that has completed the WebSocket
// handshake and whose buffered reader holds nothing: it keeps a duplicate
// of the socket and closes nc. The connection is served once Start is
// called.
func (l *Loop) Attach(nc net.Conn) (*Conn, error) {
	if l.stopped.Load() {
		nc.Close()
		return nil, errors.New("wsloop: loop stopped")
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("wsloop: %T has no file descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wsloop: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		dupErr = err
	}
	nc.Close()
	if dupErr != nil {
		return nil, fmt.Errorf("wsloop: duplicate socket: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("wsloop: %w", err)
	}
	p := l.pollers[int(l.next.Add(1))%len(l.pollers)]
	return &Conn{p: p, fd: fd, out: NewOutbox(l.cfg.QueueMessages, l.cfg.QueueBytes)}, nil
}

// Conn is one connection on the loop. Enqueue, Close and Abort may be
// called from any goroutine; everything else belongs to its poller.
type Conn struct {
	p   *poller
	fd  int
	h   Handler
	out *Outbox

	closeReq atomic.Pointer[protocol.Disconnect] // the first Close wins
	aborted  atomic.Bool

	// Owned by the poller goroutine.
	registered    bool
	closed        bool
	closing       bool   // our close frame is queued or sent
	in            []byte // bytes of an incomplete frame
	skip          int64  // bytes of a refused frame still to discard
	msg           []byte // payload of a fragmented message being assembled
	msgOp         byte   // its opcode; 0 when no message is being assembled
	ctrl          []byte // pong frames to send
	pending       []byte // bytes the socket did not take yet
	pingDue       bool
	lastRead      int64 // unix nanoseconds
	lastPing      int64
	lastWrite     int64
	pendingSince  int64
	closeDeadline int64
}

// Start registers the connection with its poller; from then on h gets its
// messages and, once, OnClose.
func (c *Conn) Start(h Handler) {
	c.h = h
	p := c.p
	p.mu.Lock()
	p.adds = append(p.adds, c)
	p.mu.Unlock()
	p.wake()
}

// Enqueue queues one encoded server object for writing; see the hub's
// transport interface. It never blocks.
func (c *Conn) Enqueue(b []byte) bool {
	ok, activate, _ := c.out.Push(b)
	if !ok {
		c.Close(protocol.DisconnectSlowConsumer)
		return false
	}
	if activate {
		c.p.schedule(c)
	}
	return true
}

// Close ends the connection with d: queued objects (unless d is a slow
// consumer), the disconnect push and a close frame, then the closing
// handshake. A zero d drops the connection without them.
func (c *Conn) Close(d protocol.Disconnect) {
	if c.closeReq.CompareAndSwap(nil, &d) {
		c.out.Activate()
		c.p.schedule(c)
	}
}

// Abort drops the connection at once, even during a closing handshake.
func (c *Conn) Abort() {
	c.Close(protocol.Disconnect{})
	if !c.aborted.Swap(true) {
		c.p.schedule(c)
	}
}

// Reason returns the disconnect the connection was closed with, if any.
func (c *Conn) Reason() protocol.Disconnect {
	if d := c.closeReq.Load(); d != nil {
		return *d
	}
	return protocol.Disconnect{}
}

func (c *Conn) stopping() bool { return c.closing || c.closeReq.Load() != nil }

// poller is one event-loop goroutine with its epoll instance.
type poller struct {
	loop *Loop
	epfd int
	efd  int // eventfd that wakes the poller
	busy atomic.Bool

	mu    sync.Mutex
	adds  []*Conn // guarded by mu
	dirty []*Conn // connections with something to write; guarded by mu

	// Owned by the poller goroutine.
	conns   map[int]*Conn
	local   []*Conn // more connections to flush in this round
	spare   []*Conn
	rbuf    []byte
	wbuf    []byte
	now     int64
	events  []unix.EpollEvent
	nextRun int64
}

func newPoller(l *Loop) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wsloop: epoll_create1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("wsloop: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, fmt.Errorf("wsloop: epoll_ctl: %w", err)
	}
	return &poller{
		loop:   l,
		epfd:   epfd,
		efd:    efd,
		conns:  make(map[int]*Conn),
		rbuf:   make([]byte, 64<<10),
		events: make([]unix.EpollEvent, 256),
	}, nil
}

var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// wake interrupts the poller's epoll_wait.
func (p *poller) wake() {
	for {
		_, err := unix.Write(p.efd, one)
		if err != unix.EINTR {
			return
		}
	}
}

// schedule puts c on the list of connections to flush, waking the poller
// unless it is running a round (it looks at the list before it sleeps).
func (p *poller) schedule(c *Conn) {
	p.mu.Lock()
	p.dirty = append(p.dirty, c)
	p.mu.Unlock()
	if !p.busy.Load() {
		p.wake()
	}
}

func (p *poller) run() error {
	cfg := &p.loop.cfg
	every := min(sweepEvery, cfg.PingInterval/2, cfg.PongTimeout/2)
	p.now = time.Now().UnixNano()
	p.nextRun = p.now + int64(every)
	timeout := max(int(every/time.Millisecond), 1)
	for {
		n, err := unix.EpollWait(p.epfd, p.events, timeout)
		if err != nil && err != unix.EINTR {
			p.closeAll()
			return fmt.Errorf("wsloop: epoll_wait: %w", err)
		}
		p.busy.Store(true)
		p.now = time.Now().UnixNano()
		for _, ev := range p.events[:max(n, 0)] {
			p.event(int(ev.Fd), ev.Events)
		}
		p.round()
		if p.now >= p.nextRun {
			p.sweep()
			p.nextRun = p.now + int64(every)
			p.round()
		}
		p.busy.Store(false)
		if p.loop.stopped.Load() {
			p.closeAll()
			return nil
		}
		timeout = max(int((p.nextRun-p.now)/int64(time.Millisecond)), 1)
		p.mu.Lock()
		if len(p.dirty) > 0 || len(p.adds) > 0 {
			timeout = 0 // scheduled while we were clearing busy
		}
		p.mu.Unlock()
	}
}

func (p *poller) event(fd int, events uint32) {
	if fd == p.efd {
		var b [8]byte
		unix.Read(p.efd, b[:])
		return
	}
	c := p.conns[fd]
	if c == nil {
		return
	}
	if events&unix.EPOLLOUT != 0 {
		p.writable(c)
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.closed {
		p.readable(c)
	}
}

// round registers new connections and flushes every scheduled one until
// nothing is left.
func (p *poller) round() {
	for {
		p.mu.Lock()
		adds, list := p.adds, p.dirty
		p.adds, p.dirty = nil, p.spare[:0]
		p.mu.Unlock()
		for _, c := range adds {
			p.register(c)
		}
		list = append(list, p.local...)
		clear(p.local)
		p.local = p.local[:0]
		if len(adds) == 0 && len(list) == 0 {
			p.spare = list
			return
		}
		for _, c := range list {
			p.flush(c)
		}
		clear(list)
		p.spare = list[:0]
	}
}

func (p *poller) register(c *Conn) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.loop.cfg.Log.Warn("wsloop: cannot watch connection", "err", err)
		unix.Close(c.fd)
		c.closed = true
		c.h.OnClose()
		return
	}
	p.conns[c.fd] = c
	c.registered = true
	c.lastRead, c.lastPing = p.now, p.now
	p.flush(c)
}

// flush writes what c has due: pongs, a ping, everything queued as one
// frame, or its closing sequence.
func (p *poller) flush(c *Conn) {
	if c.closed || !c.registered {
		return
	}
	if c.aborted.Load() {
		p.closeConn(c)
		return
	}
	if d := c.closeReq.Load(); d != nil && !c.closing {
		p.startClose(c, *d)
		return
	}
	if c.closing || c.pending != nil {
		return // nothing more after our close frame; a full socket resumes on EPOLLOUT
	}
	buf := append(p.wbuf[:0], c.ctrl...)
	c.ctrl = nil
	if c.pingDue {
		buf = appendHeader(buf, opPing, 0)
		c.pingDue = false
	}
	batch := c.out.Take()
	buf = appendObjects(buf, batch)
	c.out.Recycle(batch)
	p.wbuf = buf
	if len(buf) > 0 {
		c.lastWrite = p.now
		p.write(c, buf)
	}
	if !c.closed && !c.out.Park() {
		p.local = append(p.local, c) // more arrived while we wrote
	}
}

// appendObjects appends one text frame holding objects separated by "\n".
func appendObjects(dst []byte, objects [][]byte) []byte {
	if len(objects) == 0 {
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

// startClose sends the closing sequence for d, or drops the connection
// for a zero d.
func (p *poller) startClose(c *Conn, d protocol.Disconnect) {
	if d.Code == "" {
		p.closeConn(c)
		return
	}
	c.closing = true
	c.closeDeadline = p.now + int64(closeWait)
	objects := c.out.Take()
	if d == protocol.DisconnectSlowConsumer || c.pending != nil {
		objects = objects[:0]
	}
	objects = append(objects, protocol.AppendDisconnect(nil, d))
	buf := appendObjects(p.wbuf[:0], objects)
	buf = appendClose(buf, d.CloseStatus, d.Code)
	p.wbuf = buf
	if c.pending != nil {
		c.pending = append(c.pending, buf...)
		return
	}
	p.write(c, buf)
}

// write writes buf to c; what the socket does not take waits in c.pending
// for EPOLLOUT.
func (p *poller) write(c *Conn, buf []byte) {
	n, err := writeFD(c.fd, buf)
	if err != nil {
		p.closeConn(c)
		return
	}
	if n < len(buf) {
		c.pending = append([]byte(nil), buf[n:]...)
		c.pendingSince = p.now
		p.watchWrite(c, true)
	}
}

func writeFD(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, err
		}
	}
}

func (p *poller) watchWrite(c *Conn, on bool) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		p.closeConn(c)
	}
}

func (p *poller) writable(c *Conn) {
	if c.pending == nil {
		return
	}
	n, err := writeFD(c.fd, c.pending)
	if err != nil {
		p.closeConn(c)
		return
	}
	if n < len(c.pending) {
		c.pending = c.pending[n:]
		return
	}
	c.pending = nil
	p.watchWrite(c, false)
	p.flush(c)
}

func (p *poller) readable(c *Conn) {
	n, err := unix.Read(c.fd, p.rbuf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil || n == 0: // reset or end of stream
		p.closeConn(c)
		return
	}
	c.lastRead = p.now
	data := p.rbuf[:n]
	if c.skip > 0 {
		k := min(c.skip, int64(len(data)))
		c.skip -= k
		data = data[k:]
	}
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	used := p.frames(c, data)
	if c.closed {
		return
	}
	rest := data[used:]
	switch {
	case len(rest) == 0:
		c.in = nil
	case len(c.in) > 0:
		c.in = append(c.in[:0], rest...)
	default:
		c.in = append(make([]byte, 0, len(rest)+512), rest...)
	}
}

// frames handles every complete frame in data and returns how many bytes
// it used.
func (p *poller) frames(c *Conn, data []byte) int {
	cfg := &p.loop.cfg
	used := 0
	for !c.closed {
		h, ok, err := parseHeader(data[used:])
		if err != nil {
			c.Close(protocol.DisconnectProtocol)
			return len(data)
		}
		if !ok {
			return used
		}
		if h.op < opClose && int64(len(c.msg))+h.length > cfg.MaxMessage {
			if !c.stopping() {
				c.Close(protocol.DisconnectTooLarge)
			}
			// Discard the rest of the frame as it arrives, so that the
			// peer's close frame can still be read after it.
			c.skip = int64(h.size) + h.length - int64(len(data)-used)
			c.in = nil
			return len(data)
		}
		if int64(len(data)-used-h.size) < h.length {
			return used
		}
		payload := data[used+h.size : used+h.size+int(h.length)]
		used += h.size + int(h.length)
		unmask(payload, h.mask)
		p.frame(c, h, payload)
	}
	return len(data)
}

func (p *poller) frame(c *Conn, h header, payload []byte) {
	switch h.op {
	case opPing:
		if !c.stopping() {
			c.ctrl = append(appendHeader(c.ctrl, opPong, len(payload)), payload...)
			p.local = append(p.local, c)
		}
	case opPong:
	case opClose:
		if !c.closing {
			// The peer starts the closing handshake: answer and drop.
			buf := appendClose(p.wbuf[:0], protocol.CloseNormal, "")
			if c.pending == nil {
				writeFD(c.fd, buf)
			}
		}
		p.closeConn(c)
	case opText, opBinary:
		if c.msgOp != 0 {
			c.Close(protocol.DisconnectProtocol) // a new message inside a fragmented one
			return
		}
		if !h.fin {
			c.msgOp = h.op
			c.msg = append([]byte(nil), payload...)
			return
		}
		p.message(c, h.op, payload)
	case opContinuation:
		if c.msgOp == 0 {
			c.Close(protocol.DisconnectProtocol)
			return
		}
		c.msg = append(c.msg, payload...)
		if h.fin {
			op, msg := c.msgOp, c.msg
			c.msgOp, c.msg = 0, nil
			p.message(c, op, msg)
		}
	}
}

func (p *poller) message(c *Conn, op byte, msg []byte) {
	switch {
	case c.stopping():
	case op == opBinary:
		c.Enqueue(protocol.AppendError(nil, 0, false, protocol.Errorf(protocol.CodeBadRequest, "binary frames are not supported; send text frames of JSON")))
	case !utf8.Valid(msg):
		c.Close(protocol.DisconnectBadUTF8)
	default:
		c.h.OnFrame(msg)
	}
}

// sweep runs the connections' timers: pings, dead peers, stuck writes and
// unanswered closing handshakes.
func (p *poller) sweep() {
	cfg := &p.loop.cfg
	for _, c := range p.conns {
		switch {
		case c.closing:
			if p.now > c.closeDeadline {
				p.closeConn(c)
			}
		case c.pending != nil && p.now-c.pendingSince > int64(cfg.WriteTimeout):
			p.closeConn(c)
		case p.now-c.lastRead > int64(cfg.PingInterval+cfg.PongTimeout):
			p.closeConn(c)
		case p.now-c.lastPing >= int64(cfg.PingInterval):
			c.lastPing = p.now
			c.pingDue = true
			p.local = append(p.local, c)
		case p.now-c.lastWrite > int64(sweepEvery):
			c.out.Shrink() // idle: keep no queue memory
		}
	}
}

// closeConn closes c's socket and tells its handler, once.
func (p *poller) closeConn(c *Conn) {
	if c.closed {
		return
	}
	c.closed = true
	if c.registered {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		delete(p.conns, c.fd)
	}
	unix.Close(c.fd)
	c.in, c.msg, c.ctrl, c.pending = nil, nil, nil, nil
	c.out.Take()
	c.h.OnClose()
}

// closeAll drops every connection at loop stop, including ones that were
// never registered.
func (p *poller) closeAll() {
	p.mu.Lock()
	adds := p.adds
	p.adds = nil
	p.mu.Unlock()
	for _, c := range adds {
		p.closeConn(c)
	}
	for _, c := range p.conns {
		p.closeConn(c)
	}
}

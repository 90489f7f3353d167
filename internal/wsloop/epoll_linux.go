//go:build linux

package wsloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollSupported reports whether this platform has the event loop.
const epollSupported = true

// sweepEvery is how often a poller checks its connections' timers at most;
// shorter ping settings make it check more often.
const sweepEvery = time.Second

// epoll runs connections on a few poller goroutines.
type epoll struct {
	l       *Layer
	pollers []*poller
	next    atomic.Uint32
	stopped atomic.Bool
}

func newEpoll(l *Layer) (*epoll, error) {
	e := &epoll{l: l}
	for range l.cfg.Pollers {
		p, err := newPoller(e)
		if err != nil {
			for _, p := range e.pollers {
				p.closeFDs()
			}
			return nil, err
		}
		e.pollers = append(e.pollers, p)
	}
	return e, nil
}

// run runs the pollers until ctx ends; each closes its connections.
func (e *epoll) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(e.pollers))
	for i, p := range e.pollers {
		wg.Go(func() { errs[i] = p.run() })
	}
	stop := context.AfterFunc(ctx, func() {
		e.stopped.Store(true)
		for _, p := range e.pollers {
			p.wake()
		}
	})
	wg.Wait()
	stop()
	for _, p := range e.pollers {
		p.closeFDs()
	}
	return errors.Join(errs...)
}

// newConn returns a connection for the loop that has no socket yet
// (fd -1): attach gives it one. It may be enqueued to and closed before.
func (e *epoll) newConn(remote string, opts Options) *epollConn {
	p := e.pollers[int(e.next.Add(1))%len(e.pollers)]
	c := &epollConn{p: p, fd: -1, remote: remote, joined: opts.Joined, out: e.l.newOutbox()}
	c.rd.max = e.l.cfg.MaxMessage
	return c
}

// attach gives c the socket of tc, a connection that has completed the
// WebSocket handshake and whose buffered reader holds nothing: c keeps a
// duplicate of the socket and tc is closed. On error tc is left open.
func (e *epoll) attach(c *epollConn, tc *net.TCPConn) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("wsloop: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		dupErr = err
	}
	if dupErr != nil {
		return fmt.Errorf("wsloop: duplicate socket: %w", dupErr)
	}
	// The duplicate shares the socket's open file description, so it is
	// non-blocking like every socket of package net, and once tc is closed
	// (Close waits until it is) it is the only descriptor of that socket:
	// closing it takes it out of the epoll set too.
	tc.Close()
	c.fd = fd
	return nil
}

// poller is one event-loop goroutine with its epoll instance.
type poller struct {
	e     *epoll
	cfg   *Config
	epfd  int
	efd   int // eventfd that wakes the poller
	busy  atomic.Bool
	fdMu  sync.RWMutex
	shut  bool // epfd and efd are closed; guarded by fdMu
	delay int64

	mu         sync.Mutex
	stopped    bool            // guarded by mu
	adds       []*epollConn    // guarded by mu
	urgent     []*epollConn    // to flush at once; guarded by mu
	dirty      []*epollConn    // to flush once the write delay has passed; guarded by mu
	dirtySince int64           // when dirty became non-empty; guarded by mu
	spare      [2][]*epollConn // guarded by mu

	// Owned by the poller goroutine.
	conns     map[int]*epollConn
	local     []*epollConn // more connections to flush in this round
	rbuf      []byte
	wbuf      []byte
	now       int64
	events    []unix.EpollEvent
	nextSweep int64
}

func newPoller(e *epoll) (*poller, error) {
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
		e:      e,
		cfg:    &e.l.cfg,
		epfd:   epfd,
		efd:    efd,
		delay:  int64(e.l.cfg.WriteDelay),
		conns:  make(map[int]*epollConn),
		rbuf:   make([]byte, 64<<10),
		events: make([]unix.EpollEvent, 256),
	}, nil
}

func (p *poller) closeFDs() {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	if !p.shut {
		p.shut = true
		unix.Close(p.epfd)
		unix.Close(p.efd)
	}
}

var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// wake interrupts the poller's epoll_wait; after the loop stopped it does
// nothing.
func (p *poller) wake() {
	p.fdMu.RLock()
	defer p.fdMu.RUnlock()
	if p.shut {
		return
	}
	for {
		_, err := unix.Write(p.efd, one)
		if err != unix.EINTR {
			return
		}
	}
}

// schedule puts c on a list of connections to flush: urgent ones in this
// round, others once the write delay has passed. It wakes the poller
// unless it is running a round (it looks at the lists before it sleeps).
func (p *poller) schedule(c *epollConn, urgent bool) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	wake := true
	if urgent || p.delay == 0 {
		// Only the first of a round wakes the poller: a list that holds
		// something was either announced by a wake already, or scheduled
		// while the poller was busy, and its timeout sees the list before
		// it sleeps. So a fan-out from another goroutine (a broker, the
		// HTTP API) costs one wake per poller, not one per connection.
		wake = len(p.urgent) == 0
		p.urgent = append(p.urgent, c)
	} else {
		if len(p.dirty) == 0 {
			p.dirtySince = time.Now().UnixNano()
		} else {
			wake = false // the poller already sleeps no longer than the delay
		}
		p.dirty = append(p.dirty, c)
	}
	p.mu.Unlock()
	if wake && !p.busy.Load() {
		p.wake()
	}
}

func (p *poller) run() error {
	every := min(sweepEvery, p.cfg.PingInterval/2, p.cfg.PongTimeout/2, p.cfg.WriteTimeout/2)
	p.now = time.Now().UnixNano()
	p.nextSweep = p.now + int64(every)
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
		if p.now >= p.nextSweep {
			p.sweep()
			p.nextSweep = p.now + int64(every)
			p.round()
		}
		p.busy.Store(false)
		if p.e.stopped.Load() {
			p.closeAll()
			return nil
		}
		timeout = p.timeout()
	}
}

// timeout is how long epoll_wait may sleep, in milliseconds (rounded up).
func (p *poller) timeout() int {
	until := p.nextSweep
	p.mu.Lock()
	if len(p.urgent) > 0 || len(p.adds) > 0 {
		until = p.now // scheduled while we were clearing busy
	} else if len(p.dirty) > 0 {
		until = min(until, p.dirtySince+p.delay)
	}
	p.mu.Unlock()
	d := until - p.now
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

func (p *poller) event(fd int, events uint32) {
	if fd == p.efd {
		var b [8]byte
		unix.Read(p.efd, b[:])
		return
	}
	c := p.conns[fd]
	if c == nil {
		// A connection Start has put in the epoll set but not yet in the
		// table (or a stale event of one closed in this round).
		p.registerAdds()
		if c = p.conns[fd]; c == nil {
			return
		}
	}
	if events&unix.EPOLLOUT != 0 {
		p.writable(c)
	}
	if c.closed {
		return
	}
	if c.readOff && events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.closeConn(c) // gone while paused
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.readable(c)
	}
}

// round registers new connections and flushes every scheduled one until
// nothing is left. Delayed connections are flushed once their delay has
// passed.
func (p *poller) round() {
	for {
		p.mu.Lock()
		adds, list := p.adds, p.urgent
		p.adds, p.urgent = nil, p.spare[0][:0]
		var due []*epollConn
		if len(p.dirty) > 0 && p.now >= p.dirtySince+p.delay {
			due, p.dirty = p.dirty, p.spare[1][:0]
		}
		p.spare = [2][]*epollConn{}
		p.mu.Unlock()
		for _, c := range adds {
			p.register(c)
		}
		list = append(list, due...)
		list = append(list, p.local...)
		clear(p.local)
		p.local = p.local[:0]
		if len(adds) == 0 && len(list) == 0 {
			p.recycle(list, due)
			return
		}
		for _, c := range list {
			p.flush(c)
		}
		clear(list)
		p.recycle(list, due)
	}
}

func (p *poller) recycle(list, due []*epollConn) {
	clear(due)
	p.mu.Lock()
	p.spare = [2][]*epollConn{list[:0], due[:0]}
	p.mu.Unlock()
}

// errPollerShut is watchNew's error after the loop has stopped.
var errPollerShut = errors.New("wsloop: event loop stopped")

// watchNew adds fd to the poller's epoll set; any goroutine may call it.
func (p *poller) watchNew(fd int) error {
	p.fdMu.RLock()
	defer p.fdMu.RUnlock()
	if p.shut {
		return errPollerShut
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("wsloop: epoll_ctl: %w", err)
	}
	return nil
}

// registerAdds takes the connections Start has added into the poller's
// table.
func (p *poller) registerAdds() {
	p.mu.Lock()
	adds := p.adds
	p.adds = nil
	p.mu.Unlock()
	for _, c := range adds {
		p.register(c)
	}
}

// register takes c, already in the epoll set, into the poller's table and
// flushes what it has due. With a write delay, objects queued before
// registration wait for it like any others.
func (p *poller) register(c *epollConn) {
	p.conns[c.fd] = c
	c.registered = true
	c.lastRead, c.lastPing = p.now, p.now
	if p.delay > 0 && c.closeReq.Load() == nil && !c.aborted.Load() && c.paused.Load() == c.readOff {
		if c.out.Len() > 0 {
			p.schedule(c, false)
		}
		return
	}
	p.flush(c)
}

// flush applies a pause or resume, then writes what c has due: a pong, a
// ping, everything queued (one frame per object, or one joined frame), or
// its closing sequence, all in one write(2).
func (p *poller) flush(c *epollConn) {
	if c.closed || !c.registered {
		return
	}
	if c.aborted.Load() {
		p.closeConn(c)
		return
	}
	if req := c.closeReq.Load(); req != nil && !c.closing {
		p.startClose(c, req)
		return
	}
	if c.closing {
		return // nothing more after our close frame
	}
	if c.paused.Load() != c.readOff {
		p.applyPause(c)
		if c.closed || c.closing {
			return
		}
	}
	if c.pending != nil {
		return // a full socket resumes on EPOLLOUT
	}
	buf := p.wbuf[:0]
	if c.pongDue {
		buf = append(appendHeader(buf, opPong, len(c.pong)), c.pong...)
		c.pongDue = false
	}
	if c.pingDue {
		buf = appendHeader(buf, opPing, 0)
		c.pingDue = false
	}
	batch := c.out.Take()
	buf = appendFrames(buf, batch, c.joined)
	c.out.Recycle(batch)
	p.wbuf = buf
	if len(buf) > 0 {
		c.lastWrite = p.now
		p.write(c, buf)
		if c.closed {
			return
		}
	}
	if c.out.Sent(int64(len(c.pending)), c.recheck) {
		c.h.OnDrain()
	}
	if !c.closed && c.pending == nil && !c.out.Park() {
		p.local = append(p.local, c) // more arrived while we wrote
	}
}

// applyPause turns reading off or on to match c.paused. On resume, frames
// held over the pause are handled first.
func (p *poller) applyPause(c *epollConn) {
	c.readOff = c.paused.Load()
	p.watch(c)
	if c.readOff || c.closed {
		return
	}
	c.lastRead = p.now // the read deadline starts again
	if len(c.in) > 0 {
		p.decode(c, nil)
	}
}

// startClose sends the closing sequence of req, or drops the connection
// for an abort.
func (p *poller) startClose(c *epollConn, req *closeRequest) {
	if !req.apply {
		p.closeConn(c)
		return
	}
	c.closing = true
	c.draining = req.drain
	if c.draining {
		c.in = nil
	}
	c.closeDeadline = p.now + int64(closeWait)
	var objects [][]byte
	if !req.dropQueue {
		objects = c.out.Take()
	}
	buf := appendClosing(p.wbuf[:0], objects, c.joined, req.closing)
	c.out.Recycle(objects)
	c.out.Discard()
	p.wbuf = buf
	if c.pending != nil {
		c.pending = append(c.pending, buf...)
		return
	}
	p.write(c, buf)
	if !c.closed && c.pending == nil {
		p.closeSent(c)
	}
}

// closeSent runs once our close frame has gone to the socket. After a read
// violation we stop sending and wait for the end of the stream: no more
// decoding.
func (p *poller) closeSent(c *epollConn) {
	if c.draining {
		unix.Shutdown(c.fd, unix.SHUT_WR)
	}
	if c.readOff { // paused: read again, to see the peer's close or end of stream
		c.readOff = false
		p.watch(c)
	}
}

// write writes buf to c; what the socket does not take waits in c.pending
// for EPOLLOUT.
func (p *poller) write(c *epollConn, buf []byte) {
	n, err := writeFD(c.fd, buf)
	if err != nil {
		p.closeConn(c)
		return
	}
	if n < len(buf) {
		c.pending = append([]byte(nil), buf[n:]...)
		c.pendingSince = p.now
		p.watch(c)
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

// watch sets the events the poller waits for on c: input unless paused,
// output while bytes are pending.
func (p *poller) watch(c *epollConn) {
	var ev unix.EpollEvent
	ev.Fd = int32(c.fd)
	if !c.readOff {
		ev.Events |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if c.pending != nil {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		p.closeConn(c)
	}
}

func (p *poller) writable(c *epollConn) {
	if c.pending == nil {
		return
	}
	n, err := writeFD(c.fd, c.pending)
	if err != nil {
		p.closeConn(c)
		return
	}
	if n > 0 {
		c.pendingSince = p.now
	}
	if n < len(c.pending) {
		c.pending = c.pending[n:]
		return
	}
	c.pending = nil
	p.watch(c)
	if c.closed {
		return
	}
	if c.closing {
		p.closeSent(c)
		return
	}
	if c.out.Sent(0, c.recheck) {
		c.h.OnDrain()
	}
	p.flush(c)
}

func (p *poller) readable(c *epollConn) {
	n, err := unix.Read(c.fd, p.rbuf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil || n == 0: // reset or end of stream
		p.closeConn(c)
		return
	}
	c.lastRead = p.now
	if c.draining {
		return // discard until end of stream or closeWait
	}
	p.decode(c, p.rbuf[:n])
}

// decode handles the frames in c.in followed by data, and keeps in c.in
// what it did not use: an incomplete frame, or everything after a pause.
func (p *poller) decode(c *epollConn, data []byte) {
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	used := 0
	more := true // data[used:] may hold a whole frame
	for {
		// While closing, frames are read even if paused: the peer's close
		// frame ends the handshake (messages are dropped).
		for more && !c.closed && !c.draining && (c.closing || !c.paused.Load()) {
			ev, n := c.rd.next(data[used:])
			used += n
			if ev.kind == needMore {
				more = false
				break
			}
			p.handle(c, ev)
		}
		if c.paused.Load() && !c.readOff && !c.closed && !c.closing {
			c.readOff = true
			p.watch(c)
		}
		// A worker that resumed reading between the loop's look at
		// paused and the one above scheduled a flush that sees nothing
		// to apply (readOff is still false): go on with the frames held
		// here, or nothing would read them until more data arrives.
		if !more || c.readOff || c.closed || c.draining || c.closing {
			break
		}
	}
	if c.closed || c.draining {
		c.in = nil
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

func (p *poller) handle(c *epollConn, ev event) {
	switch ev.kind {
	case gotText, gotBinary:
		if !c.stopping() {
			c.h.OnMessage(ev.payload, ev.kind == gotBinary)
		}
	case gotPing:
		if !c.stopping() { // keep only the latest (RFC 6455 section 5.5.3)
			c.pong = append(c.pong[:0], ev.payload...)
			c.pongDue = true
			p.local = append(p.local, c)
		}
	case gotPong:
	case gotClose:
		if !c.closing && c.pending == nil {
			// The peer starts the closing handshake: answer and drop.
			writeFD(c.fd, appendEcho(p.wbuf[:0], ev.code))
		}
		p.closeConn(c)
	case gotError:
		p.violation(c, ev.reason)
	}
}

// violation ends c after a read it cannot decode: the layer's Closing for
// r (or the one already asked for), then no more decoding.
func (p *poller) violation(c *epollConn, r Reason) {
	if c.closing {
		p.closeConn(c) // already waiting for the peer's close
		return
	}
	req := p.e.l.reasonRequest(r)
	if !c.closeReq.CompareAndSwap(nil, req) {
		prev := *c.closeReq.Load()
		prev.drain = true
		req = &prev
	}
	p.startClose(c, req)
}

// sweep runs the connections' timers: close-wait expiry, stuck writes, the
// soft limit held too long, dead peers, pings and idle memory.
func (p *poller) sweep() {
	cfg := p.cfg
	for _, c := range p.conns {
		switch {
		case c.closing:
			if p.now > c.closeDeadline {
				p.closeConn(c)
			}
		case c.pending != nil && p.now-c.pendingSince > int64(cfg.WriteTimeout),
			p.e.l.overTooLong(c.out, p.now):
			c.closeFor(ReasonSlowConsumer)
		case !c.readOff && p.now-c.lastRead > int64(cfg.PingInterval+cfg.PongTimeout):
			if peerTaking(c.fd, c.pending != nil || c.out.Len() > 0, &c.acked) {
				c.lastRead = p.now // reading a backlog: its pong is behind it
				break
			}
			p.cfg.Log.Debug("wsloop: peer silent past ping_interval + pong_timeout; dropping", "remote", c.remote)
			p.closeConn(c)
		case p.now-c.lastPing >= int64(cfg.PingInterval):
			c.lastPing = p.now
			c.pingDue = true
			p.local = append(p.local, c)
		case p.now-c.lastWrite > int64(sweepEvery):
			c.out.Shrink() // idle: keep no queue memory
			if cap(c.pong) > 0 && !c.pongDue {
				c.pong = nil
			}
		}
	}
}

// closeConn closes c's socket and tells its handler, once.
func (p *poller) closeConn(c *epollConn) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeReq.CompareAndSwap(nil, abortRequest)
	if c.registered {
		delete(p.conns, c.fd)
	}
	unix.Close(c.fd) // the only descriptor of the socket (attach): this also takes it out of the epoll set
	c.in, c.pong, c.pending, c.rd.msg = nil, nil, nil, nil
	c.out.Discard()
	c.h.OnClose()
}

// closeAll drops every connection at loop stop, including ones that were
// never registered; later Starts close at once.
func (p *poller) closeAll() {
	p.mu.Lock()
	p.stopped = true
	adds := p.adds
	p.adds, p.urgent, p.dirty = nil, nil, nil
	p.mu.Unlock()
	for _, c := range adds {
		p.closeConn(c)
	}
	for _, c := range p.conns {
		p.closeConn(c)
	}
}

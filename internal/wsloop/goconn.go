package wsloop

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// writerLinger is how long an idle writer goroutine waits for more to write
// before it exits. Idle connections hold no writer goroutine.
const writerLinger = 5 * time.Second

// readBufferSize is the goroutine path's read buffer per connection.
const readBufferSize = 1024

// writeBuffers holds the buffers that frames are built in before one write,
// so an idle connection holds none.
var writeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// goConn is the goroutine path, for connections the event loop cannot take
// (TLS) or platforms without one. The reader goroutine started by Start
// owns the socket's reads and the connection's end. A writer goroutine,
// started on demand and exiting when idle, owns every write, ping and write
// deadline; at most one runs at a time, and the last one runs the closing
// sequence.
type goConn struct {
	l      *Layer
	nc     net.Conn
	remote string
	joined bool
	out    *Outbox
	rd     reader
	h      Handler
	broken bool   // a write failed; owned by the writer goroutines, one at a time
	acked  uint64 // bytes the peer's TCP had acknowledged at the last dead-peer look; owned by the reader

	ready     chan struct{} // capacity 1: signalled when there is something to write
	pingDue   atomic.Bool   // set by pingTimer, cleared by the writer
	pingTimer *time.Timer
	pong      atomic.Pointer[[]byte] // the latest unanswered ping's payload

	closeReq   atomic.Pointer[closeRequest] // the first request wins
	closing    chan struct{}                // closed when closeReq is set
	readerDone chan struct{}
	writerDone chan struct{} // closed by the writer that ran finish

	startMu sync.Mutex
	started bool // guarded by startMu
	wanted  bool // a writer was asked for before Start; guarded by startMu

	pauseMu sync.Mutex
	paused  bool          // guarded by pauseMu
	resume  chan struct{} // closed on resume; guarded by pauseMu
}

func newGoConn(l *Layer, nc net.Conn, remote string, opts Options) *goConn {
	c := &goConn{
		l:          l,
		nc:         nc,
		remote:     remote,
		joined:     opts.Joined,
		out:        l.newOutbox(),
		ready:      make(chan struct{}, 1),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.rd.max = l.cfg.MaxMessage
	c.pingTimer = time.AfterFunc(l.cfg.PingInterval, c.pingTick)
	return c
}

// Start starts the reader goroutine, and a writer if objects are queued.
func (c *goConn) Start(h Handler) {
	c.h = h
	if !c.l.track(c) {
		c.closeReq.CompareAndSwap(nil, abortRequest)
		c.pingTimer.Stop()
		c.nc.Close()
		c.out.Discard()
		h.OnClose()
		return
	}
	c.startMu.Lock()
	c.started = true
	wanted := c.wanted
	c.startMu.Unlock()
	if wanted {
		go c.writeLoop()
	}
	go c.run()
}

// startWriter starts a writer goroutine, or leaves it to Start.
func (c *goConn) startWriter() {
	c.startMu.Lock()
	if !c.started {
		c.wanted = true
		c.startMu.Unlock()
		return
	}
	c.startMu.Unlock()
	go c.writeLoop()
}

// Enqueue queues one encoded server object. It never blocks.
func (c *goConn) Enqueue(b []byte) Pressure {
	if c.closeReq.Load() != nil {
		return Dropped
	}
	pr, start := c.out.Push(b)
	if pr == Dropped {
		c.request(c.l.reasonRequest(ReasonSlowConsumer))
		return Dropped
	}
	c.signal()
	if start {
		c.startWriter()
	}
	if pr == Congested && c.l.overTooLong(c.out, time.Now().UnixNano()) {
		c.request(c.l.reasonRequest(ReasonSlowConsumer))
		return Dropped
	}
	return pr
}

// wake makes sure a writer runs and looks at the connection's state.
func (c *goConn) wake() {
	start := c.out.Activate()
	c.signal()
	if start {
		c.startWriter()
	}
}

func (c *goConn) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// request sets how the connection ends, if nothing has yet.
func (c *goConn) request(r *closeRequest) bool {
	if !c.closeReq.CompareAndSwap(nil, r) {
		return false
	}
	close(c.closing)
	if r.dropQueue {
		// Cut short a write stuck on a full socket.
		c.nc.SetWriteDeadline(time.Now())
	}
	c.wake()
	return true
}

// Close ends the connection with cl; see Conn.
func (c *goConn) Close(cl Closing) { c.request(c.l.request(cl)) }

// Abort drops the connection at once.
func (c *goConn) Abort() {
	c.request(abortRequest)
	c.pingTimer.Stop() // also for a connection never started (a failed Accept)
	c.nc.Close()
}

// Closed returns the Closing the connection was closed with.
func (c *goConn) Closed() (Closing, bool) {
	if r := c.closeReq.Load(); r != nil && r.apply {
		return r.closing, true
	}
	return Closing{}, false
}

// SetReadPaused stops or resumes the reader before its next read.
func (c *goConn) SetReadPaused(paused bool) {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if paused == c.paused {
		return
	}
	c.paused = paused
	if paused {
		c.resume = make(chan struct{})
		c.nc.SetReadDeadline(time.Time{}) // a read in progress may wait as long as it takes
	} else {
		close(c.resume)
		c.nc.SetReadDeadline(time.Now().Add(c.l.cfg.PingInterval + c.l.cfg.PongTimeout))
	}
}

// QueuePeak implements Conn.
func (c *goConn) QueuePeak() int { return c.out.Peak() }

// RemoteAddr returns the peer's address.
func (c *goConn) RemoteAddr() string { return c.remote }

// Path returns "goroutine".
func (c *goConn) Path() string { return ModeGoroutine }

func (c *goConn) isClosing() bool { return c.closeReq.Load() != nil }

func (c *goConn) pingTick() {
	c.pingDue.Store(true)
	c.wake()
}

func (c *goConn) recheck() { c.wake() }

// waitResume blocks while reading is paused, unless the connection is
// closing (then the peer's close frame must be read).
func (c *goConn) waitResume() bool {
	c.pauseMu.Lock()
	paused, resume := c.paused, c.resume
	c.pauseMu.Unlock()
	if !paused {
		return false
	}
	select {
	case <-resume:
	case <-c.closing:
	}
	return true
}

// run reads and decodes until the connection ends; then it waits for the
// writer, closes the socket and calls OnClose.
func (c *goConn) run() {
	err := c.readLoop()
	if !c.isClosing() {
		c.l.cfg.Log.Debug("wsloop: connection ended by peer", "remote", c.remote, "err", err)
	}
	c.request(abortRequest)
	close(c.readerDone)
	<-c.writerDone
	c.pingTimer.Stop()
	c.nc.Close()
	c.out.Discard()
	c.l.untrack(c)
	c.h.OnClose()
}

// errEnd ends the read loop without an error to report.
var errEnd = errors.New("wsloop: connection ended")

func (c *goConn) readLoop() error {
	buf := make([]byte, readBufferSize)
	var in []byte // bytes not yet decoded
	held := false // in may hold whole frames, kept over a pause
	deadline := c.l.cfg.PingInterval + c.l.cfg.PongTimeout
	for {
		if c.waitResume() {
			held = len(in) > 0
		}
		if held && !c.isPaused() {
			var err error
			if in, held, err = c.decode(in, nil); err != nil {
				return err
			}
			continue
		}
		c.pauseMu.Lock()
		if !c.paused {
			c.nc.SetReadDeadline(time.Now().Add(deadline))
		}
		c.pauseMu.Unlock()
		n, err := c.nc.Read(buf)
		if n > 0 {
			var derr error
			if in, held, derr = c.decode(in, buf[:n]); derr != nil {
				return derr
			}
		}
		if err != nil {
			var ne net.Error
			if n == 0 && errors.As(err, &ne) && ne.Timeout() && !c.isClosing() && c.peerTaking() {
				continue // reading a backlog: its pong is behind it
			}
			return err
		}
	}
}

// peerTaking is the dead-peer exception of the event loop (peerTaking in
// liveness_linux.go) for the goroutine path: it looks at the TCP socket
// under the connection, TLS included.
func (c *goConn) peerTaking() bool {
	nc := c.nc
	if t, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = t.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	taking := false
	raw.Control(func(fd uintptr) { taking = peerTaking(int(fd), c.out.Len() > 0, &c.acked) })
	return taking
}

func (c *goConn) isPaused() bool {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	return c.paused
}

// decode handles the frames of in followed by data and returns what it did
// not use, and held: whether it stopped for a pause with bytes left (which
// may hold whole frames; the reader decodes them again once resumed). It
// is decode that says so, not a later look at the pause: a resume that
// came in between would leave frames unread until the peer sent more.
// errEnd means the connection is over for the reader.
func (c *goConn) decode(in, data []byte) (rest []byte, held bool, err error) {
	if len(in) > 0 {
		in = append(in, data...)
		data = in
	}
	used := 0
	for {
		if c.isPaused() && !c.isClosing() {
			held = true
			break
		}
		ev, n := c.rd.next(data[used:])
		used += n
		if ev.kind == needMore {
			break
		}
		if err := c.handle(ev); err != nil {
			return nil, false, err
		}
	}
	rest = data[used:]
	switch {
	case len(rest) == 0:
		return nil, false, nil
	case len(in) > 0:
		return append(in[:0], rest...), held, nil
	default:
		return append(make([]byte, 0, len(rest)+512), rest...), held, nil
	}
}

func (c *goConn) handle(ev event) error {
	switch ev.kind {
	case gotText, gotBinary:
		if !c.isClosing() {
			c.h.OnMessage(ev.payload, ev.kind == gotBinary)
		}
	case gotPing:
		if !c.isClosing() { // keep only the latest (RFC 6455 section 5.5.3)
			p := append([]byte(nil), ev.payload...)
			c.pong.Store(&p)
			c.wake()
		}
	case gotPong:
	case gotClose:
		// The peer closes: answer it unless we started the handshake.
		c.request(&closeRequest{closing: Closing{Status: ev.code}, drain: true})
		return errEnd
	case gotError:
		// Stop decoding; if a close was already asked for, its handshake
		// ends with the peer's end of stream or closeWait.
		c.request(c.l.reasonRequest(ev.reason))
		c.discard()
		return errEnd
	}
	return nil
}

// discard reads and drops input until end of stream or until the writer
// closes the socket (closeWait after our close frame).
func (c *goConn) discard() {
	var b [512]byte
	c.nc.SetReadDeadline(time.Now().Add(closeWait + c.l.cfg.WriteTimeout))
	for {
		if _, err := c.nc.Read(b[:]); err != nil {
			return
		}
	}
}

// writeLoop is the writer goroutine: it writes what is queued and due until
// it has been idle for writerLinger, or runs the closing sequence.
func (c *goConn) writeLoop() {
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	for {
		select {
		case <-c.closing:
			c.finish()
			return
		case <-c.ready:
			if c.isClosing() {
				// select picks at random among ready cases: after a failed
				// write (which leaves half a frame) nothing but finish may
				// write again.
				c.finish()
				return
			}
			if err := c.service(); err != nil {
				// A write that failed may have left half a frame: nothing
				// more can be sent. A timeout is a slow consumer.
				c.broken = true
				c.l.cfg.Log.Debug("wsloop: write failed; dropping connection", "remote", c.remote, "err", err)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					c.request(c.l.reasonRequest(ReasonSlowConsumer))
				} else {
					c.Abort()
				}
			}
		case <-linger.C:
			// Park unless work arrived meanwhile; a Close or ping that
			// raced with parking either started a new writer or finds
			// this one still going.
			if c.out.Park() && (!c.due() || !c.out.Activate()) {
				c.out.Shrink()
				return
			}
		}
		linger.Reset(writerLinger)
	}
}

func (c *goConn) due() bool { return c.isClosing() || c.pingDue.Load() || c.pong.Load() != nil }

// service writes a due pong, a due ping and everything queued, in one
// write; with a write delay it first gathers for up to WriteDelay.
func (c *goConn) service() error {
	if d := c.l.cfg.WriteDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.closing:
		}
		t.Stop()
	}
	bp := writeBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	// The queue is taken before the pong: a ping read before something
	// the queue now holds was answered by then (the reader stores the
	// pong first), so its pong goes out ahead of it, not in a later write.
	batch := c.out.Take()
	if p := c.pong.Swap(nil); p != nil {
		buf = append(appendHeader(buf, opPong, len(*p)), *p...)
	}
	if c.pingDue.Swap(false) {
		buf = appendHeader(buf, opPing, 0)
		c.pingTimer.Reset(c.l.cfg.PingInterval)
	}
	buf = appendFrames(buf, batch, c.joined)
	c.out.Recycle(batch)
	err := c.write(buf, c.l.cfg.WriteTimeout)
	if cap(buf) <= 64<<10 { // don't pool what one large batch grew
		*bp = buf[:0]
		writeBuffers.Put(bp)
	}
	if err != nil {
		return err
	}
	if c.out.Sent(0, c.recheck) {
		c.h.OnDrain()
	}
	if c.l.overTooLong(c.out, time.Now().UnixNano()) {
		c.request(c.l.reasonRequest(ReasonSlowConsumer))
	}
	return nil
}

// write writes buf in chunks, each with a fresh deadline of d: a peer that
// keeps reading is never cut off, one that takes nothing for d is.
func (c *goConn) write(buf []byte, d time.Duration) error {
	const chunk = 64 << 10
	for len(buf) > 0 {
		n := min(len(buf), chunk)
		if err := c.nc.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return err
		}
		if _, err := c.nc.Write(buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// finish runs once, in the last writer: it sends the closing sequence the
// request asks for, waits for the reader to see the peer's close frame or
// end of stream (at most closeWait), and closes the socket.
func (c *goConn) finish() {
	defer close(c.writerDone)
	c.pingTimer.Stop()
	req := c.closeReq.Load()
	switch {
	case c.broken:
		c.nc.Close()
		return
	case req.apply:
	case req.drain: // the peer's close, to echo
		c.write(appendEcho(nil, req.closing.Status), min(c.l.cfg.WriteTimeout, closeWait))
		c.nc.Close()
		return
	default:
		c.nc.Close()
		return
	}
	var objects [][]byte
	if !req.dropQueue {
		objects = c.out.Take()
	}
	buf := appendClosing(nil, objects, c.joined, req.closing)
	c.out.Recycle(objects)
	c.out.Discard()
	if err := c.write(buf, min(c.l.cfg.WriteTimeout, closeWait)); err != nil {
		// Cut short (slow consumer) or failed: the peer gets no more.
		c.nc.Close()
		return
	}
	if req.drain {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	timer := time.NewTimer(closeWait)
	select {
	case <-c.readerDone:
	case <-timer.C:
	}
	timer.Stop()
	c.nc.Close()
}

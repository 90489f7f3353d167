//go:build linux

package wsloop

import (
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollConn is one connection on the loop. Enqueue, Close, Abort and
// SetReadPaused may be called from any goroutine; everything else belongs
// to its poller.
type epollConn struct {
	p      *poller
	fd     int
	remote string
	joined bool
	h      Handler
	out    *Outbox

	closeReq atomic.Pointer[closeRequest] // the first request wins
	aborted  atomic.Bool
	paused   atomic.Bool

	// Owned by the poller goroutine.
	registered    bool
	closed        bool
	closing       bool   // our close frame is queued or sent
	draining      bool   // after a read violation: input is discarded until end of stream
	readOff       bool   // EPOLLIN is off (paused)
	in            []byte // bytes not yet decoded: an incomplete frame, or frames held over a pause
	rd            reader
	pong          []byte // payload of the latest unanswered ping: at most 125 bytes
	pongDue       bool
	pingDue       bool
	pending       []byte // bytes the socket did not take yet: at most one flush
	lastRead      int64  // unix nanoseconds
	lastPing      int64
	lastWrite     int64
	pendingSince  int64  // last write progress while bytes are pending
	acked         uint64 // bytes the peer's TCP had acknowledged at the last dead-peer look
	closeDeadline int64
}

// Start registers the connection with its poller. It adds the socket to
// the poller's epoll set itself, and wakes the poller only if something
// is due already (a queued object, a close, a pause): a connection whose
// greeting left with the 101 response costs the poller no wake-up. The
// poller takes it into its table at its next round, or at the socket's
// first event.
func (c *epollConn) Start(h Handler) {
	c.h = h
	p := c.p
	err := errNoSocket // Accept failed
	if c.fd >= 0 {
		err = p.watchNew(c.fd)
	}
	p.mu.Lock()
	if p.stopped || err != nil {
		p.mu.Unlock()
		if err != nil && !errors.Is(err, errPollerShut) && !errors.Is(err, errNoSocket) {
			p.cfg.Log.Warn("wsloop: cannot watch connection", "err", err)
		}
		c.closeReq.CompareAndSwap(nil, abortRequest)
		if c.fd >= 0 {
			unix.Close(c.fd) // also takes it out of the epoll set
		}
		c.out.Discard()
		h.OnClose()
		return
	}
	p.adds = append(p.adds, c)
	p.mu.Unlock()
	// Checked after the add: an Enqueue, Close, Abort or SetReadPaused
	// from here on schedules c after it, and the poller registers adds
	// before it flushes.
	if c.closeReq.Load() != nil || c.out.Len() > 0 || c.paused.Load() {
		p.wake()
	}
}

// errNoSocket is Start's error for a connection that never got its socket.
var errNoSocket = errors.New("wsloop: no socket")

// Enqueue queues one encoded server object for writing. It never blocks.
func (c *epollConn) Enqueue(b []byte) Pressure {
	if c.closeReq.Load() != nil {
		return Dropped
	}
	pr, activate := c.out.Push(b)
	switch {
	case pr == Dropped:
		c.closeFor(ReasonSlowConsumer)
	case activate:
		c.p.schedule(c, false)
	}
	if pr == Congested && c.p.e.l.overTooLong(c.out, time.Now().UnixNano()) {
		c.closeFor(ReasonSlowConsumer)
		return Dropped
	}
	return pr
}

func (c *epollConn) closeFor(r Reason) {
	if c.closeReq.CompareAndSwap(nil, c.p.e.l.reasonRequest(r)) {
		c.p.schedule(c, true)
	}
}

// Close ends the connection with cl; see Conn.
func (c *epollConn) Close(cl Closing) {
	if c.closeReq.CompareAndSwap(nil, c.p.e.l.request(cl)) {
		c.p.schedule(c, true)
	}
}

// Abort drops the connection at once, even during a closing handshake.
func (c *epollConn) Abort() {
	c.closeReq.CompareAndSwap(nil, abortRequest)
	if !c.aborted.Swap(true) {
		c.p.schedule(c, true)
	}
}

// Closed returns the Closing the connection was closed with.
func (c *epollConn) Closed() (Closing, bool) {
	if r := c.closeReq.Load(); r != nil && r.apply {
		return r.closing, true
	}
	return Closing{}, false
}

// SetReadPaused stops or resumes reading.
func (c *epollConn) SetReadPaused(paused bool) {
	if c.paused.Swap(paused) != paused {
		c.p.schedule(c, true)
	}
}

// QueuePeak implements Conn.
func (c *epollConn) QueuePeak() int { return c.out.Peak() }

// RemoteAddr returns the peer's address.
func (c *epollConn) RemoteAddr() string { return c.remote }

// Path returns "epoll".
func (c *epollConn) Path() string { return ModeEpoll }

func (c *epollConn) stopping() bool { return c.closing || c.closeReq.Load() != nil }

// recheck makes the poller look at c's drain state again.
func (c *epollConn) recheck() { c.p.schedule(c, true) }

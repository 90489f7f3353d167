package hub

import (
	"sync"

	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// Where commands run. The connection layer hands a connection's messages
// to the hub on an event-loop goroutine that serves many connections, so
// nothing there may block. A command runs right there only when the
// broker reports NonBlocking (Server.inline) and the connection has nothing
// queued; otherwise it goes to the connection's queue, which a worker
// goroutine runs in order. While the queue holds anything the connection's
// reading is paused, so the queue holds at most one message's commands and
// replies keep command order. A publish to a channel whose gate is closed
// (flow.go) waits in the queue too, without a goroutine.

// cmdQueue is one connection's commands waiting to run.
type cmdQueue struct {
	mu        sync.Mutex
	cmds      []queuedCmd // guarded by mu
	active    bool        // a worker runs, or a wait will start one; guarded by mu
	closed    bool        // the connection ended: start no worker; guarded by mu
	congested bool        // the client's own queue is over its soft limit; guarded by mu
	waitDrain bool        // a worker stopped until OnDrain; guarded by mu
}

type queuedCmd struct {
	cmd  protocol.Command
	perr *protocol.Error
}

// idle reports whether a command may run at once: nothing is queued or
// running for the connection, and its own queue is not congested (a
// client that pipelines commands faster than it reads their replies is
// slowed, not dropped).
func (q *cmdQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.active && !q.congested
}

// command runs or queues one decoded command. It is called on the
// transport's goroutine, in the connection's command order.
func (c *client) command(cmd protocol.Command, perr *protocol.Error) {
	if perr == nil {
		perr = c.limit()
	}
	c.srv.metrics.command(cmd.Op, perr == nil || cmd.Op != "")
	if c.srv.inline && c.q.idle() && (perr != nil || c.gateOpen(cmd)) {
		c.run(cmd, perr)
		return
	}
	if !c.srv.inline && perr == nil && c.publishInline(cmd) {
		return
	}
	// Pause before the command is visible to a worker: a worker that
	// empties the queue resumes reading after this point.
	c.conn.SetReadPaused(true)
	c.srv.metrics.backpressured(bpReadPause)
	c.q.mu.Lock()
	c.q.cmds = append(c.q.cmds, queuedCmd{cmd, perr})
	start := !c.q.active && !c.q.closed
	if start {
		c.q.active = true
		c.srv.conns.Add(1) // the worker's; the connection's own count is still held
	}
	c.q.mu.Unlock()
	if start {
		go c.work()
	}
}

// work runs queued commands until the queue is empty, the connection ends,
// or a publish must wait for its channel's gate (whose opening starts a
// new worker).
func (c *client) work() {
	defer c.srv.conns.Done()
	for {
		c.q.mu.Lock()
		if c.q.congested && !c.q.closed && len(c.q.cmds) > 0 {
			c.q.waitDrain = true // OnDrain starts the next worker
			c.q.mu.Unlock()
			return
		}
		if c.q.closed || len(c.q.cmds) == 0 {
			c.q.cmds = nil
			c.q.active = false
			closed := c.q.closed
			c.q.mu.Unlock()
			if !closed {
				c.conn.SetReadPaused(false)
			}
			return
		}
		next := c.q.cmds[0]
		c.q.mu.Unlock()
		if next.perr == nil && c.waitGate(next.cmd) {
			return // active stays set: resume starts the next worker
		}
		c.q.mu.Lock()
		if c.q.closed {
			c.q.active = false
			c.q.mu.Unlock()
			return
		}
		c.q.cmds = c.q.cmds[1:]
		c.q.mu.Unlock()
		c.run(next.cmd, next.perr)
	}
}

// resume starts a worker for a connection whose publish waited for a gate.
func (c *client) resume() {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	c.resumeLocked()
}

func (c *client) resumeLocked() {
	if c.q.closed {
		c.q.active = false
		return
	}
	c.srv.conns.Add(1)
	go c.work()
}

// reply queues an object for c itself. When that puts c's queue over its
// soft limit, c's next commands wait until it has drained.
func (c *client) enqueueReply(b []byte) {
	seen := c.flow.drains.Load()
	c.srv.metrics.sent(outReply, 1, len(b))
	if c.conn.Enqueue(b) != wsloop.Congested {
		return
	}
	c.srv.metrics.backpressured(bpReplyQueue)
	c.q.mu.Lock()
	if c.flow.drains.Load() == seen { // else the drain came first: no OnDrain is due
		c.q.congested = true
	}
	c.q.mu.Unlock()
}

// drained is the command side of OnDrain: a worker waiting for c's queue
// to drain goes on.
func (c *client) drained() {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	c.q.congested = false
	if c.q.waitDrain {
		c.q.waitDrain = false
		c.resumeLocked()
	}
}

// stopQueue drops what is queued; a running worker stops after its
// current command.
func (c *client) stopQueue() {
	c.q.mu.Lock()
	c.q.closed = true
	c.q.cmds = nil
	c.q.mu.Unlock()
}

// gateOpen reports whether cmd may run now: anything but a publish to a
// channel whose local subscribers are catching up.
func (c *client) gateOpen(cmd protocol.Command) bool {
	if cmd.Op != protocol.OpPublish {
		return true
	}
	ch := c.srv.reg.channel(cmd.Channel)
	return ch == nil || ch.flow.open()
}

// waitGate registers c to resume once cmd's channel gate opens, and
// reports false if cmd may run now.
func (c *client) waitGate(cmd protocol.Command) bool {
	if cmd.Op != protocol.OpPublish {
		return false
	}
	ch := c.srv.reg.channel(cmd.Channel)
	return ch != nil && ch.flow.wait(c.resume)
}

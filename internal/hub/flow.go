package hub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/netkit/netkit/internal/wsloop"
)

// Flow control. A subscriber whose queue goes over its soft limit closes
// the gate of the channel whose message put it there; publishers to that
// channel then wait (a WebSocket publisher stops reading its socket, an API
// publish waits a bounded time) until every such subscriber has drained.
// A subscriber that keeps reading therefore only slows the publisher; one
// that stops reading stays over its limit and the connection layer drops
// it after hub.write_timeout, which opens the gate again.

// flowGate counts a channel's subscribers that are over their soft limit
// and holds the publishers waiting for them.
type flowGate struct {
	closed  atomic.Int32 // subscribers holding the gate closed; written under mu
	mu      sync.Mutex
	waiters []func() // run once when closed drops to 0; guarded by mu
}

// open reports whether publishers may go on.
func (g *flowGate) open() bool { return g.closed.Load() == 0 }

// wait registers fn to run once the gate opens and reports true, or
// reports false without registering when the gate is open.
func (g *flowGate) wait(fn func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed.Load() == 0 {
		return false
	}
	g.waiters = append(g.waiters, fn)
	return true
}

// hold closes the gate once more.
func (g *flowGate) hold() {
	g.mu.Lock()
	g.closed.Add(1)
	g.mu.Unlock()
}

// release undoes one hold; the last one runs the waiters.
func (g *flowGate) release() {
	g.mu.Lock()
	var run []func()
	if g.closed.Add(-1) == 0 {
		run, g.waiters = g.waiters, nil
	}
	g.mu.Unlock()
	for _, fn := range run {
		fn()
	}
}

// waitOpen waits until the gate is open or ctx ends, and reports whether
// it is open.
func (g *flowGate) waitOpen(ctx context.Context) bool {
	opened := make(chan struct{})
	if !g.wait(func() { close(opened) }) {
		return true
	}
	select {
	case <-opened:
		return true
	case <-ctx.Done():
		return g.open()
	}
}

// clientFlow is the gates one subscriber holds closed.
type clientFlow struct {
	drains atomic.Uint64 // OnDrain calls so far; written under mu
	mu     sync.Mutex
	held   []*channel // gates this client holds; guarded by mu
	closed bool       // the connection ended: hold nothing more; guarded by mu
}

// deliver queues push for c. When the queue is over its soft limit it
// closes the gate of ch (nil for pushes outside a channel).
func (c *client) deliver(push []byte, ch *channel) {
	seen := c.flow.drains.Load()
	if c.conn.Enqueue(push) == wsloop.Congested && ch != nil {
		c.hold(ch, seen)
	}
}

// hold closes ch's gate until c drains, unless c already holds it, or a
// drain ran since the Enqueue that reported congestion (seen), in which
// case no later OnDrain is promised and the gate stays open.
func (c *client) hold(ch *channel, seen uint64) {
	c.flow.mu.Lock()
	defer c.flow.mu.Unlock()
	if c.flow.closed || c.flow.drains.Load() != seen || slices.Contains(c.flow.held, ch) {
		return
	}
	c.flow.held = append(c.flow.held, ch)
	ch.flow.hold()
	c.srv.metrics.backpressured(bpGateHold)
}

// OnDrain implements wsloop.Handler: c's queue is back under its soft
// limit, so it opens the gates it held and runs its waiting commands.
func (c *client) OnDrain() {
	c.releaseGates(false)
	c.drained()
}

func (c *client) releaseGates(closing bool) {
	c.flow.mu.Lock()
	c.flow.drains.Add(1)
	held := c.flow.held
	c.flow.held = nil
	if closing {
		c.flow.closed = true
	}
	c.flow.mu.Unlock()
	for _, ch := range held {
		ch.flow.release()
	}
}

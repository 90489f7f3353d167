package hub

import (
	"sync"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// Pipelined publishes. With a broker that stores publishes asynchronously
// (broker.AsyncPublisher: the NATS broker), a connection's worker hands a
// publish to the broker and goes on with the next command instead of
// waiting for the store, so a connection's consecutive publishes are in
// flight together (and the broker sends those to one channel as one
// batch). Replies keep command order: each publish takes a slot in the
// connection's FIFO, and a slot's reply is queued only once every slot
// before it has been. Any other command first waits until no publish is
// in flight, so its reply, and whatever it reads, comes after theirs.

// Bounds of one connection's publishes in flight: past them its worker
// waits (and its reading stays paused) until the oldest is stored.
const (
	maxPipelined      = 128
	maxPipelinedBytes = 1 << 20 // data bytes; one larger publish goes alone
)

// pubs returns c's pipe, made on first use: most connections never
// publish, and the pipe would take a third of an idle client's memory. The
// transport's goroutine (publishInline) and the worker may both get here
// first.
func (c *client) pubs() *pubPipe {
	if p := c.pipe.Load(); p != nil {
		return p
	}
	p := &pubPipe{}
	p.cond.L = &p.mu
	if c.pipe.CompareAndSwap(nil, p) {
		return p
	}
	return c.pipe.Load()
}

// pubPipe is one connection's publishes in flight.
type pubPipe struct {
	mu    sync.Mutex
	cond  sync.Cond  // broadcast when slots leave; L is &mu (set by pubs)
	slots []*pubSlot // in command order; guarded by mu
	bytes int        // data bytes of slots; guarded by mu
}

// pubSlot is the reply of one publish in flight.
type pubSlot struct {
	size  int
	done  bool   // guarded by pubPipe.mu
	reply []byte // nil: no reply (the connection ended); guarded by pubPipe.mu
}

// add waits for room and appends a slot for a publish of size bytes.
func (p *pubPipe) add(size int) *pubSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.slots) > 0 && (len(p.slots) >= maxPipelined || p.bytes+size > maxPipelinedBytes) {
		p.cond.Wait()
	}
	s := &pubSlot{size: size}
	p.slots = append(p.slots, s)
	p.bytes += size
	return s
}

// tryAdd appends a slot for a publish of size bytes if there is room
// now, or returns nil.
func (p *pubPipe) tryAdd(size int) *pubSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.slots) > 0 && (len(p.slots) >= maxPipelined || p.bytes+size > maxPipelinedBytes) {
		return nil
	}
	s := &pubSlot{size: size}
	p.slots = append(p.slots, s)
	p.bytes += size
	return s
}

// wait waits until no publish is in flight. The broker completes each
// within its own bound, even after the connection ended.
func (p *pubPipe) wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.slots) > 0 {
		p.cond.Wait()
	}
}

// complete gives s its reply and queues, in order, the replies of the
// slots at the head that are complete. Enqueue never blocks, so it runs
// under the pipe's lock, which keeps the replies in order.
func (c *client) complete(s *pubSlot, reply []byte) {
	p := c.pipe.Load() // made before s was added
	p.mu.Lock()
	defer p.mu.Unlock()
	s.done, s.reply = true, reply
	n := 0
	for ; n < len(p.slots) && p.slots[n].done; n++ {
		if r := p.slots[n].reply; r != nil {
			c.enqueueReply(r)
		}
		p.bytes -= p.slots[n].size
		p.slots[n] = nil
	}
	if n == 0 {
		return
	}
	p.slots = p.slots[n:]
	if len(p.slots) == 0 {
		p.slots = nil
	}
	p.cond.Broadcast()
}

// publishInline hands a publish to the broker on the transport's
// goroutine, which must not block, when nothing can: the broker takes
// publishes asynchronously, nothing of c's is queued or running, the
// channel's gate is open and c has room for one more publish in flight.
// It reports whether it did; if not, the command goes to c's queue. A
// publisher then need not wait for a worker and for its reading to
// resume between publishes, which on a node busy writing to many
// subscribers costs a poller round each.
func (c *client) publishInline(cmd protocol.Command) bool {
	ap, ok := c.srv.broker.(broker.AsyncPublisher)
	if !ok || cmd.Op != protocol.OpPublish || !c.q.idle() || !c.gateOpen(cmd) {
		return false
	}
	slot := c.pubs().tryAdd(len(cmd.Data))
	if slot == nil {
		return false
	}
	c.startPublish(ap, cmd, slot)
	return true
}

// publishAsync runs a publish command through ap and returns once the
// broker has it; the reply goes out when it is stored, in command order.
func (c *client) publishAsync(ap broker.AsyncPublisher, cmd protocol.Command) {
	c.startPublish(ap, cmd, c.pubs().add(len(cmd.Data)))
}

// startPublish checks and hands one publish with its slot to ap.
func (c *client) startPublish(ap broker.AsyncPublisher, cmd protocol.Command, slot *pubSlot) {
	start := c.srv.metrics.start()
	failed := func(perr *protocol.Error) {
		if perr == nil { // the connection ended: nobody to reply to
			c.complete(slot, nil)
			return
		}
		c.srv.metrics.failed(perr.Code)
		c.complete(slot, protocol.AppendError(nil, cmd.ID, cmd.HasID, perr))
	}
	if _, perr := c.permit(permPublish, cmd.Channel); perr != nil {
		c.srv.metrics.ran(cmd.Op, start)
		failed(perr)
		return
	}
	ap.PublishAsync(c.ctx, cmd.Channel, c.info.User, cmd.Data, func(pos history.Position, err error) {
		c.srv.metrics.published(start)
		c.srv.metrics.ran(cmd.Op, start)
		if err != nil {
			failed(c.fail("publish", err))
			return
		}
		c.complete(slot, protocol.AppendOffsetReply(nil, cmd.ID, cmd.HasID, pos.Offset))
	})
}

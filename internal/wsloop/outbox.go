package wsloop

import (
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is one connection's bounded queue of encoded server objects, and
// the flag that says whether its consumer (a writer goroutine, or a flush
// scheduled on an event loop) is active. An idle connection's outbox holds
// no queue memory, and the consumer takes everything queued in one step.
//
// Limits: over the soft limits (objects queued, or bytes queued plus bytes
// taken but not yet accepted by the socket) Push reports Congested; at
// twice them it refuses the object. A shared total, when set, counts the
// bytes of every outbox that uses it.
type Outbox struct {
	softItems int
	softBytes int64
	total     *total // nil: no limit over connections

	mu        sync.Mutex
	items     [][]byte // guarded by mu
	size      int64    // bytes in items; guarded by mu
	pending   int64    // bytes taken but not yet written; guarded by mu
	active    bool     // a consumer runs or is scheduled; guarded by mu
	congested bool     // Push reported Congested since the last drain; guarded by mu
	overSince int64    // unix nanoseconds when it went over its soft limits; guarded by mu
	waiting   bool     // registered with total for a recheck; guarded by mu
	spare     [][]byte // an empty slice to install at the next Take; guarded by mu
	hint      int      // size of the last batch taken; guarded by mu
	peak      int      // most objects queued at once so far; guarded by mu
}

// total is the byte count over all connections of a Layer, with the
// outboxes that wait for it to fall under its soft limit.
type total struct {
	soft  int64
	bytes atomic.Int64

	mu      sync.Mutex
	waiters []func() // called once when bytes fall to soft or below; guarded by mu
}

func (t *total) over() bool { return t != nil && t.bytes.Load() > t.soft }

// add changes the count by n; when it falls to the soft limit or below it
// calls the waiters.
func (t *total) add(n int64) {
	if t == nil || n == 0 {
		return
	}
	now := t.bytes.Add(n)
	if n > 0 || now > t.soft || now-n <= t.soft {
		return
	}
	t.mu.Lock()
	w := t.waiters
	t.waiters = nil
	t.mu.Unlock()
	for _, f := range w {
		f()
	}
}

// wait registers f to run when the count falls to the soft limit or below;
// it runs f at once if it already is.
func (t *total) wait(f func()) {
	t.mu.Lock()
	if t.bytes.Load() <= t.soft {
		t.mu.Unlock()
		f()
		return
	}
	t.waiters = append(t.waiters, f)
	t.mu.Unlock()
}

// NewOutbox returns an empty outbox with soft limits of softItems objects
// and softBytes bytes (the hard limits are twice these).
func NewOutbox(softItems int, softBytes int64) *Outbox {
	return &Outbox{softItems: softItems, softBytes: softBytes}
}

// ownOverLocked reports whether the outbox is over its own soft limits.
func (o *Outbox) ownOverLocked() bool {
	return len(o.items) > o.softItems || o.size+o.pending > o.softBytes
}

// Push queues b. It reports Queued or Congested when b was queued and
// Dropped when b would take the outbox (or the total) past twice its soft
// limits; activate reports that the consumer was idle and the caller must
// start or schedule it. Push never blocks beyond the mutex.
func (o *Outbox) Push(b []byte) (p Pressure, activate bool) {
	n := int64(len(b))
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) >= 2*o.softItems || o.size+o.pending+n > 2*o.softBytes ||
		(o.total != nil && o.total.bytes.Load()+n > 2*o.total.soft) {
		return Dropped, false
	}
	if o.items == nil {
		// One allocation per batch: as large as the last one was.
		o.items = make([][]byte, 0, min(max(o.hint, 4), 2*o.softItems))
	}
	o.items = append(o.items, b)
	o.size += n
	o.peak = max(o.peak, len(o.items))
	o.total.add(n)
	activate = !o.active
	o.active = true
	own := o.ownOverLocked()
	if !own && !o.total.over() {
		return Queued, activate
	}
	o.congested = true
	if own && o.overSince == 0 {
		o.overSince = time.Now().UnixNano()
	}
	return Congested, activate
}

// Peak returns the most objects the outbox has held at once since it was
// made: its high-water mark.
func (o *Outbox) Peak() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.peak
}

// Len returns the number of objects queued and not yet taken.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}

// Activate marks the consumer active and reports whether it was idle (the
// caller must then start or schedule it).
func (o *Outbox) Activate() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	was := o.active
	o.active = true
	return !was
}

// Take returns everything queued and leaves the queue empty; the bytes
// taken count as pending until the consumer reports them written with
// Sent. The caller hands the batch back with Recycle once written, so that
// a busy connection allocates no queue memory.
func (o *Outbox) Take() [][]byte {
	o.mu.Lock()
	batch := o.items
	o.items, o.spare = o.spare, nil
	o.pending += o.size
	o.size = 0
	o.hint = len(batch)
	o.mu.Unlock()
	return batch
}

// Sent reports that of the bytes taken, remaining are still not accepted
// by the socket. drained reports that the outbox had been congested and is
// now back under its soft limits: the caller tells its handler (OnDrain).
// If it is under its own limits but the total is not, drained comes later:
// Sent arranges for recheck to run when the total falls.
func (o *Outbox) Sent(remaining int64, recheck func()) (drained bool) {
	o.mu.Lock()
	written := o.pending - remaining
	o.pending = remaining
	o.mu.Unlock()
	o.total.add(-written)
	return o.CheckDrain(recheck)
}

// CheckDrain is the drain test of Sent without a write: it reports whether
// a congested outbox is back under its soft limits.
func (o *Outbox) CheckDrain(recheck func()) bool {
	o.mu.Lock()
	if o.ownOverLocked() {
		o.mu.Unlock()
		return false
	}
	o.overSince = 0
	if !o.congested {
		o.mu.Unlock()
		return false
	}
	if !o.total.over() {
		o.congested = false
		o.mu.Unlock()
		return true
	}
	register := recheck != nil && !o.waiting
	o.waiting = o.waiting || register
	o.mu.Unlock()
	if register { // one registration at a time, so the waiter list stays bounded by connections
		o.total.wait(func() {
			o.mu.Lock()
			o.waiting = false
			o.mu.Unlock()
			recheck()
		})
	}
	return false
}

// OverSince returns when the outbox went over its own soft limits and has
// stayed over since (unix nanoseconds), or 0.
func (o *Outbox) OverSince() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.ownOverLocked() {
		o.overSince = 0
	}
	return o.overSince
}

// Recycle takes back a batch that Take returned, for reuse.
func (o *Outbox) Recycle(batch [][]byte) {
	if cap(batch) == 0 {
		return
	}
	clear(batch)
	o.mu.Lock()
	o.spare = batch[:0]
	o.mu.Unlock()
}

// Shrink drops the queue's memory if nothing is queued: an idle
// connection then holds none.
func (o *Outbox) Shrink() {
	o.mu.Lock()
	if len(o.items) == 0 {
		o.items, o.spare = nil, nil
	}
	o.mu.Unlock()
}

// Discard drops everything queued and pending, at the end of a connection.
func (o *Outbox) Discard() {
	o.mu.Lock()
	n := o.size + o.pending
	clear(o.items)
	o.items, o.spare, o.size, o.pending = nil, nil, 0, 0
	o.mu.Unlock()
	o.total.add(-n)
}

// Park lets the consumer go idle: it reports true, and the consumer is
// inactive, when nothing is queued; otherwise the consumer must go on.
func (o *Outbox) Park() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) > 0 {
		return false
	}
	o.active = false
	return true
}

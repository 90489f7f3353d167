package wsloop

import "sync"

// Outbox is one connection's bounded queue of encoded server objects, and
// the flag that says whether its consumer (a writer goroutine, or a flush
// scheduled on an event loop) is active. An idle connection's outbox holds
// no queue memory, and the consumer takes everything queued in one step.
type Outbox struct {
	maxItems int
	maxBytes int64

	mu     sync.Mutex
	items  [][]byte // guarded by mu
	size   int64    // bytes in items; guarded by mu
	active bool     // a consumer runs or is scheduled; guarded by mu
	spare  [][]byte // an empty slice to install at the next Take; guarded by mu
	hint   int      // size of the last batch taken; guarded by mu
}

// NewOutbox returns an empty outbox that holds at most maxItems objects
// and maxBytes bytes.
func NewOutbox(maxItems int, maxBytes int64) *Outbox {
	return &Outbox{maxItems: maxItems, maxBytes: maxBytes}
}

// Push queues b. ok reports whether it fit within both limits; activate,
// that the consumer was idle and the caller must start or schedule it;
// first, that the queue was empty before. Push never blocks beyond the
// mutex.
func (o *Outbox) Push(b []byte) (ok, activate, first bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) >= o.maxItems || o.size+int64(len(b)) > o.maxBytes {
		return false, false, false
	}
	first = len(o.items) == 0
	if o.items == nil {
		// One allocation per batch: as large as the last one was.
		o.items = make([][]byte, 0, min(max(o.hint, 4), o.maxItems))
	}
	o.items = append(o.items, b)
	o.size += int64(len(b))
	activate = !o.active
	o.active = true
	return true, activate, first
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

// Take returns everything queued and leaves the queue empty. The caller
// hands the batch back with Recycle once written, so that a busy
// connection allocates no queue memory.
func (o *Outbox) Take() [][]byte {
	o.mu.Lock()
	batch := o.items
	o.items, o.spare = o.spare, nil
	o.size = 0
	o.hint = len(batch)
	o.mu.Unlock()
	return batch
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

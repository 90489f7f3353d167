package hub

import "sync"

// outbox is one connection's bounded queue of encoded server objects. It
// is a mutex and a slice rather than a buffered channel so that an idle
// connection holds no queue memory (a channel of 1024 slots costs 24 KiB
// up front) and the writer takes everything queued in one step.
type outbox struct {
	maxItems int
	maxBytes int64
	ready    chan struct{} // capacity 1: signalled when items becomes non-empty

	mu      sync.Mutex
	items   [][]byte // guarded by mu
	size    int64    // bytes in items; guarded by mu
	writing bool     // a writer goroutine is running; guarded by mu
}

func newOutbox(maxItems int, maxBytes int64) *outbox {
	return &outbox{maxItems: maxItems, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push queues b and reports whether it fit within both limits, and whether
// the caller must start a writer (none was running). It never blocks
// beyond the mutex.
func (o *outbox) push(b []byte) (ok, startWriter bool) {
	o.mu.Lock()
	if len(o.items) >= o.maxItems || o.size+int64(len(b)) > o.maxBytes {
		o.mu.Unlock()
		return false, false
	}
	o.items = append(o.items, b)
	o.size += int64(len(b))
	first := len(o.items) == 1
	startWriter = !o.writing
	o.writing = true
	o.mu.Unlock()
	if first {
		o.signal()
	}
	return true, startWriter
}

// wake signals the writer and reports whether the caller must start one.
func (o *outbox) wake() (startWriter bool) {
	o.mu.Lock()
	startWriter = !o.writing
	o.writing = true
	o.mu.Unlock()
	o.signal()
	return startWriter
}

func (o *outbox) signal() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// park lets an idle writer exit: it reports true, and no writer runs,
// when nothing is queued; otherwise the writer must go on.
func (o *outbox) park() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) > 0 {
		return false
	}
	o.writing = false
	return true
}

// take moves everything queued into spare (whose contents it discards)
// and returns it. The caller passes the returned slice back as spare next
// time, so two slices alternate.
func (o *outbox) take(spare [][]byte) [][]byte {
	clear(spare)
	if cap(spare) > 256 { // a burst is over: don't keep its memory
		spare = nil
	}
	o.mu.Lock()
	batch := o.items
	o.items = spare[:0]
	o.size = 0
	o.mu.Unlock()
	return batch
}

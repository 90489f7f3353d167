package history

import (
	"context"
	"time"
)

// Eviction. Messages are dropped by their channel's Size and TTL, and by
// the store's memory cap; channel states are forgotten when idle and, under
// the cap, least recently used first. Two structures make each step O(1):
//
//   - a queue per distinct TTL lists the messages of every channel with
//     that TTL in the order they were appended, so the oldest are at its
//     head: the sweep pops expired heads, the cap pops the oldest head of
//     all queues. A message dropped otherwise (by Size, or by a read that
//     found it expired) leaves a stale entry, skipped at the head and
//     compacted away when stale entries outnumber live ones;
//   - a list of the channel states that hold no message and have no pin,
//     least recently used first: the ones that may be forgotten.

// ref names one held message in a queue.
type ref struct {
	ch     *channel
	offset uint64
}

// live reports whether the message r names is still held.
func (r ref) live() bool {
	n := r.ch.msgs.len()
	return !r.ch.dead && n > 0 && r.offset > r.ch.pos.Offset-uint64(n)
}

// queue is the append-ordered list of messages of channels with one TTL.
type queue struct {
	ttl   time.Duration
	refs  ring[ref]
	stale int // entries in refs whose message is no longer held
}

func (m *Memory) queueLocked(ttl time.Duration) *queue {
	for _, q := range m.queues {
		if q.ttl == ttl {
			return q
		}
	}
	q := &queue{ttl: ttl}
	m.queues = append(m.queues, q)
	return q
}

func (q *queue) add(m *Memory, r ref) {
	if q.refs.len() == q.refs.cap() {
		q.resize(m, max(2*q.refs.cap(), 16))
	}
	q.refs.push(r)
	if q.stale > 64 && q.stale > q.refs.len()/2 {
		q.compact(m)
	}
}

func (q *queue) resize(m *Memory, c int) {
	m.bytes -= ringBytes(q.refs.cap(), refSlotBytes)
	q.refs.resize(c)
	m.bytes += ringBytes(c, refSlotBytes)
}

// compact removes the stale entries and shrinks the buffer to fit.
func (q *queue) compact(m *Memory) {
	live := q.refs.len() - q.stale
	old := q.refs
	q.refs = ring[ref]{}
	m.bytes -= ringBytes(old.cap(), refSlotBytes)
	c := 16
	for c < 2*live {
		c *= 2
	}
	q.refs.resize(c)
	m.bytes += ringBytes(c, refSlotBytes)
	for i := range old.len() {
		if r := *old.at(i); r.live() {
			q.refs.push(r)
		}
	}
	q.stale = 0
}

// headLocked returns q's oldest live entry, popping stale ones, or false.
func (m *Memory) headLocked(q *queue) (ref, bool) {
	for q.refs.len() > 0 {
		if r := *q.refs.front(); r.live() {
			return r, true
		}
		m.popLocked(q)
		q.stale--
	}
	return ref{}, false
}

// popHeadLocked drops the message at q's live head r.
func (m *Memory) popHeadLocked(q *queue, r ref) {
	m.popLocked(q)
	m.dropOldestLocked(r.ch, true)
}

// popLocked removes q's head entry and shrinks q's buffer when it is
// mostly empty, so a burst does not keep its memory.
func (m *Memory) popLocked(q *queue) {
	q.refs.pop()
	if c := q.refs.cap(); c > 16 && q.refs.len() < c/4 {
		q.resize(m, c/2)
	}
}

// fitLocked evicts until the store is under its cap: each step drops the
// oldest message of all channels or forgets the least recently used
// channel state that holds no message and is not pinned, whichever is
// older. keep (the channel being served) is never forgotten. If nothing
// can go (only pinned states are left) the store stays over the cap.
func (m *Memory) fitLocked(keep *channel) {
	for m.bytes > m.max {
		var oldest *queue
		var oldestRef ref
		for _, q := range m.queues {
			if r, ok := m.headLocked(q); ok && (oldest == nil || r.ch.msgs.front().at < oldestRef.ch.msgs.front().at) {
				oldest, oldestRef = q, r
			}
		}
		idle := m.idleFrontLocked(keep)
		switch {
		case oldest != nil && (idle == nil || oldestRef.ch.msgs.front().at <= idle.used):
			m.popHeadLocked(oldest, oldestRef)
		case idle != nil:
			m.forgetLocked(idle)
		default:
			return
		}
	}
}

// idleFrontLocked returns the least recently used channel state that may
// be forgotten, other than keep, or nil.
func (m *Memory) idleFrontLocked(keep *channel) *channel {
	if ch := m.idle.front; ch != keep || ch == nil {
		return ch
	}
	return keep.next
}

// sweepBatch bounds the work of one hold of the lock in Sweep, so that
// Append (called from the hub's event loop) never waits long.
const sweepBatch = 1024

// Sweep drops expired messages, forgets channel states idle for IdleTTL
// and shrinks the channel map after a wave of channels went away. Run
// calls it every second; tests call it after moving their clock.
func (m *Memory) Sweep() {
	for !m.sweepSome(sweepBatch) {
	}
}

// sweepSome does up to budget steps of Sweep and reports whether it is done.
func (m *Memory) sweepSome(budget int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	for _, q := range m.queues {
		if q.ttl <= 0 {
			continue
		}
		for ; budget > 0; budget-- {
			r, ok := m.headLocked(q)
			if !ok || now-r.ch.msgs.front().at < int64(q.ttl) {
				break
			}
			m.popHeadLocked(q, r)
			if r.ch.msgs.len() == 0 && m.idleTTL > 0 && now-r.ch.used >= int64(m.idleTTL) && r.ch.pins == 0 {
				m.forgetLocked(r.ch)
			}
		}
	}
	for ; budget > 0 && m.idleTTL > 0; budget-- {
		ch := m.idle.front
		if ch == nil || now-ch.used < int64(m.idleTTL) {
			break
		}
		m.forgetLocked(ch)
	}
	if budget == 0 {
		return false
	}
	if m.mapHigh > 1024 && len(m.channels) < m.mapHigh/4 {
		// Go maps never shrink: copy the survivors into a new one.
		channels := make(map[string]*channel, len(m.channels))
		for name, ch := range m.channels {
			channels[name] = ch
		}
		m.channels = channels
		m.bytes += mapBytes(len(channels)) - mapBytes(m.mapHigh)
		m.mapHigh = len(channels)
	}
	return true
}

// Run calls Sweep every second until ctx ends. The memory broker's Run
// runs it.
func (m *Memory) Run(ctx context.Context) error {
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.Sweep()
		}
	}
}

// chanList is an intrusive doubly linked list of channel states.
type chanList struct {
	front, back *channel
}

func (l *chanList) pushBack(ch *channel) {
	ch.prev, ch.next = l.back, nil
	if l.back != nil {
		l.back.next = ch
	} else {
		l.front = ch
	}
	l.back = ch
}

func (l *chanList) remove(ch *channel) {
	if ch.prev != nil {
		ch.prev.next = ch.next
	} else {
		l.front = ch.next
	}
	if ch.next != nil {
		ch.next.prev = ch.prev
	} else {
		l.back = ch.prev
	}
	ch.prev, ch.next = nil, nil
}

func (l *chanList) moveToBack(ch *channel) {
	if l.back == ch {
		return
	}
	l.remove(ch)
	l.pushBack(ch)
}

package history

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/netkit/netkit/internal/protocol"
)

// DefaultMaxBytes is the memory cap of a Memory store configured with none.
const DefaultMaxBytes = 64 << 20

// sweepInterval is how often Run drops expired messages and idle channels.
// Reads never see expired messages whatever it is: they expire lazily too.
const sweepInterval = time.Second

// MemoryConfig configures a Memory store.
type MemoryConfig struct {
	// MaxBytes caps all the memory the store holds: messages, channel
	// states (name, offset, epoch) and bookkeeping. Over it the store
	// evicts the oldest message or least recently used idle channel
	// state, whichever is older. 0 means DefaultMaxBytes.
	MaxBytes int64
	// Limits returns a channel's limits (the hub resolves them from the
	// channel's namespace). It is called once per channel state, with the
	// store's lock held: it must be quick and must not call the store.
	// The store keeps one eviction queue per distinct TTL, so it should
	// return few distinct TTLs (one per namespace). Nil gives every
	// channel DefaultLimits.
	Limits func(channel string) Limits
	// IdleTTL is how long a channel that holds no message and has no
	// subscriber (no pin) keeps its sequence; after it the channel starts
	// again at offset 0 with a new epoch. 0 keeps sequences until the
	// memory cap needs the room.
	IdleTTL time.Duration
	// Now is the store's clock, for TTLs; nil is time.Now. Tests set it.
	Now func() time.Time
}

// Memory is an in-memory Store. Every channel's epoch is random, so after a
// restart of the process a client's old epoch never matches: its sequence
// restarted. Each message is encoded once; Append, Read and the broker's
// subscribers share those bytes.
type Memory struct {
	limits  func(string) Limits
	idleTTL time.Duration
	now     func() time.Time
	start   time.Time // clock origin: times are int64 nanoseconds since start
	max     int64

	mu       sync.Mutex
	channels map[string]*channel // guarded by mu
	mapHigh  int                 // most entries channels has had since it was made; guarded by mu
	idle     chanList            // channels with no message and no pin, least recently used first; guarded by mu
	queues   []*queue            // one per distinct TTL; guarded by mu
	bytes    int64               // accounted memory; guarded by mu
	messages int                 // messages held; guarded by mu
	rnd      *rand.ChaCha8       // epochs; guarded by mu
}

// channel is one channel's state.
type channel struct {
	name       string
	pos        Position
	lim        Limits
	q          *queue // the TTL queue of lim.TTL; nil when lim.Size is 0
	msgs       ring[message]
	used       int64 // last Append, read, pin or unpin
	pins       int
	idle       bool     // in Memory.idle: holds no message and has no pin
	dead       bool     // forgotten: removed from the map
	prev, next *channel // in Memory.idle
}

// message is one held message push.
type message struct {
	push []byte
	at   int64
}

// NewMemory returns an empty in-memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{
		limits:   cfg.Limits,
		idleTTL:  cfg.IdleTTL,
		now:      cfg.Now,
		max:      cfg.MaxBytes,
		channels: make(map[string]*channel),
	}
	if m.limits == nil {
		m.limits = func(string) Limits { return DefaultLimits }
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.max <= 0 {
		m.max = DefaultMaxBytes
	}
	m.start = m.now()
	var seed [32]byte
	crand.Read(seed[:])
	m.rnd = rand.NewChaCha8(seed)
	return m
}

// Stats is what a Memory store holds.
type Stats struct {
	Channels int   // channel states
	Messages int   // messages held
	Bytes    int64 // accounted memory, held under MaxBytes
}

// Stats returns what the store holds now.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Channels: len(m.channels), Messages: m.messages, Bytes: m.bytes}
}

func (m *Memory) clock() int64 { return int64(m.now().Sub(m.start)) }

// Append implements Store.
func (m *Memory) Append(_ context.Context, channel, from string, data json.RawMessage) (Position, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	ch := m.channelLocked(channel, now)
	ch.pos.Offset++
	var scratch [512]byte
	push := bytes.Clone(protocol.AppendMessage(scratch[:0], ch.name, ch.pos.Offset, from, data))
	if ch.lim.Size > 0 {
		m.expireLocked(ch, now)
		for ch.msgs.len() >= ch.lim.Size { // no shrink: the ring is refilled at once
			m.popMessageLocked(ch, false)
		}
		m.holdLocked(ch, message{push: push, at: now})
	}
	m.fitLocked(ch)
	return ch.pos, push, nil
}

// Position implements Store.
func (m *Memory) Position(_ context.Context, channel string) (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channelLocked(channel, m.clock())
	m.fitLocked(ch)
	return ch.pos, nil
}

// Read implements Store. With a Since in another epoch every message held
// is after it (the sequence restarted since), so Messages start at the
// oldest one; Recovered is false.
func (m *Memory) Read(_ context.Context, channel string, q Query) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	ch := m.channelLocked(channel, now)
	m.fitLocked(ch)
	m.expireLocked(ch, now)
	res := Result{Position: ch.pos}
	n := ch.msgs.len()
	first := ch.pos.Offset - uint64(n) + 1 // offset of the oldest message held
	from, count := n, 0                    // index and count of the messages returned
	switch {
	case q.Since == nil:
		count = n
		if q.Limit > 0 && q.Limit < n {
			count = q.Limit
		}
		from = n - count
	case q.Since.Epoch != ch.pos.Epoch:
		from, count = 0, n
	case q.Since.Offset > ch.pos.Offset: // not a position of this sequence
	default:
		after := q.Since.Offset
		res.Recovered = after == ch.pos.Offset || (n > 0 && after+1 >= first)
		from = 0
		if after >= first {
			from = int(after - first + 1)
		}
		count = n - from
	}
	if q.Since != nil && q.Limit > 0 && q.Limit < count {
		count = q.Limit
	}
	if count > 0 {
		res.Messages = make([][]byte, count)
		for i := range res.Messages {
			res.Messages[i] = ch.msgs.at(from + i).push
		}
	}
	return res, nil
}

// Pin implements Pinner.
func (m *Memory) Pin(channel string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channelLocked(channel, m.clock())
	ch.pins++
	m.idleLocked(ch)
	m.fitLocked(ch)
}

// Unpin implements Pinner. The channel's idle time starts now.
func (m *Memory) Unpin(channel string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch := m.channels[channel]; ch != nil && ch.pins > 0 {
		ch.pins--
		m.idleLocked(ch)
		m.touchLocked(ch, m.clock())
	}
}

// channelLocked returns channel's state, made if it has none, and marks it
// used at now.
func (m *Memory) channelLocked(name string, now int64) *channel {
	if ch := m.channels[name]; ch != nil {
		m.touchLocked(ch, now)
		return ch
	}
	lim := m.limits(name)
	lim.Size, lim.TTL = max(lim.Size, 0), max(lim.TTL, 0)
	// The name is cloned: the caller's string may point into a larger
	// buffer (a whole frame) that the store must not keep alive.
	ch := &channel{name: strings.Clone(name), pos: Position{Epoch: m.epochLocked()}, lim: lim, used: now}
	if lim.Size > 0 {
		ch.q = m.queueLocked(lim.TTL)
	}
	m.channels[ch.name] = ch
	if len(m.channels) > m.mapHigh {
		m.bytes += mapBytes(len(m.channels)) - mapBytes(m.mapHigh)
		m.mapHigh = len(m.channels)
	}
	m.idleLocked(ch)
	m.bytes += channelBytes(ch.name)
	return ch
}

// touchLocked marks ch used at now.
func (m *Memory) touchLocked(ch *channel, now int64) {
	ch.used = now
	if ch.idle {
		m.idle.moveToBack(ch)
	}
}

// idleLocked puts ch in the idle list or takes it out, after a change to
// its messages or pins.
func (m *Memory) idleLocked(ch *channel) {
	idle := ch.msgs.len() == 0 && ch.pins == 0
	switch {
	case idle && !ch.idle:
		m.idle.pushBack(ch)
	case !idle && ch.idle:
		m.idle.remove(ch)
	}
	ch.idle = idle
}

// epochLocked returns a new epoch: 8 hex digits from a generator seeded
// from crypto/rand, cheaper than a system call per channel.
func (m *Memory) epochLocked() string {
	var b [4]byte
	v := m.rnd.Uint64()
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return hex.EncodeToString(b[:])
}

// holdLocked adds msg to ch's history; ch has room under its Size.
func (m *Memory) holdLocked(ch *channel, msg message) {
	if ch.msgs.len() == ch.msgs.cap() {
		m.resizeLocked(ch, min(max(2*ch.msgs.cap(), 1), ch.lim.Size))
	}
	ch.msgs.push(msg)
	if ch.msgs.len() == 1 {
		m.idleLocked(ch)
	}
	m.messages++
	m.bytes += int64(cap(msg.push))
	ch.q.add(m, ref{ch: ch, offset: ch.pos.Offset})
}

// dropOldestLocked removes ch's oldest message and frees what its ring no
// longer needs. viaQueue says the caller popped its queue entry; otherwise
// that entry is now stale.
func (m *Memory) dropOldestLocked(ch *channel, viaQueue bool) {
	m.popMessageLocked(ch, viaQueue)
	switch n, c := ch.msgs.len(), ch.msgs.cap(); {
	case n == 0:
		m.resizeLocked(ch, 0)
		m.idleLocked(ch)
	case c > 8 && n < c/4:
		m.resizeLocked(ch, c/2)
	}
}

// popMessageLocked removes ch's oldest message; see dropOldestLocked.
func (m *Memory) popMessageLocked(ch *channel, viaQueue bool) {
	msg := ch.msgs.pop()
	m.messages--
	m.bytes -= int64(cap(msg.push))
	if !viaQueue {
		ch.q.stale++
	}
}

func (m *Memory) resizeLocked(ch *channel, c int) {
	m.bytes -= ringBytes(ch.msgs.cap(), messageSlotBytes)
	ch.msgs.resize(c)
	m.bytes += ringBytes(c, messageSlotBytes)
}

func ringBytes(slots int, slot int64) int64 {
	if slots == 0 {
		return 0
	}
	return allocSize(int64(slots) * slot)
}

// expireLocked drops ch's messages older than its TTL.
func (m *Memory) expireLocked(ch *channel, now int64) {
	if ch.lim.TTL <= 0 {
		return
	}
	for ch.msgs.len() > 0 && now-ch.msgs.front().at >= int64(ch.lim.TTL) {
		m.dropOldestLocked(ch, false)
	}
}

// forgetLocked removes ch's state; it holds no message.
func (m *Memory) forgetLocked(ch *channel) {
	delete(m.channels, ch.name)
	if ch.idle {
		m.idle.remove(ch)
		ch.idle = false
	}
	ch.dead = true
	m.bytes -= channelBytes(ch.name)
}

// Package history owns each channel's offset sequence: the offset of its
// last message and the epoch that names the sequence. A Store decides the
// offset of every publication; the broker calls it once per message.
package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Position is where a channel's sequence stands: the offset of its last
// message (0 if none) and the epoch that names the sequence.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Store assigns offsets. Implementations must be safe for concurrent use;
// callers serialise Append per channel when they need delivery order to
// match offset order.
type Store interface {
	// Append records one message on channel and returns its position.
	Append(ctx context.Context, channel string) (Position, error)
	// Position returns the channel's current position without changing it.
	// A channel never published to gets offset 0 and a fresh epoch, which
	// stays its epoch once it has messages.
	Position(ctx context.Context, channel string) (Position, error)
}

// Memory is an in-memory Store. Every channel's epoch is random, so after a
// restart of the process a client's old epoch never matches: its sequence
// restarted.
type Memory struct {
	mu       sync.Mutex
	channels map[string]*memChannel // guarded by mu
}

type memChannel struct {
	pos  Position
	used time.Time // last Append or Position
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{channels: make(map[string]*memChannel)}
}

// Append implements Store.
func (m *Memory) Append(_ context.Context, channel string) (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channelLocked(channel)
	ch.pos.Offset++
	return ch.pos, nil
}

// Position implements Store.
func (m *Memory) Position(_ context.Context, channel string) (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.channelLocked(channel).pos, nil
}

func (m *Memory) channelLocked(channel string) *memChannel {
	ch := m.channels[channel]
	if ch == nil {
		ch = &memChannel{pos: Position{Epoch: NewEpoch()}}
		m.channels[channel] = ch
	}
	ch.used = time.Now()
	return ch
}

// Evict forgets the sequences of channels unused since before and for which
// keep returns false. A forgotten channel starts again at offset 0 with a new
// epoch, so clients that remember the old epoch see that it restarted.
// It returns how many channels it evicted.
func (m *Memory) Evict(before time.Time, keep func(channel string) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for name, ch := range m.channels {
		if ch.used.Before(before) && !keep(name) {
			delete(m.channels, name)
			n++
		}
	}
	return n
}

// Len returns how many channel sequences the store holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.channels)
}

// NewEpoch returns a random epoch name (8 hex digits).
func NewEpoch() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// Memory is the single-process Broker: publications go straight to the
// node's Handler.
type Memory struct {
	store   history.Store
	pinner  history.Pinner // store's, or nil
	handler Handler

	mu       sync.Mutex
	channels map[string]*memChannel           // guarded by mu
	presence map[string][]protocol.ClientInfo // channel -> clients sorted by id; guarded by mu
}

// memChannel serialises a channel's offsets with their delivery.
type memChannel struct {
	seq  sync.Mutex   // held from Append to the end of delivery
	refs atomic.Int64 // local subscribers; written under seq
	dead bool         // removed from Memory.channels; guarded by seq
}

// runner is implemented by stores with background work
// (history.Memory's sweeps).
type runner interface {
	Run(ctx context.Context) error
}

// NewMemory returns a broker that delivers to h and takes offsets, encoded
// pushes and history from store. If the store is a history.Pinner, the
// broker pins each channel while it has subscribers, so that the store
// never forgets their sequence.
func NewMemory(store history.Store, h Handler) *Memory {
	pinner, _ := store.(history.Pinner)
	return &Memory{
		store:    store,
		pinner:   pinner,
		handler:  h,
		channels: make(map[string]*memChannel),
		presence: make(map[string][]protocol.ClientInfo),
	}
}

// NonBlocking implements Broker: every method only takes short locks.
func (b *Memory) NonBlocking() bool { return true }

// Run runs the store's background work (history.Memory drops expired
// messages and forgets idle channels) until ctx ends.
func (b *Memory) Run(ctx context.Context) error {
	if r, ok := b.store.(runner); ok {
		return r.Run(ctx)
	}
	<-ctx.Done()
	return nil
}

// lock returns channel's live memChannel with its seq held.
func (b *Memory) lock(channel string) *memChannel {
	for {
		b.mu.Lock()
		ch := b.channels[channel]
		if ch == nil {
			ch = &memChannel{}
			b.channels[channel] = ch
		}
		b.mu.Unlock()
		ch.seq.Lock()
		if !ch.dead {
			return ch
		}
		ch.seq.Unlock()
	}
}

// Publish implements Broker.
func (b *Memory) Publish(ctx context.Context, channel, from string, data json.RawMessage) (history.Position, error) {
	ch := b.lock(channel)
	defer ch.seq.Unlock()
	pos, push, err := b.store.Append(ctx, channel, from, data)
	if err != nil {
		b.release(channel, ch)
		return pos, fmt.Errorf("broker: publish %s: %w", channel, err)
	}
	if ch.refs.Load() > 0 {
		b.handler.HandlePublication(Publication{Channel: channel, Offset: pos.Offset, Epoch: pos.Epoch, From: from, Data: data, Push: push})
	}
	b.release(channel, ch)
	return pos, nil
}

// release drops channel's memChannel when nobody subscribes to it; ch.seq
// is held.
func (b *Memory) release(channel string, ch *memChannel) {
	if ch.refs.Load() > 0 {
		return
	}
	b.mu.Lock()
	if b.channels[channel] == ch {
		delete(b.channels, channel)
	}
	b.mu.Unlock()
	ch.dead = true
}

// Subscribe implements Broker. The channel's seq lock, which every
// Publish holds from Append to delivery, makes the read and fn one moment.
func (b *Memory) Subscribe(ctx context.Context, channel string, q *history.Query, fn func(history.Result)) error {
	ch := b.lock(channel)
	defer ch.seq.Unlock()
	// Pin first: the store must not forget the sequence between the read
	// and the first publication the subscriber gets.
	if b.pinner != nil {
		b.pinner.Pin(channel)
	}
	var res history.Result
	var err error
	if q != nil {
		res, err = b.store.Read(ctx, channel, *q)
	} else {
		res.Position, err = b.store.Position(ctx, channel)
	}
	if err != nil {
		if b.pinner != nil {
			b.pinner.Unpin(channel)
		}
		b.release(channel, ch)
		return fmt.Errorf("broker: subscribe %s: %w", channel, err)
	}
	ch.refs.Add(1)
	fn(res)
	return nil
}

// Unsubscribe implements Broker.
func (b *Memory) Unsubscribe(_ context.Context, channel string) error {
	ch := b.lock(channel)
	defer ch.seq.Unlock()
	if ch.refs.Load() > 0 {
		ch.refs.Add(-1)
		if b.pinner != nil {
			b.pinner.Unpin(channel)
		}
	}
	b.release(channel, ch)
	return nil
}

// Join implements Broker.
func (b *Memory) Join(_ context.Context, channel string, c protocol.ClientInfo, notify bool) error {
	b.mu.Lock()
	list := b.presence[channel]
	i, found := slices.BinarySearchFunc(list, c.Client, byClient)
	if found {
		list[i] = c
	} else {
		b.presence[channel] = slices.Insert(list, i, c)
	}
	b.mu.Unlock()
	if notify {
		b.notify(channel, true, c)
	}
	return nil
}

// byClient orders presence lists (a sorted slice costs a channel with
// few members far less than a map).
func byClient(c protocol.ClientInfo, id string) int { return strings.Compare(c.Client, id) }

// Leave implements Broker.
func (b *Memory) Leave(_ context.Context, channel string, c protocol.ClientInfo, notify bool) error {
	b.mu.Lock()
	list := b.presence[channel]
	i, was := slices.BinarySearchFunc(list, c.Client, byClient)
	switch {
	case was && len(list) == 1:
		delete(b.presence, channel)
	case was:
		b.presence[channel] = slices.Delete(list, i, i+1)
	}
	b.mu.Unlock()
	if notify && was {
		b.notify(channel, false, c)
	}
	return nil
}

func (b *Memory) notify(channel string, join bool, c protocol.ClientInfo) {
	ch := b.lock(channel)
	defer ch.seq.Unlock()
	if ch.refs.Load() > 0 {
		b.handler.HandleJoinLeave(channel, join, c)
	}
	b.release(channel, ch)
}

// Presence implements Broker. Clients are sorted by client id.
func (b *Memory) Presence(_ context.Context, channel string) ([]protocol.ClientInfo, error) {
	b.mu.Lock()
	out := slices.Clone(b.presence[channel])
	b.mu.Unlock()
	if out == nil {
		out = []protocol.ClientInfo{}
	}
	return out, nil
}

// Send implements Broker.
func (b *Memory) Send(_ context.Context, user string, push []byte) (int, error) {
	return b.handler.HandleDirect(user, push), nil
}

// DisconnectUser implements Broker.
func (b *Memory) DisconnectUser(_ context.Context, user string) (int, error) {
	return b.handler.HandleDisconnectUser(user), nil
}

// Channels implements Broker. Channels are sorted by name.
func (b *Memory) Channels(ctx context.Context) ([]ChannelInfo, error) {
	type entry struct {
		name string
		ch   *memChannel
	}
	b.mu.Lock()
	list := make([]entry, 0, len(b.channels))
	for name, ch := range b.channels {
		list = append(list, entry{name, ch})
	}
	b.mu.Unlock()
	out := make([]ChannelInfo, 0, len(list))
	for _, e := range list {
		n := e.ch.refs.Load()
		if n <= 0 {
			continue
		}
		pos, err := b.store.Position(ctx, e.name)
		if err != nil {
			return nil, err
		}
		out = append(out, ChannelInfo{Channel: e.name, Subscribers: int(n), Offset: pos.Offset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out, nil
}

// Position implements Broker.
func (b *Memory) Position(ctx context.Context, channel string) (history.Position, error) {
	return b.store.Position(ctx, channel)
}

// History implements Broker. The store answers from one consistent moment
// of the channel; no publication needs to be held back for it.
func (b *Memory) History(ctx context.Context, channel string, q history.Query) (history.Result, error) {
	return b.store.Read(ctx, channel, q)
}

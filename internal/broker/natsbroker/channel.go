package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// Offsets. A channel's offset is the count of publications to it; each
// stream message carries the offset of its last publication in a header
// (message.go: a message holds one publication, or a batch). A node
// publishes a message after the channel's last one (stream sequence S,
// offset k) with Nats-Expected-Last-Subject-Sequence: S, so JetStream
// stores it only if nothing was stored on the channel in between, on any
// node: offsets are contiguous and unique cluster-wide. A node keeps one
// such publish in flight per channel and remembers (S, k) from its last
// one; what is published meanwhile goes as one batch after it
// (publish.go). A conflict (another node published) rereads the last
// message and retries.
//
// Delivery. The stream republishes each message it stored on a core
// subject per channel; a node with subscribers to a channel subscribes to
// it and gets each message once, whatever its number of local
// subscribers. Each message names the sequence of the one before it in
// its channel (a header), so a node that sees offset k+2 after k fetches
// k+1 from the stream before delivering k+2: no gap, even across a
// reconnect, and duplicates (offset at or below the last delivered) are
// dropped.

// chanState is a channel with local subscribers.
type chanState struct {
	mu    sync.Mutex // held while delivering, subscribing and unsubscribing
	refs  int        // local subscribers; guarded by mu
	last  uint64     // offset of the last publication handed to the Handler; guarded by mu
	epoch string     // its epoch; guarded by mu
	subs  []*nats.Subscription
	// own is what this node stored on the channel and has not handed to
	// the Handler itself yet (publish.go sends the next batch first), in
	// offset order: a later message from the wire that arrives first is
	// preceded by these rather than by a read from the stream. At most a
	// few; guarded by mu.
	own []message
}

// last returns channel's last message in the stream.
func (b *Broker) last(ctx context.Context, a *assets, channel string) (message, bool, error) {
	raw, err := a.stream.GetLastMsgForSubject(ctx, subjChannel+enc(channel))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return message{}, false, nil
	}
	if err != nil {
		return message{}, false, err
	}
	m, err := fromRaw(raw)
	return m, err == nil, err
}

// Epochs. The epoch bucket holds each channel's epoch: "E" while the
// channel has had no message in it, "E!" once a sequence started with
// it. A sequence starts when a publish finds no message in the channel:
// then a fresh "E" becomes "E!" (the epoch a reader of the empty channel
// saw stays valid), and a used one is replaced, since the messages it
// numbered are gone and their offsets start again at 1.

// emptyEpoch returns the epoch of a channel with no message: the one its
// first message will get.
func (b *Broker) emptyEpoch(ctx context.Context, a *assets, channel string) (string, error) {
	key := enc(channel)
	for range maxConflicts {
		e, err := a.epochs.Get(ctx, key)
		epoch := history.NewEpoch()
		switch {
		case err == nil && !strings.HasSuffix(string(e.Value()), "!"):
			return string(e.Value()), nil
		case err == nil: // its messages are gone: the next sequence gets a new epoch
			_, err = a.epochs.Update(ctx, key, []byte(epoch), e.Revision())
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = a.epochs.Create(ctx, key, []byte(epoch))
		}
		if err == nil {
			return epoch, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", err
		}
	}
	return "", fmt.Errorf("epoch of %s: too many conflicts", channel)
}

// startEpoch marks the epoch of a channel whose sequence starts now.
func (b *Broker) startEpoch(ctx context.Context, a *assets, channel string) (string, error) {
	key := enc(channel)
	for range maxConflicts {
		e, err := a.epochs.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			epoch := history.NewEpoch()
			if _, err := a.epochs.Create(ctx, key, []byte(epoch+"!")); err == nil {
				return epoch, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", err
		}
		epoch, used := strings.CutSuffix(string(e.Value()), "!")
		if used {
			epoch = history.NewEpoch()
		}
		if _, err := a.epochs.Update(ctx, key, []byte(epoch+"!"), e.Revision()); err == nil {
			return epoch, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", err
		}
	}
	return "", fmt.Errorf("epoch of %s: too many conflicts", channel)
}

// lockChannel returns channel's state with its mu held, made if needed.
func (b *Broker) lockChannel(channel string) *chanState {
	b.mu.Lock()
	cs := b.channels[channel]
	if cs == nil {
		cs = &chanState{}
		b.channels[channel] = cs
	}
	b.mu.Unlock()
	cs.mu.Lock()
	return cs
}

// dropLocked forgets cs when it has no subscriber; cs.mu is held.
func (b *Broker) dropLocked(channel string, cs *chanState) {
	if cs.refs > 0 {
		return
	}
	for _, s := range cs.subs {
		s.Unsubscribe()
	}
	cs.subs = nil
	b.mu.Lock()
	if b.channels[channel] == cs {
		delete(b.channels, channel)
	}
	b.mu.Unlock()
}

// Subscribe implements broker.Broker. The channel's mu, which every
// delivery holds, makes the read, the catch-up and fn one moment: a
// first subscriber subscribes to the subject and flushes before reading,
// so every message after the read arrives; a later one first delivers
// what was published up to the read.
func (b *Broker) Subscribe(ctx context.Context, channel string, q *history.Query, fn func(history.Result)) error {
	a, err := b.get(ctx)
	if err != nil {
		return fmt.Errorf("natsbroker: subscribe %s: %w", channel, err)
	}
	cs := b.lockChannel(channel)
	defer cs.mu.Unlock()
	if cs.refs == 0 && cs.subs == nil {
		if err := b.subscribeSubjects(channel, cs); err != nil {
			b.dropLocked(channel, cs)
			return fmt.Errorf("natsbroker: subscribe %s: %w", channel, unavailable(err))
		}
	}
	query := history.Query{}
	if q != nil {
		query = *q
	}
	res, last, err := b.read(ctx, a, channel, query, q != nil)
	if err != nil {
		b.dropLocked(channel, cs)
		return fmt.Errorf("natsbroker: subscribe %s: %w", channel, unavailable(err))
	}
	if cs.refs == 0 {
		cs.last, cs.epoch = res.Position.Offset, res.Position.Epoch
	} else if err := b.catchUpLocked(ctx, a, channel, cs, last); err != nil {
		b.log.Warn("natsbroker: catch up", "channel", channel, "err", err)
	}
	cs.refs++
	fn(res)
	return nil
}

// subscribeSubjects subscribes the node to channel's messages and events
// and makes sure the server has the interest before returning.
func (b *Broker) subscribeSubjects(channel string, cs *chanState) error {
	msgs, err := b.nc.Subscribe(subjStored+enc(channel), func(m *nats.Msg) { b.onMessage(channel, cs, m) })
	if err != nil {
		return err
	}
	events, err := b.nc.Subscribe(subjJoinLeave+enc(channel), func(m *nats.Msg) { b.onJoinLeave(channel, cs, m) })
	if err != nil {
		msgs.Unsubscribe()
		return err
	}
	for _, s := range []*nats.Subscription{msgs, events} {
		s.SetPendingLimits(-1, 64<<20) // bounded in bytes; a slow node drops and refills from the stream
	}
	cs.subs = []*nats.Subscription{msgs, events}
	return b.nc.Flush()
}

// onMessage delivers one message that arrived on the wire, after any it
// missed.
func (b *Broker) onMessage(channel string, cs *chanState, nm *nats.Msg) {
	m, err := parse(nm.Header, nm.Data)
	if err != nil {
		b.log.Warn("natsbroker: bad message", "channel", channel, "err", err)
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.refs == 0 || m.offset <= cs.last && m.epoch == cs.epoch {
		return
	}
	if m.epoch != cs.epoch { // the sequence restarted (its messages expired)
		cs.last, cs.epoch = 0, m.epoch
	}
	b.ownLocked(channel, cs)
	if m.offset <= cs.last {
		return
	}
	if m.first() > cs.last+1 && m.prevSeq != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if a, err := b.get(ctx); err == nil {
			if err := b.fillLocked(ctx, a, channel, cs, m.prevSeq, m.first()-1); err != nil {
				b.log.Warn("natsbroker: missed messages not recovered", "channel", channel, "from", cs.last+1, "to", m.first()-1, "err", err)
			}
		}
	}
	b.deliverLocked(channel, cs, m)
}

// deliverLocked hands m's publications after cs.last to the Handler; m
// is in cs.epoch.
func (b *Broker) deliverLocked(channel string, cs *chanState, m message) {
	publication := func(i int) broker.Publication {
		p, off := m.pubs[i], m.first()+uint64(i)
		return broker.Publication{
			Channel: channel, Offset: off, Epoch: m.epoch, From: p.from, Data: p.data,
			Push: protocol.AppendMessage(nil, channel, off, p.from, p.data),
		}
	}
	skip := 0 // publications at or before cs.last
	if m.epoch == cs.epoch && cs.last >= m.first() {
		skip = int(min(cs.last-m.first()+1, uint64(len(m.pubs))))
	}
	bh, batched := b.handler.(broker.BatchHandler)
	if batched && len(m.pubs)-skip > 1 {
		pubs := make([]broker.Publication, 0, len(m.pubs)-skip)
		for i := skip; i < len(m.pubs); i++ {
			pubs = append(pubs, publication(i))
		}
		bh.HandlePublications(pubs)
	} else {
		for i := skip; i < len(m.pubs); i++ {
			b.handler.HandlePublication(publication(i))
		}
	}
	cs.last, cs.epoch = m.offset, m.epoch
	for len(cs.own) > 0 && (cs.own[0].offset <= cs.last || cs.own[0].epoch != cs.epoch) {
		cs.own = cs.own[1:]
	}
	if len(cs.own) == 0 {
		cs.own = nil
	}
}

// ownLocked delivers, in order, the messages this node stored that
// follow cs.last.
func (b *Broker) ownLocked(channel string, cs *chanState) {
	for len(cs.own) > 0 && cs.own[0].epoch == cs.epoch && cs.own[0].first() == cs.last+1 {
		b.deliverLocked(channel, cs, cs.own[0])
	}
}

// channelState is the state of a channel with local subscribers, or nil.
func (b *Broker) channelState(channel string) *chanState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.channels[channel]
}

// stash makes m, just stored by this node, deliverable before the
// messages after it (chanState.own).
func (b *Broker) stash(channel string, m message) {
	cs := b.channelState(channel)
	if cs == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.refs > 0 && (m.epoch != cs.epoch || m.offset > cs.last) {
		cs.own = append(cs.own, m)
	}
}

// catchUpLocked delivers what was published to channel up to last (the
// channel's last message, or none) and not delivered yet.
func (b *Broker) catchUpLocked(ctx context.Context, a *assets, channel string, cs *chanState, last *message) error {
	if last == nil || last.offset <= cs.last && last.epoch == cs.epoch {
		return nil
	}
	if last.epoch != cs.epoch { // the sequence restarted: deliver from its start
		cs.last, cs.epoch = 0, last.epoch
	}
	b.ownLocked(channel, cs)
	if last.offset <= cs.last {
		return nil
	}
	if last.first() > cs.last+1 {
		if err := b.fillLocked(ctx, a, channel, cs, last.prevSeq, last.first()-1); err != nil {
			return err
		}
	}
	b.deliverLocked(channel, cs, *last)
	return nil
}

// fillLocked delivers the publications after cs.last up to offset to,
// the last of the stream message at sequence seq, walking back along the
// messages' Netkit-Prev headers. Messages the stream no longer holds are
// skipped.
func (b *Broker) fillLocked(ctx context.Context, a *assets, channel string, cs *chanState, seq, to uint64) error {
	if to <= cs.last || seq == 0 {
		return nil
	}
	get, err := b.before(ctx, a, channel, seq+1, to-cs.last, 0)
	if err != nil {
		return err
	}
	var missed []message
	for off := to; off > cs.last && seq != 0; off = missed[len(missed)-1].first() - 1 {
		m, ok, err := get(seq)
		if err != nil {
			return err
		}
		if !ok || m.offset != off || m.epoch != cs.epoch {
			break
		}
		missed = append(missed, m)
		seq = m.prevSeq
	}
	for i := len(missed) - 1; i >= 0; i-- {
		b.deliverLocked(channel, cs, missed[i])
	}
	return nil
}

// catchUpAll brings every subscribed channel up to the stream after a
// reconnect, since core messages sent meanwhile were lost.
func (b *Broker) catchUpAll(ctx context.Context) {
	b.mu.Lock()
	names := make([]string, 0, len(b.channels))
	for name := range b.channels {
		names = append(names, name)
	}
	b.mu.Unlock()
	a, err := b.get(ctx)
	if err != nil {
		return
	}
	for _, name := range names {
		b.mu.Lock()
		cs := b.channels[name]
		b.mu.Unlock()
		if cs == nil {
			continue
		}
		cs.mu.Lock()
		if cs.refs > 0 {
			if last, ok, err := b.last(ctx, a, name); err == nil && ok {
				b.catchUpLocked(ctx, a, name, cs, &last)
			}
		}
		cs.mu.Unlock()
	}
}

// Unsubscribe implements broker.Broker. It first delivers what was
// published up to now, so nothing in flight is handed over after it.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	cs := b.channelState(channel)
	if cs == nil {
		return nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.refs == 0 {
		return nil
	}
	if a, err := b.get(ctx); err == nil {
		if last, ok, err := b.last(ctx, a, channel); err == nil && ok {
			if err := b.catchUpLocked(ctx, a, channel, cs, &last); err != nil {
				b.log.Warn("natsbroker: catch up", "channel", channel, "err", err)
			}
		}
	}
	cs.refs--
	b.dropLocked(channel, cs)
	return nil
}

// Channels implements broker.Broker: this node's channels with their
// local subscriber counts and cluster-wide offsets.
func (b *Broker) Channels(ctx context.Context) ([]broker.ChannelInfo, error) {
	b.mu.Lock()
	type entry struct {
		name string
		cs   *chanState
	}
	list := make([]entry, 0, len(b.channels))
	for name, cs := range b.channels {
		list = append(list, entry{name, cs})
	}
	b.mu.Unlock()
	out := make([]broker.ChannelInfo, 0, len(list))
	for _, e := range list {
		e.cs.mu.Lock()
		n := e.cs.refs
		e.cs.mu.Unlock()
		if n == 0 {
			continue
		}
		pos, err := b.Position(ctx, e.name)
		if err != nil {
			return nil, err
		}
		out = append(out, broker.ChannelInfo{Channel: e.name, Subscribers: n, Offset: pos.Offset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out, nil
}

// Position implements broker.Broker.
func (b *Broker) Position(ctx context.Context, channel string) (history.Position, error) {
	a, err := b.get(ctx)
	if err != nil {
		return history.Position{}, fmt.Errorf("natsbroker: position %s: %w", channel, err)
	}
	res, _, err := b.read(ctx, a, channel, history.Query{}, false)
	if err != nil {
		return history.Position{}, fmt.Errorf("natsbroker: position %s: %w", channel, unavailable(err))
	}
	return res.Position, nil
}

// History implements broker.Broker.
func (b *Broker) History(ctx context.Context, channel string, q history.Query) (history.Result, error) {
	a, err := b.get(ctx)
	if err != nil {
		return history.Result{}, fmt.Errorf("natsbroker: history %s: %w", channel, err)
	}
	res, _, err := b.read(ctx, a, channel, q, true)
	if err != nil {
		return history.Result{}, fmt.Errorf("natsbroker: history %s: %w", channel, unavailable(err))
	}
	return res, nil
}

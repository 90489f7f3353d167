package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/history"
)

// Publishing. A node keeps one JetStream publish in flight per channel.
// Publishes to a channel that arrive while its previous one is in flight
// wait in the channel's queue; when the acknowledgement comes, everything
// queued goes as one stream message (a batch, message.go), checked with
// Nats-Expected-Last-Subject-Sequence like a single one. So a channel
// costs one JetStream round trip per batch, not per publish, and the
// batch is stored whole or not at all. A conflict (another node stored a
// message on the channel first) rereads the channel's last message and
// sends the same batch again with the offsets after it.

// maxPubCache bounds the per-channel publish states kept while idle.
const maxPubCache = 4096

// maxConflicts bounds the retries of one batch that keeps losing races.
const maxConflicts = 1000

// publishTimeout bounds one JetStream publish of a batch.
const publishTimeout = 10 * time.Second

// maxBatchBytes bounds a batch's body; NATS's max_payload, when smaller,
// bounds it too. A single publication larger than that goes alone.
const maxBatchBytes = 256 << 10

// pending is one publish waiting to be sent.
type pending struct {
	ctx  context.Context
	pub  pub
	done func(history.Position, error)
}

// pubState sequences one channel's publishes from this node.
type pubState struct {
	queue   []pending // guarded by Broker.mu
	sending bool      // a sender goroutine runs for the channel; guarded by Broker.mu

	// Owned by the sender goroutine.
	known bool // seq, off and epoch are the channel's last message as far as this node knows
	seq   uint64
	off   uint64
	epoch string
}

// Publish implements broker.Broker: it waits for PublishAsync's outcome.
func (b *Broker) Publish(ctx context.Context, channel, from string, data json.RawMessage) (history.Position, error) {
	type result struct {
		pos history.Position
		err error
	}
	res := make(chan result, 1)
	b.PublishAsync(ctx, channel, from, data, func(pos history.Position, err error) { res <- result{pos, err} })
	r := <-res // the batch's publish is bounded by publishTimeout
	return r.pos, r.err
}

// PublishAsync implements broker.AsyncPublisher. It queues the publish
// and returns without blocking (a node that is not connected to NATS
// refuses it at once with ErrUnavailable); done runs once JetStream
// stored it (after its hand-over to this node's subscribers), or failed. The publishes of one channel
// are stored in the order of the calls, and their done calls run in that
// order. A publish whose ctx ends before it is sent is not sent.
func (b *Broker) PublishAsync(ctx context.Context, channel, from string, data json.RawMessage, done func(history.Position, error)) {
	if err := ctx.Err(); err != nil {
		done(history.Position{}, fmt.Errorf("natsbroker: publish %s: %w", channel, err))
		return
	}
	// Only the connection is checked here: a setup under way (after every
	// connect) is waited for by the sender, not by the caller.
	if !b.nc.IsConnected() {
		done(history.Position{}, fmt.Errorf("natsbroker: publish %s: %w", channel, ErrUnavailable))
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		done(history.Position{}, fmt.Errorf("natsbroker: publish %s: %w", channel, ErrUnavailable))
		return
	}
	ps := b.pubs[channel]
	if ps == nil {
		if len(b.pubs) >= maxPubCache {
			for name, p := range b.pubs {
				if !p.sending {
					delete(b.pubs, name)
					break
				}
			}
		}
		ps = &pubState{}
		b.pubs[channel] = ps
	}
	ps.queue = append(ps.queue, pending{ctx: ctx, pub: pub{from: from, data: data}, done: done})
	start := !ps.sending
	ps.sending = true
	b.mu.Unlock()
	if start {
		b.senders.Go(func() { b.send(channel, ps) })
	}
}

// flight is one batch sent to JetStream, or stored and not yet reported.
type flight struct {
	live []pending
	m    message                // the stream message; m.seq is set once stored
	ack  jetstream.PubAckFuture // its acknowledgement, once sent
}

// send publishes channel's queue, a batch at a time, until it is empty.
// It overlaps two batches: as soon as one is stored, the next is sent
// (it needs the sequence of the one before), and only then is the stored
// one handed to the local subscribers and its publishes told, while the
// next is on its way.
func (b *Broker) send(channel string, ps *pubState) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stored *flight // stored, not yet delivered and reported
	for {
		batch := b.take(ps, stored == nil)
		if batch == nil && stored == nil {
			return
		}
		var next *flight
		if batch != nil {
			next = b.start(ctx, channel, ps, batch)
		}
		if stored != nil {
			b.finish(ctx, channel, stored)
			stored = nil
		}
		if next != nil {
			stored = b.await(ctx, channel, ps, next)
		}
	}
}

// take removes the next batch from ps's queue, nil when it is empty; with
// last set an empty queue also ends the sender.
func (b *Broker) take(ps *pubState, last bool) []pending {
	limit := min(maxBatchBytes, int(b.nc.MaxPayload())-4096)
	b.mu.Lock()
	defer b.mu.Unlock()
	n, size := 0, 0
	for n < len(ps.queue) && n < maxBatchCount {
		size += pubSize(ps.queue[n].pub)
		if n > 0 && size > limit {
			break
		}
		n++
	}
	if n == 0 {
		ps.sending = ps.sending && !last
		return nil
	}
	batch := ps.queue[:n:n]
	ps.queue = ps.queue[n:]
	if len(ps.queue) == 0 {
		ps.queue = nil
	}
	return batch
}

// start sends batch as one stream message after the channel's last one,
// without waiting for JetStream; it returns nil when nothing is sent (the
// publishes were told why).
func (b *Broker) start(ctx context.Context, channel string, ps *pubState, batch []pending) *flight {
	f := &flight{}
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done(history.Position{}, fmt.Errorf("natsbroker: publish %s: %w", channel, err))
			continue
		}
		f.live = append(f.live, p)
	}
	if len(f.live) == 0 {
		return nil
	}
	f.m.pubs = make([]pub, len(f.live))
	for i, p := range f.live {
		f.m.pubs[i] = p.pub
	}
	err := func() error {
		if !ps.known {
			ctx, cancel := context.WithTimeout(ctx, publishTimeout)
			defer cancel()
			a, err := b.get(ctx)
			if err != nil {
				return err
			}
			if err := b.readLast(ctx, a, channel, ps); err != nil {
				return unavailable(err)
			}
		}
		f.m.prevSeq, f.m.offset, f.m.epoch = ps.seq, ps.off+uint64(len(f.m.pubs)), ps.epoch
		var err error
		f.ack, err = b.js.PublishMsgAsync(encodeMessage(subjChannel+enc(channel), f.m), jetstream.WithExpectLastSequencePerSubject(ps.seq))
		return unavailable(err)
	}()
	if err != nil {
		ps.known = false
		f.fail(channel, err)
		return nil
	}
	return f
}

// await waits until f is stored and returns it, after making it
// deliverable (stash); on a conflict it stores f's publications again
// after the channel's new last message. It returns nil when f failed
// (its publishes were told).
func (b *Broker) await(ctx context.Context, channel string, ps *pubState, f *flight) *flight {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	var err error
	select {
	case ack := <-f.ack.Ok():
		f.m.seq = ack.Sequence
	case err = <-f.ack.Err():
	case <-ctx.Done():
		err = ctx.Err()
	}
	if isConflict(err) {
		ps.known = false
		f.m, err = b.store(ctx, channel, ps, f.m.pubs)
	}
	if err != nil {
		ps.known = false
		f.fail(channel, unavailable(err))
		return nil
	}
	ps.seq, ps.off, ps.epoch = f.m.seq, f.m.offset, f.m.epoch
	b.stash(channel, f.m)
	return f
}

// finish hands a stored batch to the local subscribers and tells its
// publishes their positions.
func (b *Broker) finish(ctx context.Context, channel string, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if a, err := b.get(ctx); err == nil {
		b.deliverOwn(ctx, a, channel, f.m)
	}
	first := f.m.first()
	for i, p := range f.live {
		p.done(history.Position{Offset: first + uint64(i), Epoch: f.m.epoch}, nil)
	}
}

func (f *flight) fail(channel string, err error) {
	err = fmt.Errorf("natsbroker: publish %s: %w", channel, err)
	for _, p := range f.live {
		p.done(history.Position{}, err)
	}
}

// store publishes pubs to channel as one stream message after the
// channel's last one, waiting for JetStream, and returns it.
func (b *Broker) store(ctx context.Context, channel string, ps *pubState, pubs []pub) (message, error) {
	a, err := b.get(ctx)
	if err != nil {
		return message{}, err
	}
	subj := subjChannel + enc(channel)
	for range maxConflicts {
		if !ps.known {
			if err := b.readLast(ctx, a, channel, ps); err != nil {
				return message{}, unavailable(err)
			}
		}
		m := message{prevSeq: ps.seq, offset: ps.off + uint64(len(pubs)), epoch: ps.epoch, pubs: pubs}
		ack, err := b.js.PublishMsg(ctx, encodeMessage(subj, m), jetstream.WithExpectLastSequencePerSubject(ps.seq))
		if isConflict(err) {
			ps.known = false
			continue
		}
		if err != nil {
			ps.known = false
			return message{}, unavailable(err)
		}
		m.seq = ack.Sequence
		ps.seq, ps.off = m.seq, m.offset
		return m, nil
	}
	return message{}, fmt.Errorf("%d conflicts in a row: %w", maxConflicts, ErrUnavailable)
}

// encodeMessage makes the NATS message of m on subject subj.
func encodeMessage(subj string, m message) *nats.Msg {
	nm := nats.NewMsg(subj)
	nm.Header.Set(hdrOffset, strconv.FormatUint(m.offset, 10))
	nm.Header.Set(hdrEpoch, m.epoch)
	nm.Header.Set(hdrPrev, strconv.FormatUint(m.prevSeq, 10))
	if len(m.pubs) == 1 {
		if m.pubs[0].from != "" {
			nm.Header.Set(hdrFrom, m.pubs[0].from)
		}
		nm.Data = m.pubs[0].data
		return nm
	}
	nm.Header.Set(hdrCount, strconv.Itoa(len(m.pubs)))
	nm.Data = appendBatch(make([]byte, 0, batchSize(m.pubs)), m.pubs)
	return nm
}

// deliverOwn hands a message of this node to its local subscribers
// before the publishes return, as the memory broker does; its copy from
// NATS is then a duplicate and dropped.
func (b *Broker) deliverOwn(ctx context.Context, a *assets, channel string, m message) {
	cs := b.channelState(channel)
	if cs == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.refs == 0 {
		return
	}
	if err := b.catchUpLocked(ctx, a, channel, cs, &m); err != nil {
		b.log.Warn("natsbroker: catch up", "channel", channel, "err", err)
	}
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// readLast fills ps from the channel's last message, or starts its
// sequence when it has none.
func (b *Broker) readLast(ctx context.Context, a *assets, channel string, ps *pubState) error {
	last, ok, err := b.last(ctx, a, channel)
	if err != nil {
		return err
	}
	if ok {
		ps.seq, ps.off, ps.epoch, ps.known = last.seq, last.offset, last.epoch, true
		return nil
	}
	epoch, err := b.startEpoch(ctx, a, channel)
	if err != nil {
		return err
	}
	ps.seq, ps.off, ps.epoch, ps.known = 0, 0, epoch, true
	return nil
}

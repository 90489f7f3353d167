package natsbroker

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// read answers q on channel from the stream: the position is the
// channel's last message; the messages are read newest first by walking
// their Netkit-Prev headers, as far as q needs and the channel's limits
// (its namespace's size and TTL, which may be below the stream's) hold
// them. With messages false only the position is read. It also returns
// the last message, nil when the channel has none.
func (b *Broker) read(ctx context.Context, a *assets, channel string, q history.Query, messages bool) (history.Result, *message, error) {
	last, ok, err := b.last(ctx, a, channel)
	if err != nil {
		return history.Result{}, nil, err
	}
	if !ok {
		epoch, err := b.emptyEpoch(ctx, a, channel)
		if err != nil {
			return history.Result{}, nil, err
		}
		res := history.Result{Position: history.Position{Epoch: epoch}}
		res.Recovered = q.Since != nil && q.Since.Epoch == epoch && q.Since.Offset == 0
		return res, nil, nil
	}
	res := history.Result{Position: history.Position{Offset: last.offset, Epoch: last.epoch}}
	if !messages {
		return res, &last, nil
	}
	lim := b.cfg.Limits(channel)
	// stop is the oldest offset the walk needs.
	stop := uint64(1)
	inEpoch := q.Since != nil && q.Since.Epoch == last.epoch && q.Since.Offset <= last.offset
	switch {
	case inEpoch:
		stop = q.Since.Offset + 1
	case q.Since == nil && q.Limit > 0 && uint64(q.Limit) < last.offset:
		stop = last.offset - uint64(q.Limit) + 1
	}
	held, err := b.walk(ctx, a, last, stop, lim)
	if err != nil {
		return history.Result{}, nil, err
	}
	// held is newest first and contiguous down to its last element.
	slices.Reverse(held)
	if inEpoch {
		res.Recovered = q.Since.Offset == last.offset || len(held) > 0 && held[0].offset == stop
	}
	if q.Since != nil && q.Limit > 0 && len(held) > q.Limit {
		held = held[:q.Limit]
	}
	res.Messages = make([][]byte, len(held))
	for i, m := range held {
		res.Messages[i] = protocol.AppendMessage(nil, channel, m.offset, m.from, m.data)
	}
	return res, &last, nil
}

// walk returns the messages from last back to offset stop, newest first,
// that lim holds; it stops early at a message the stream or lim no longer
// holds.
func (b *Broker) walk(ctx context.Context, a *assets, last message, stop uint64, lim history.Limits) ([]message, error) {
	var out []message
	now := time.Now()
	m := last
	for {
		if m.offset < stop || len(out) >= lim.Size || lim.TTL > 0 && now.Sub(m.time) > lim.TTL {
			return out, nil
		}
		out = append(out, m)
		if m.prevSeq == 0 || m.offset == stop {
			return out, nil
		}
		raw, err := a.stream.GetMsg(ctx, m.prevSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		prev, err := fromRaw(raw)
		if err != nil || prev.offset != m.offset-1 || prev.epoch != m.epoch {
			return out, nil
		}
		m = prev
	}
}

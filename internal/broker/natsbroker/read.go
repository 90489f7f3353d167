package natsbroker

import (
	"context"
	"errors"
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
	// held is oldest first and contiguous up to the last offset.
	if inEpoch {
		res.Recovered = q.Since.Offset == last.offset || len(held) > 0 && held[0].offset == stop
	}
	if q.Since != nil && q.Limit > 0 && len(held) > q.Limit {
		held = held[:q.Limit]
	}
	res.Messages = make([][]byte, len(held))
	for i, e := range held {
		res.Messages[i] = protocol.AppendMessage(nil, channel, e.offset, e.from, e.data)
	}
	return res, &last, nil
}

// entry is one publication read from history.
type entry struct {
	offset uint64
	pub
}

// walk returns the publications from last's back to offset stop, oldest
// first, that lim holds: it reads the channel's stream messages newest
// first along their Netkit-Prev headers and stops early at one the
// stream or lim no longer holds.
func (b *Broker) walk(ctx context.Context, a *assets, last message, stop uint64, lim history.Limits) ([]entry, error) {
	var msgs []message // newest first
	now := time.Now()
	held := 0
	m := last
	for {
		if m.offset < stop || held >= lim.Size || lim.TTL > 0 && now.Sub(m.time) > lim.TTL {
			break
		}
		msgs = append(msgs, m)
		held += len(m.pubs)
		if m.prevSeq == 0 || m.first() <= stop {
			break
		}
		raw, err := a.stream.GetMsg(ctx, m.prevSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		prev, err := fromRaw(raw)
		if err != nil || prev.offset != m.first()-1 || prev.epoch != m.epoch {
			break
		}
		m = prev
	}
	// The oldest offset kept: stop, or what lim's size leaves.
	from := stop
	if n := uint64(lim.Size); n > 0 && n <= last.offset {
		from = max(from, last.offset-n+1)
	}
	out := make([]entry, 0, held)
	for i := len(msgs) - 1; i >= 0; i-- {
		for j, p := range msgs[i].pubs {
			if off := msgs[i].first() + uint64(j); off >= from {
				out = append(out, entry{off, p})
			}
		}
	}
	return out, nil
}

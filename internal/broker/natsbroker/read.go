package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
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
	held, err := b.walk(ctx, a, channel, last, stop, lim)
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
// first, that lim holds: it follows the channel's stream messages newest
// first along their Netkit-Prev headers and stops early at one the
// stream or lim no longer holds.
func (b *Broker) walk(ctx context.Context, a *assets, channel string, last message, stop uint64, lim history.Limits) ([]entry, error) {
	need := uint64(0) // publications wanted before last's
	if f := last.first(); f > stop && lim.Size > len(last.pubs) {
		need = min(f-stop, uint64(lim.Size-len(last.pubs)))
	}
	get, err := b.before(ctx, a, channel, last.seq, need, lim.TTL)
	if err != nil {
		return nil, err
	}
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
		prev, ok, err := get(m.prevSeq)
		if err != nil {
			return nil, err
		}
		if !ok || prev.offset != m.first()-1 || prev.epoch != m.epoch {
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

// directGet is the stream's direct get API subject.
const directGet = "$JS.API.DIRECT.GET." + streamName

// readTimeout bounds one batched read.
const readTimeout = 10 * time.Second

// maxSingleGets is how many messages before a channel's last one are
// read one direct get at a time; more are read in one batched request.
const maxSingleGets = 2

// before returns a lookup of the channel's stream messages before
// sequence upTo (ok false for one the stream no longer holds), for a walk
// back that wants up to need publications. A short walk reads each
// message with one direct get; a longer one reads all of the channel's
// messages up front with one batched direct get (at most the stream's
// per-channel limit, and only those younger than ttl when it is set).
func (b *Broker) before(ctx context.Context, a *assets, channel string, upTo, need uint64, ttl time.Duration) (func(seq uint64) (message, bool, error), error) {
	single := func(seq uint64) (message, bool, error) {
		raw, err := a.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return message{}, false, nil
		}
		if err != nil {
			return message{}, false, err
		}
		m, err := fromRaw(raw)
		return m, err == nil, nil
	}
	if need <= maxSingleGets {
		return single, nil
	}
	var since time.Time
	if ttl > 0 {
		since = time.Now().Add(-ttl)
	}
	msgs, err := b.readAll(ctx, subjChannel+enc(channel), upTo, since)
	if err != nil {
		return nil, err
	}
	return func(seq uint64) (message, bool, error) {
		m, ok := msgs[seq]
		return m, ok, nil
	}, nil
}

// readAll reads subject's messages before stream sequence upTo (those
// stored since since, when it is not zero) with one batched direct get,
// keyed by sequence. The stream keeps at most MaxHistorySize of them.
func (b *Broker) readAll(ctx context.Context, subject string, upTo uint64, since time.Time) (map[uint64]message, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	req := struct {
		Seq       uint64     `json:"seq,omitempty"`
		NextFor   string     `json:"next_by_subj"`
		Batch     int        `json:"batch"`
		StartTime *time.Time `json:"start_time,omitempty"`
	}{Seq: 1, NextFor: subject, Batch: max(b.cfg.MaxHistorySize, 1) + 1}
	if !since.IsZero() {
		req.Seq, req.StartTime = 0, &since
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// Room for the whole batch and its end: nats.go never has to drop
	// (a sync subscription would allocate its default 64k-entry queue).
	replies := make(chan *nats.Msg, req.Batch+1)
	inbox := b.nc.NewInbox()
	sub, err := b.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := b.nc.PublishRequest(directGet, inbox, body); err != nil {
		return nil, err
	}
	out := make(map[uint64]message, req.Batch)
	for {
		var nm *nats.Msg
		select {
		case nm = <-replies:
		case <-ctx.Done():
			return nil, fmt.Errorf("direct get %s: %w", subject, ctx.Err())
		}
		switch status := nm.Header.Get("Status"); status { // the status line, as nats.go parses it
		case "":
		case "204", "404": // end of the batch; no message
			return out, nil
		default:
			return nil, fmt.Errorf("direct get %s: %s %s", subject, status, nm.Header.Get("Description"))
		}
		m, err := parse(nm.Header, nm.Data)
		if err != nil || m.seq == 0 || m.seq >= upTo {
			continue
		}
		m.time, _ = time.Parse(time.RFC3339Nano, nm.Header.Get(jetstream.TimeStampHeaer))
		out[m.seq] = m
	}
}

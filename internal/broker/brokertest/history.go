package brokertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/testenv"
)

// Clock is a clock tests move by hand, for Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to a fixed time.
func NewClock() *Clock { return &Clock{t: time.Unix(1_700_000_000, 0)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// pubs returns the publications delivered on channel.
func (r *Recorder) pubs(channel string) []broker.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []broker.Publication
	for _, p := range r.Pubs {
		if p.Channel == channel {
			out = append(out, p)
		}
	}
	return out
}

// pushOffsets returns the offsets of encoded message pushes on channel.
func pushOffsets(t *testing.T, channel string, msgs [][]byte) []uint64 {
	t.Helper()
	out := []uint64{}
	for _, b := range msgs {
		var p struct {
			Push    string
			Channel string
			Offset  uint64
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Push != protocol.PushMessage || p.Channel != channel {
			t.Fatalf("history message %q: %v; want a message push on %s", b, err, channel)
		}
		out = append(out, p.Offset)
	}
	return out
}

func span(from, to uint64) []uint64 {
	out := []uint64{}
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

func readHistory(t *testing.T, b broker.Broker, channel string, q history.Query) history.Result {
	t.Helper()
	res, err := b.History(context.Background(), channel, q)
	if err != nil {
		t.Fatalf("History(%s): %v", channel, err)
	}
	return res
}

func since(pos history.Position, offset uint64) *history.Position {
	return &history.Position{Offset: offset, Epoch: pos.Epoch}
}

// testPush checks that a publication carries its encoded message push and
// that history holds the same bytes.
func testPush(t *testing.T, mk MakeBroker) {
	rec := NewRecorder()
	b := mk(t, rec, Options{})
	subscribe(t, b, "enc")
	data := json.RawMessage(`{"text":"h\u00e9llo"}`)
	pos, err := b.Publish(context.Background(), "enc", "alice", data)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n := len(rec.pubs("enc")); n != 1 {
			return fmt.Errorf("%d publications delivered, want 1", n)
		}
		return nil
	})
	p := rec.pubs("enc")[0]
	want := protocol.AppendMessage(nil, "enc", pos.Offset, "alice", data)
	if !bytes.Equal(p.Push, want) {
		t.Fatalf("Publication.Push = %s, want %s", p.Push, want)
	}
	res := readHistory(t, b, "enc", history.Query{})
	if len(res.Messages) != 1 || !bytes.Equal(res.Messages[0], want) {
		t.Fatalf("History = %q, want [%s]", res.Messages, want)
	}
}

// testRecoveryConcurrent is a reconnect while others publish: a subscriber
// that last saw some offset subscribes with a recovery query at some point
// of a burst of concurrent publications. The recovered messages followed
// by the live ones must be every offset after the one it saw, once each,
// in order. Each interleaving runs 3 times: the races it would catch are
// not hit every time.
func testRecoveryConcurrent(t *testing.T, mk MakeBroker) {
	const burst = 600
	tests := []struct {
		name  string
		pre   int // the subscriber last saw offset pre+1
		after int // publications of the burst to wait for before subscribing
	}{
		{name: "before the burst", pre: 20},
		{name: "early in the burst", pre: 20, after: 10},
		{name: "mid burst", pre: 5, after: burst / 2},
		{name: "nothing missed yet", pre: 0, after: 1},
		{name: "after the burst", pre: 50, after: burst},
	}
	for _, tc := range tests {
		for round := range 3 {
			t.Run(fmt.Sprintf("%s/%d", tc.name, round), func(t *testing.T) {
				recoverDuringBurst(t, mk, tc.pre, tc.after, burst)
			})
		}
	}
}

// recoverDuringBurst publishes pre+1 messages, then burst more from 4
// goroutines; after `after` of those it subscribes with a recovery since
// offset pre+1 and checks what the subscriber gets.
func recoverDuringBurst(t *testing.T, mk MakeBroker, pre, after, burst int) {
	const publishers = 4
	rec := NewRecorder()
	b := mk(t, rec, Options{Limits: &history.Limits{Size: 10_000}})
	ctx := context.Background()
	var seen history.Position // the subscriber's last message; it missed the rest
	for range pre + 1 {
		seen = publish(t, b, "rec")
	}
	var started sync.WaitGroup // done after `after` publications of the burst
	started.Add(after)
	var count atomic.Int64
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for range burst / publishers {
				if _, err := b.Publish(ctx, "rec", "u", data); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				if count.Add(1) <= int64(after) {
					started.Done()
				}
			}
		})
	}
	started.Wait()
	var res history.Result
	delivered := -1
	err := b.Subscribe(ctx, "rec", &history.Query{Since: &seen}, func(r history.Result) {
		res, delivered = r, len(rec.pubs("rec"))
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	total := uint64(pre + 1 + burst)
	testenv.WaitFor(t, 10*time.Second, func() error { // for brokers that deliver asynchronously
		if pubs := rec.pubs("rec"); res.Position.Offset < total && (len(pubs) == 0 || pubs[len(pubs)-1].Offset != total) {
			return fmt.Errorf("last offset %d not delivered yet", total)
		}
		return nil
	})
	if delivered != 0 {
		t.Fatalf("%d publications were delivered before fn ran", delivered)
	}
	if !res.Recovered || res.Position.Epoch != seen.Epoch {
		t.Fatalf("recovery = %+v, recovered %v; want recovered in epoch %s", res.Position, res.Recovered, seen.Epoch)
	}
	got := pushOffsets(t, "rec", res.Messages)
	if want := span(seen.Offset+1, res.Position.Offset); !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want the %d messages after %d up to the position %d", head(got), len(want), seen.Offset, res.Position.Offset)
	}
	for _, p := range rec.pubs("rec") {
		got = append(got, p.Offset)
	}
	if want := span(seen.Offset+1, total); !slices.Equal(got, want) {
		t.Fatalf("recovered then live = %d offsets %v..., want %d contiguous from %d: a gap or a duplicate", len(got), head(got), len(want), seen.Offset+1)
	}
}

func testRecoveryEpoch(t *testing.T, mk MakeBroker) {
	b := mk(t, NewRecorder(), Options{})
	// A client that read an empty channel's position recovers from it.
	empty := readHistory(t, b, "empty", history.Query{})
	recoverAndCheck(t, b, "empty", since(empty.Position, 0), true, nil)

	for range 3 {
		publish(t, b, "ep")
	}
	for _, q := range []history.Query{
		{Since: &history.Position{Offset: 1, Epoch: "notours"}},
		{Since: &history.Position{Offset: 3, Epoch: "notours"}},
		{Since: &history.Position{Offset: 0}},
	} {
		var res history.Result
		if err := b.Subscribe(context.Background(), "ep", &q, func(r history.Result) { res = r }); err != nil {
			t.Fatal(err)
		}
		if res.Recovered || res.Position.Offset != 3 {
			t.Fatalf("recovery since %+v = %+v recovered %v, want offset 3 and recovered false", *q.Since, res.Position, res.Recovered)
		}
	}
}

// testRecoveryAfterEviction evicts history by each limit: a recovery that
// needs an evicted message answers Recovered false, never a gap.
func testRecoveryEviction(t *testing.T, mk MakeBroker) {
	ctx := context.Background()
	t.Run("Size", func(t *testing.T) {
		b := mk(t, NewRecorder(), Options{Limits: &history.Limits{Size: 5}})
		var pos history.Position
		for range 10 {
			pos = publish(t, b, "s")
		}
		recoverAndCheck(t, b, "s", since(pos, 4), false, span(6, 10))
		recoverAndCheck(t, b, "s", since(pos, 5), true, span(6, 10))
		recoverAndCheck(t, b, "s", since(pos, 8), true, span(9, 10))
	})
	t.Run("TTL", func(t *testing.T) {
		clock := NewClock()
		b := mk(t, NewRecorder(), Options{Limits: &history.Limits{Size: 100, TTL: time.Minute}, Now: clock.Now})
		var pos history.Position
		for range 3 {
			pos = publish(t, b, "t")
		}
		clock.Advance(45 * time.Second)
		pos = publish(t, b, "t")
		clock.Advance(30 * time.Second) // 1..3 expired, 4 held
		recoverAndCheck(t, b, "t", since(pos, 2), false, span(4, 4))
		recoverAndCheck(t, b, "t", since(pos, 3), true, span(4, 4))
		clock.Advance(time.Minute)
		recoverAndCheck(t, b, "t", since(pos, 3), false, span(5, 4))
		recoverAndCheck(t, b, "t", since(pos, 4), true, span(5, 4))
	})
	t.Run("MaxBytes", func(t *testing.T) {
		b := mk(t, NewRecorder(), Options{MaxBytes: 256 << 10})
		var pos history.Position
		for range 3 {
			pos = publish(t, b, "victim")
		}
		// Other channels fill the cap until the victim's history goes.
		for i := 0; ; i++ {
			if i == 100_000 {
				t.Fatal("100,000 publications to other channels did not evict the victim's history")
			}
			if _, err := b.Publish(ctx, "flood-"+strconv.Itoa(i), "u", data); err != nil {
				t.Fatal(err)
			}
			if i%100 != 0 {
				continue
			}
			res := readHistory(t, b, "victim", history.Query{Since: since(pos, 0)})
			if res.Position.Epoch == pos.Epoch && len(res.Messages) == 3 {
				if !res.Recovered {
					t.Fatal("all 3 messages held, recovered false")
				}
				continue
			}
			if res.Recovered {
				t.Fatalf("history since 0 = %d messages at %+v, recovered true, want false after eviction", len(res.Messages), res.Position)
			}
			break
		}
	})
}

// recoverAndCheck subscribes with Since and checks the answer; then it
// unsubscribes again.
func recoverAndCheck(t *testing.T, b broker.Broker, channel string, since *history.Position, recovered bool, want []uint64) {
	t.Helper()
	var res history.Result
	if err := b.Subscribe(context.Background(), channel, &history.Query{Since: since}, func(r history.Result) { res = r }); err != nil {
		t.Fatal(err)
	}
	if err := b.Unsubscribe(context.Background(), channel); err != nil {
		t.Fatal(err)
	}
	if got := pushOffsets(t, channel, res.Messages); res.Recovered != recovered || !slices.Equal(got, want) {
		t.Fatalf("recovery since %d = %v recovered %v, want %v recovered %v", since.Offset, got, res.Recovered, want, recovered)
	}
}

// testSubscribeLast is `subscribe` with `last:N`: the newest N messages,
// oldest first, then live ones.
func testSubscribeLast(t *testing.T, mk MakeBroker) {
	tests := []struct {
		name  string
		limit int
		want  []uint64
	}{
		{"last 3", 3, span(8, 10)},
		{"last 1", 1, span(10, 10)},
		{"more than held", 50, span(1, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecorder()
			b := mk(t, rec, Options{})
			for range 10 {
				publish(t, b, "last")
			}
			var res history.Result
			if err := b.Subscribe(context.Background(), "last", &history.Query{Limit: tc.limit}, func(r history.Result) { res = r }); err != nil {
				t.Fatal(err)
			}
			if got := pushOffsets(t, "last", res.Messages); !slices.Equal(got, tc.want) || res.Position.Offset != 10 {
				t.Fatalf("last %d = %v at %d, want %v at 10", tc.limit, got, res.Position.Offset, tc.want)
			}
			publish(t, b, "last")
			testenv.WaitFor(t, 10*time.Second, func() error {
				if got := rec.offsets("last"); !slices.Equal(got, []uint64{11}) {
					return fmt.Errorf("live offsets %v, want [11]", got)
				}
				return nil
			})
		})
	}
}

// testHistoryLimit checks the limit semantics of protocol-decisions.md:
// without since the newest limit, oldest first; with since the oldest
// limit after it; no limit, everything held.
func testHistoryLimit(t *testing.T, mk MakeBroker) {
	b := mk(t, NewRecorder(), Options{Limits: &history.Limits{Size: 20}})
	var pos history.Position
	for range 30 {
		pos = publish(t, b, "h")
	}
	tests := []struct {
		name      string
		q         history.Query
		want      []uint64
		recovered bool
	}{
		{"all", history.Query{}, span(11, 30), false},
		{"newest 5", history.Query{Limit: 5}, span(26, 30), false},
		{"since 12, oldest 5", history.Query{Since: since(pos, 12), Limit: 5}, span(13, 17), true},
		{"since 27", history.Query{Since: since(pos, 27)}, span(28, 30), true},
		{"since 30", history.Query{Since: since(pos, 30)}, span(31, 30), true},
		{"since 2, evicted", history.Query{Since: since(pos, 2), Limit: 3}, span(11, 13), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := readHistory(t, b, "h", tc.q)
			if got := pushOffsets(t, "h", res.Messages); !slices.Equal(got, tc.want) || res.Recovered != tc.recovered || res.Position != pos {
				t.Fatalf("History = %v recovered %v at %+v, want %v recovered %v at %+v", got, res.Recovered, res.Position, tc.want, tc.recovered, pos)
			}
		})
	}
}

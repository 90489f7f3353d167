package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/protocol"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recount computes what the store should account from its structures, so
// tests can check the running total after any sequence of operations.
func (m *Memory) recount() (bytes int64, messages int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bytes = mapBytes(m.mapHigh)
	for name, ch := range m.channels {
		if name != ch.name || ch.dead {
			panic("channel map is inconsistent")
		}
		bytes += channelBytes(name) + ringBytes(ch.msgs.cap(), messageSlotBytes)
		for i := range ch.msgs.len() {
			bytes += int64(cap(ch.msgs.at(i).push))
		}
		messages += ch.msgs.len()
	}
	for _, q := range m.queues {
		bytes += ringBytes(q.refs.cap(), refSlotBytes)
		stale := 0
		for i := range q.refs.len() {
			if !q.refs.at(i).live() {
				stale++
			}
		}
		if stale != q.stale {
			panic(fmt.Sprintf("queue ttl %v counts %d stale entries, has %d", q.ttl, q.stale, stale))
		}
	}
	return bytes, messages
}

func checkAccounting(t *testing.T, m *Memory) {
	t.Helper()
	want, msgs := m.recount()
	if st := m.Stats(); st.Bytes != want || st.Messages != msgs {
		t.Fatalf("store accounts %d bytes and %d messages, holds %d and %d", st.Bytes, st.Messages, want, msgs)
	}
}

var ctx = context.Background()

func appendN(t testing.TB, m *Memory, channel string, n int) Position {
	t.Helper()
	var pos Position
	for i := range n {
		var err error
		if pos, _, err = m.Append(ctx, channel, "u", json.RawMessage(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	return pos
}

// offsets returns the offsets of encoded message pushes.
func offsets(t *testing.T, msgs [][]byte) []uint64 {
	t.Helper()
	out := []uint64{}
	for _, b := range msgs {
		var p struct{ Offset uint64 }
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("message %q: %v", b, err)
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

func TestMemorySequence(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	fresh, _ := m.Position(ctx, "a")
	if fresh.Offset != 0 || fresh.Epoch == "" {
		t.Fatalf("fresh position = %+v, want offset 0 and an epoch", fresh)
	}
	for want := uint64(1); want <= 3; want++ {
		pos, _, err := m.Append(ctx, "a", "u", json.RawMessage(`1`))
		if err != nil || pos.Offset != want || pos.Epoch != fresh.Epoch {
			t.Fatalf("Append = %+v, %v; want offset %d in epoch %s", pos, err, want, fresh.Epoch)
		}
	}
	if pos, _, _ := m.Append(ctx, "b", "u", json.RawMessage(`1`)); pos.Offset != 1 || pos.Epoch == fresh.Epoch {
		t.Fatalf("other channel = %+v, want offset 1 in its own epoch", pos)
	}
	if other := NewMemory(MemoryConfig{}); func() bool { p, _ := other.Position(ctx, "a"); return p.Epoch == fresh.Epoch }() {
		t.Fatal("a new store (a restarted hub) reused an epoch")
	}
	checkAccounting(t, m)
}

// TestMemoryPush checks that Append returns the message push and that
// reads share those very bytes: one copy per message.
func TestMemoryPush(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	data := json.RawMessage(`{"text":"hé \"x\""}`)
	pos, push, err := m.Append(ctx, `ro"om`, "alice", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := protocol.AppendMessage(nil, `ro"om`, pos.Offset, "alice", data); !bytes.Equal(push, want) {
		t.Fatalf("push = %s, want %s", push, want)
	}
	res, _ := m.Read(ctx, `ro"om`, Query{})
	if len(res.Messages) != 1 || &res.Messages[0][0] != &push[0] {
		t.Fatal("Read returned a copy of the push, want the same bytes")
	}
}

func TestMemoryRead(t *testing.T) {
	m := NewMemory(MemoryConfig{Limits: func(string) Limits { return Limits{Size: 10} }})
	pos := appendN(t, m, "r", 25) // holds 16..25
	empty, _ := m.Position(ctx, "empty")
	at := func(o uint64) *Position { return &Position{Offset: o, Epoch: pos.Epoch} }
	tests := []struct {
		name      string
		channel   string
		q         Query
		want      []uint64
		recovered bool
	}{
		{"all", "r", Query{}, span(16, 25), false},
		{"newest 3", "r", Query{Limit: 3}, span(23, 25), false},
		{"limit above size", "r", Query{Limit: 50}, span(16, 25), false},
		{"since held", "r", Query{Since: at(20)}, span(21, 25), true},
		{"since held, oldest 2", "r", Query{Since: at(20), Limit: 2}, span(21, 22), true},
		{"since just before history", "r", Query{Since: at(15)}, span(16, 25), true},
		{"since evicted", "r", Query{Since: at(14)}, span(16, 25), false},
		{"since evicted, limit", "r", Query{Since: at(3), Limit: 4}, span(16, 19), false},
		{"since current", "r", Query{Since: at(25)}, []uint64{}, true},
		{"since the future", "r", Query{Since: at(26)}, []uint64{}, false},
		{"since other epoch", "r", Query{Since: &Position{Offset: 20, Epoch: "other"}, Limit: 3}, span(16, 18), false},
		{"empty channel", "empty", Query{}, []uint64{}, false},
		{"empty channel since 0", "empty", Query{Since: &Position{Epoch: empty.Epoch}}, []uint64{}, true},
		{"new channel", "new", Query{Since: &Position{Offset: 3, Epoch: pos.Epoch}}, []uint64{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := m.Read(ctx, tc.channel, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := offsets(t, res.Messages); !slices.Equal(got, tc.want) || res.Recovered != tc.recovered {
				t.Fatalf("Read = %v recovered %v, want %v recovered %v", got, res.Recovered, tc.want, tc.recovered)
			}
			if tc.channel == "r" && res.Position != pos {
				t.Fatalf("position = %+v, want %+v", res.Position, pos)
			}
		})
	}
	checkAccounting(t, m)
}

func TestMemorySizeZero(t *testing.T) {
	m := NewMemory(MemoryConfig{Limits: func(string) Limits { return Limits{} }})
	pos := appendN(t, m, "z", 5)
	if pos.Offset != 5 {
		t.Fatalf("offset = %d, want 5: offsets count without history", pos.Offset)
	}
	res, _ := m.Read(ctx, "z", Query{Since: &Position{Offset: 4, Epoch: pos.Epoch}})
	if res.Recovered || len(res.Messages) != 0 {
		t.Fatalf("Read since 4 = %d messages recovered %v, want none and false", len(res.Messages), res.Recovered)
	}
	res, _ = m.Read(ctx, "z", Query{Since: &pos})
	if !res.Recovered {
		t.Fatal("Read since the current offset: recovered false, want true (nothing was missed)")
	}
	checkAccounting(t, m)
}

// TestMemoryTTL moves the clock: reads never return expired messages, even
// before a sweep, and a sweep frees them.
func TestMemoryTTL(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(MemoryConfig{Now: clock.Now, Limits: func(ch string) Limits {
		if ch == "short" {
			return Limits{Size: 100, TTL: time.Minute}
		}
		return Limits{Size: 100, TTL: time.Hour}
	}})
	appendN(t, m, "short", 3)
	appendN(t, m, "long", 3)
	clock.Advance(30 * time.Second)
	pos := appendN(t, m, "short", 2) // offsets 4, 5
	clock.Advance(40 * time.Second)  // 1..3 are 70s old, 4..5 are 40s old

	res, _ := m.Read(ctx, "short", Query{Since: &Position{Offset: 2, Epoch: pos.Epoch}})
	if got := offsets(t, res.Messages); !slices.Equal(got, span(4, 5)) || res.Recovered {
		t.Fatalf("after TTL: %v recovered %v, want [4 5] and false", got, res.Recovered)
	}
	res, _ = m.Read(ctx, "short", Query{Since: &Position{Offset: 3, Epoch: pos.Epoch}})
	if !res.Recovered {
		t.Fatal("since 3 (all after it held): recovered false, want true")
	}
	clock.Advance(30 * time.Second)
	m.Sweep()
	if st := m.Stats(); st.Messages != 3 {
		t.Fatalf("after sweep the store holds %d messages, want the 3 of the long channel", st.Messages)
	}
	checkAccounting(t, m)
}

// TestMemoryIdle checks that Sweep forgets channels idle for IdleTTL that
// hold no message and are not pinned, and that a forgotten channel comes
// back with a new epoch.
func TestMemoryIdle(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(MemoryConfig{Now: clock.Now, IdleTTL: 10 * time.Minute,
		Limits: func(ch string) Limits { return Limits{Size: 10, TTL: time.Minute} }})
	old := appendN(t, m, "idle", 1)
	appendN(t, m, "pinned", 1)
	m.Pin("pinned")
	m.Pin("unpinned")
	clock.Advance(5 * time.Minute)
	m.Unpin("unpinned") // idle from now on
	clock.Advance(6 * time.Minute)
	m.Sweep()
	if st := m.Stats(); st.Channels != 2 || st.Messages != 0 {
		t.Fatalf("after 11 minutes: %d channels, %d messages; want pinned and unpinned, no message", st.Channels, st.Messages)
	}
	again := appendN(t, m, "idle", 1)
	if again.Offset != 1 || again.Epoch == old.Epoch {
		t.Fatalf("after eviction = %+v, want offset 1 in a new epoch (was %s)", again, old.Epoch)
	}
	clock.Advance(10 * time.Minute)
	m.Sweep()
	if pos, _ := m.Position(ctx, "pinned"); pos.Offset != 1 {
		t.Fatalf("pinned channel offset = %d, want 1: pinned sequences are kept", pos.Offset)
	}
	if st := m.Stats(); st.Channels != 1 {
		t.Fatalf("%d channels left, want only the pinned one", st.Channels)
	}
	checkAccounting(t, m)
}

// TestMemoryCap publishes to many channels under a small cap: the store
// stays under it, a recovery that needs an evicted message says so, and a
// pinned channel keeps its sequence.
func TestMemoryCap(t *testing.T) {
	const maxBytes = 64 << 10
	m := NewMemory(MemoryConfig{MaxBytes: maxBytes})
	m.Pin("pinned")
	first := appendN(t, m, "pinned", 3)
	victim := appendN(t, m, "victim", 3)
	for i := range 5000 {
		appendN(t, m, "flood-"+strconv.Itoa(i), 1)
		if st := m.Stats(); st.Bytes > maxBytes {
			t.Fatalf("after %d channels the store accounts %d bytes, over the cap %d", i+1, st.Bytes, maxBytes)
		}
	}
	checkAccounting(t, m)
	res, _ := m.Read(ctx, "pinned", Query{Since: &Position{Epoch: first.Epoch}})
	if res.Position != first || res.Recovered {
		t.Fatalf("pinned channel = %+v recovered %v, want %+v (kept) and not recovered (its messages went)", res.Position, res.Recovered, first)
	}
	res, _ = m.Read(ctx, "victim", Query{Since: &Position{Offset: 1, Epoch: victim.Epoch}})
	if res.Recovered {
		t.Fatal("recovery of an evicted channel answered recovered true")
	}
	if st := m.Stats(); st.Channels < 100 {
		t.Fatalf("the store kept %d channels in %d bytes; want the cap used", st.Channels, maxBytes)
	}
}

// TestMemoryAccounting runs a mixed workload and checks the running total
// against a recount of the store's structures.
func TestMemoryAccounting(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(MemoryConfig{Now: clock.Now, MaxBytes: 256 << 10, IdleTTL: time.Minute,
		Limits: func(ch string) Limits { return Limits{Size: len(ch) % 7, TTL: time.Duration(len(ch)%3) * time.Minute} }})
	for i := range 20000 {
		ch := "c" + strconv.Itoa(i%300) + string(make([]byte, i%5))
		switch i % 10 {
		case 7:
			m.Read(ctx, ch, Query{Limit: 3})
		case 8:
			m.Pin(ch)
		case 9:
			m.Unpin(ch)
		default:
			if _, _, err := m.Append(ctx, ch, "u", json.RawMessage(`"`+string(bytes.Repeat([]byte("x"), i%700))+`"`)); err != nil {
				t.Fatal(err)
			}
		}
		if i%1000 == 0 {
			clock.Advance(20 * time.Second)
			m.Sweep()
			checkAccounting(t, m)
		}
	}
	checkAccounting(t, m)
}

// TestMemoryConcurrent appends, reads, pins and sweeps from several
// goroutines under a small cap (run it with -race); every channel's
// offsets stay consecutive and the accounting exact.
func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory(MemoryConfig{MaxBytes: 32 << 10, IdleTTL: time.Nanosecond,
		Limits: func(string) Limits { return Limits{Size: 20, TTL: time.Hour} }})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ch := "c" + strconv.Itoa(g)
			var last Position
			for i := range 2000 {
				pos, _, err := m.Append(ctx, ch, "u", json.RawMessage(`1`))
				if err != nil {
					t.Error(err)
					return
				}
				if pos.Epoch == last.Epoch && pos.Offset != last.Offset+1 {
					t.Errorf("%s: offset %d after %d in one epoch", ch, pos.Offset, last.Offset)
					return
				}
				last = pos
				switch i % 50 {
				case 10:
					m.Pin(ch)
				case 20:
					m.Unpin(ch)
				case 30:
					m.Sweep()
				case 40:
					m.Append(ctx, "other-"+strconv.Itoa(i), "u", json.RawMessage(`2`))
				}
				if res, _ := m.Read(ctx, ch, Query{Limit: 5}); len(res.Messages) > 0 {
					if got := offsets(t, res.Messages); got[len(got)-1] != res.Position.Offset {
						t.Errorf("%s: newest message %d, position %d", ch, got[len(got)-1], res.Position.Offset)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	checkAccounting(t, m)
}

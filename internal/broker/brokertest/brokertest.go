// Package brokertest is the conformance suite that every broker.Broker
// implementation must pass.
package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// MakeBroker returns a running broker that delivers to h, configured by o.
// It must stop the broker in t.Cleanup. A broker that cannot honour an
// option (a clock, for one on a server) calls t.Skip.
type MakeBroker func(t *testing.T, h broker.Handler, o Options) broker.Broker

// Options configure the history of the broker under test. The zero value
// asks for the broker's defaults.
type Options struct {
	// Limits are every channel's history limits; nil is the default.
	Limits *history.Limits
	// MaxBytes caps the history's memory; 0 is the default.
	MaxBytes int64
	// Now is the history's clock, for TTLs; nil is real time.
	Now func() time.Time
}

// Recorder is a broker.Handler that records what it is given.
type Recorder struct {
	mu          sync.Mutex
	Pubs        []broker.Publication // in delivery order
	JoinLeaves  []string             // "join channel client" or "leave channel client"
	Directs     map[string][][]byte  // user -> pushes
	Disconnects map[string]int       // user -> calls
	Conns       map[string]int       // user -> connections the node has
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{Directs: map[string][][]byte{}, Disconnects: map[string]int{}, Conns: map[string]int{}}
}

// HandlePublication implements broker.Handler.
func (r *Recorder) HandlePublication(p broker.Publication) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Pubs = append(r.Pubs, p)
}

// HandleJoinLeave implements broker.Handler.
func (r *Recorder) HandleJoinLeave(channel string, join bool, c protocol.ClientInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	word := "leave"
	if join {
		word = "join"
	}
	r.JoinLeaves = append(r.JoinLeaves, fmt.Sprintf("%s %s %s", word, channel, c.Client))
}

// HandleDirect implements broker.Handler.
func (r *Recorder) HandleDirect(user string, push []byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Directs[user] = append(r.Directs[user], push)
	return r.Conns[user]
}

// HandleDisconnectUser implements broker.Handler.
func (r *Recorder) HandleDisconnectUser(user string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Disconnects[user]++
	return r.Conns[user]
}

func (r *Recorder) offsets(channel string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, p := range r.Pubs {
		if p.Channel == channel {
			out = append(out, p.Offset)
		}
	}
	return out
}

// Run runs the conformance suite.
func Run(t *testing.T, mk MakeBroker) {
	tests := []struct {
		name string
		fn   func(*testing.T, MakeBroker)
	}{
		{"OffsetsStartAtOneAndGrowByOne", testOffsets},
		{"DeliveryOnlyWhileSubscribed", testDelivery},
		{"SubscribePositionIsConsistentUnderConcurrentPublish", testSubscribeConsistency},
		{"Presence", testPresence},
		{"SendAndDisconnectUser", testUsers},
		{"Channels", testChannels},
		{"PushIsTheEncodedMessage", testPush},
		{"RecoveryUnderConcurrentPublishers", testRecoveryConcurrent},
		{"RecoveryOtherEpoch", testRecoveryEpoch},
		{"RecoveryAfterEviction", testRecoveryEviction},
		{"SubscribeLast", testSubscribeLast},
		{"HistoryLimit", testHistoryLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mk) })
	}
}

var data = json.RawMessage(`{"n":1}`)

func publish(t *testing.T, b broker.Broker, channel string) history.Position {
	t.Helper()
	pos, err := b.Publish(context.Background(), channel, "u", data)
	if err != nil {
		t.Fatalf("Publish(%s): %v", channel, err)
	}
	return pos
}

func subscribe(t *testing.T, b broker.Broker, channel string) history.Position {
	t.Helper()
	var got history.Position
	called := false
	if err := b.Subscribe(context.Background(), channel, nil, func(r history.Result) { got, called = r.Position, true }); err != nil {
		t.Fatalf("Subscribe(%s): %v", channel, err)
	}
	if !called {
		t.Fatalf("Subscribe(%s) did not call fn", channel)
	}
	return got
}

func testOffsets(t *testing.T, mk MakeBroker) {
	b := mk(t, NewRecorder(), Options{})
	first := publish(t, b, "a")
	if first.Offset != 1 || first.Epoch == "" {
		t.Fatalf("first publish = %+v, want offset 1 and an epoch", first)
	}
	for want := uint64(2); want <= 5; want++ {
		if pos := publish(t, b, "a"); pos.Offset != want || pos.Epoch != first.Epoch {
			t.Fatalf("publish = %+v, want offset %d epoch %s", pos, want, first.Epoch)
		}
	}
	if pos := publish(t, b, "b"); pos.Offset != 1 {
		t.Fatalf("other channel's first offset = %d, want 1", pos.Offset)
	}
	pos, err := b.Position(context.Background(), "a")
	if err != nil || pos.Offset != 5 || pos.Epoch != first.Epoch {
		t.Fatalf("Position(a) = %+v, %v; want offset 5 epoch %s", pos, err, first.Epoch)
	}
}

func testDelivery(t *testing.T, mk MakeBroker) {
	rec := NewRecorder()
	b := mk(t, rec, Options{})
	publish(t, b, "c") // nobody subscribed: not delivered
	if pos := subscribe(t, b, "c"); pos.Offset != 1 {
		t.Fatalf("subscribe position = %d, want 1", pos.Offset)
	}
	subscribe(t, b, "c") // a second local subscriber
	publish(t, b, "c")
	if err := b.Unsubscribe(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "c") // one subscriber left
	if err := b.Unsubscribe(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "c") // none left
	if got := rec.offsets("c"); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("delivered offsets = %v, want [2 3] (once per node, only while subscribed)", got)
	}
}

// testSubscribeConsistency subscribes while others publish: the node must
// get every publication after the position fn saw, in order, and none at
// or before it.
func testSubscribeConsistency(t *testing.T, mk MakeBroker) {
	const publishers, each = 4, 250
	rec := NewRecorder()
	b := mk(t, rec, Options{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range publishers {
		wg.Go(func() {
			<-start
			for range each {
				if _, err := b.Publish(context.Background(), "busy", "u", data); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	close(start)
	var pos history.Position
	if err := b.Subscribe(context.Background(), "busy", nil, func(r history.Result) {
		pos = r.Position
		rec.mu.Lock()
		rec.Pubs = append(rec.Pubs, broker.Publication{Channel: "mark"})
		rec.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := rec.offsets("busy")
	want := make([]uint64, 0, publishers*each)
	for o := pos.Offset + 1; o <= publishers*each; o++ {
		want = append(want, o)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("subscribed at %d; delivered %d publications %v..., want %d contiguous from %d", pos.Offset, len(got), head(got), len(want), pos.Offset+1)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, p := range rec.Pubs {
		if p.Channel == "mark" {
			if i != 0 {
				t.Fatalf("%d publications were delivered before fn ran", i)
			}
			break
		}
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 10)] }

func testPresence(t *testing.T, mk MakeBroker) {
	rec := NewRecorder()
	b := mk(t, rec, Options{})
	ctx := context.Background()
	subscribe(t, b, "p")
	alice := protocol.ClientInfo{Client: "c1", User: "alice"}
	bob := protocol.ClientInfo{Client: "c2", User: "bob"}
	for _, c := range []protocol.ClientInfo{alice, bob} {
		if err := b.Join(ctx, "p", c, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Join(ctx, "p", protocol.ClientInfo{Client: "c3", User: "carol"}, false); err != nil {
		t.Fatal(err)
	}
	got, err := b.Presence(ctx, "p")
	if err != nil || len(got) != 3 {
		t.Fatalf("Presence = %v, %v; want 3 clients", got, err)
	}
	if err := b.Leave(ctx, "p", alice, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Leave(ctx, "p", alice, true); err != nil { // twice: no second leave event
		t.Fatal(err)
	}
	got, _ = b.Presence(ctx, "p")
	if len(got) != 2 || slices.Contains(got, alice) {
		t.Fatalf("Presence after leave = %v, want bob and carol", got)
	}
	if got, _ := b.Presence(ctx, "nobody"); len(got) != 0 {
		t.Fatalf("Presence(nobody) = %v, want empty", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{"join p c1", "join p c2", "leave p c1"}
	if !slices.Equal(rec.JoinLeaves, want) {
		t.Fatalf("join/leave events = %v, want %v", rec.JoinLeaves, want)
	}
}

func testUsers(t *testing.T, mk MakeBroker) {
	rec := NewRecorder()
	rec.Conns["alice"] = 2
	b := mk(t, rec, Options{})
	ctx := context.Background()
	if n, err := b.Send(ctx, "alice", []byte(`{"push":"direct"}`)); err != nil || n != 2 {
		t.Fatalf("Send(alice) = %d, %v; want 2", n, err)
	}
	if n, err := b.Send(ctx, "nobody", []byte(`{}`)); err != nil || n != 0 {
		t.Fatalf("Send(nobody) = %d, %v; want 0", n, err)
	}
	if n, err := b.DisconnectUser(ctx, "alice"); err != nil || n != 2 {
		t.Fatalf("DisconnectUser(alice) = %d, %v; want 2", n, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.Directs["alice"]) != 1 || rec.Disconnects["alice"] != 1 {
		t.Fatalf("handler saw %d directs and %d disconnects for alice, want 1 and 1", len(rec.Directs["alice"]), rec.Disconnects["alice"])
	}
}

func testChannels(t *testing.T, mk MakeBroker) {
	b := mk(t, NewRecorder(), Options{})
	subscribe(t, b, "x")
	subscribe(t, b, "x")
	subscribe(t, b, "y")
	publish(t, b, "x")
	publish(t, b, "z") // no subscribers: not listed
	got, err := b.Channels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []broker.ChannelInfo{{Channel: "x", Subscribers: 2, Offset: 1}, {Channel: "y", Subscribers: 1, Offset: 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("Channels = %+v, want %+v", got, want)
	}
}

// Publications returns a copy of the publications delivered on channel,
// in delivery order; safe while the broker delivers.
func (r *Recorder) Publications(channel string) []broker.Publication {
	return r.pubs(channel)
}

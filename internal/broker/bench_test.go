//go:build unix

package broker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// discard is a Handler that drops everything, so benchmarks measure the
// broker and its store only.
type discard struct{}

func (discard) HandlePublication(broker.Publication)              {}
func (discard) HandleJoinLeave(string, bool, protocol.ClientInfo) {}
func (discard) HandleDirect(string, []byte) int                   { return 0 }
func (discard) HandleDisconnectUser(string) int                   { return 0 }

// startCPU returns a function that reports the process's CPU time per op
// (user and system, GC included), less disturbed than wall time by other
// processes on a shared machine.
func startCPU(b *testing.B) func() {
	cpu := func() int64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return ru.Utime.Nano() + ru.Stime.Nano()
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

var benchData = json.RawMessage(`{"seq":1,"pad":"` + strings.Repeat("x", 100-len(`{"seq":1,"pad":""}`)) + `"}`)

// BenchmarkPublish publishes to one subscribed channel with history off
// (Size 0) and on (the defaults): the cost history adds to a publication
// before fan-out, which the hub shares among the channel's subscribers.
func BenchmarkPublish(b *testing.B) {
	for _, tc := range []struct {
		name string
		lim  history.Limits
	}{
		{"history=off", history.Limits{}},
		{"history=on", history.DefaultLimits},
	} {
		b.Run(tc.name, func(b *testing.B) {
			store := history.NewMemory(history.MemoryConfig{Limits: func(string) history.Limits { return tc.lim }})
			br := broker.NewMemory(store, discard{})
			ctx := context.Background()
			if err := br.Subscribe(ctx, "room", nil, func(history.Result) {}); err != nil {
				b.Fatal(err)
			}
			for range 200 { // history full: every publication also evicts
				br.Publish(ctx, "room", "anon-5a1b2c3d", benchData)
			}
			b.ReportAllocs()
			defer startCPU(b)()
			for b.Loop() {
				if _, err := br.Publish(ctx, "room", "anon-5a1b2c3d", benchData); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSubscribeRecover is the broker's share of a reconnect wave: each
// op is one subscriber recovering the 100 messages it missed, then leaving.
// 1,000 reconnecting clients cost 1,000 ops.
func BenchmarkSubscribeRecover(b *testing.B) {
	store := history.NewMemory(history.MemoryConfig{})
	br := broker.NewMemory(store, discard{})
	ctx := context.Background()
	var pos history.Position
	for i := range 100 {
		pos, _ = br.Publish(ctx, "room", "anon-"+strconv.Itoa(i), benchData)
	}
	q := &history.Query{Since: &history.Position{Offset: pos.Offset - 100, Epoch: pos.Epoch}}
	b.ReportAllocs()
	defer startCPU(b)()
	for b.Loop() {
		var n int
		if err := br.Subscribe(ctx, "room", q, func(r history.Result) {
			if r.Recovered {
				n = len(r.Messages)
			}
		}); err != nil {
			b.Fatal(err)
		}
		if n != 100 {
			b.Fatalf("recovered %d messages, want 100", n)
		}
		br.Unsubscribe(ctx, "room")
	}
}

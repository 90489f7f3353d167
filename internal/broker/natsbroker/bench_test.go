package natsbroker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/broker/natsbroker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/natstest"
)

// BenchmarkPublish is one publish, acknowledged, to a channel with one
// local subscriber, on the memory broker and on the NATS broker (one
// node, an in-process nats-server): the cost of cluster mode per message.
func BenchmarkPublish(b *testing.B) {
	cases := []struct {
		name string
		mk   func(b *testing.B, h broker.Handler) broker.Broker
	}{
		{"memory", func(b *testing.B, h broker.Handler) broker.Broker {
			return broker.NewMemory(history.NewMemory(history.MemoryConfig{IdleTTL: time.Minute}), h)
		}},
		{"nats", func(b *testing.B, h broker.Handler) broker.Broker {
			srv := natstest.Start(b)
			return run(b, natsbroker.Config{URLs: []string{srv.URL()}}, h)
		}},
	}
	data := []byte(`{"text":"a message of about a hundred bytes, like the fan-out benchmarks send: 0123456789"}`)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			br := tc.mk(b, brokertest.NewRecorder())
			ctx := context.Background()
			if err := br.Subscribe(ctx, "bench", nil, func(history.Result) {}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := br.Publish(ctx, "bench", "u", data); err != nil {
					b.Fatal(err)
				}
			}
		})
		// One publisher with up to 100 publishes in flight, as a hub
		// connection of a client with a window of 100 (the NATS broker
		// batches what waits while one is stored).
		b.Run(tc.name+"/window-100", func(b *testing.B) {
			br := tc.mk(b, brokertest.NewRecorder())
			ap, ok := br.(broker.AsyncPublisher)
			if !ok {
				b.Skip("the broker publishes synchronously")
			}
			ctx := context.Background()
			if err := br.Subscribe(ctx, "bench", nil, func(history.Result) {}); err != nil {
				b.Fatal(err)
			}
			window := make(chan struct{}, 100)
			var failed atomic.Pointer[error]
			done := func(_ history.Position, err error) {
				if err != nil {
					failed.Store(&err)
				}
				<-window
			}
			b.ReportAllocs()
			for b.Loop() {
				window <- struct{}{}
				ap.PublishAsync(ctx, "bench", "u", data, done)
			}
			for range cap(window) {
				window <- struct{}{}
			}
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
		})
		// Concurrent publishers (GOMAXPROCS x 8): to one channel, whose
		// publishes the NATS broker sequences one JetStream round trip at
		// a time, and each to a channel of its own, which share the
		// connection and overlap.
		for _, shared := range []bool{true, false} {
			name := tc.name + "/parallel-one-channel"
			if !shared {
				name = tc.name + "/parallel-own-channels"
			}
			b.Run(name, func(b *testing.B) {
				br := tc.mk(b, brokertest.NewRecorder())
				ctx := context.Background()
				var n atomic.Int64
				b.SetParallelism(8)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					channel := "bench"
					if !shared {
						channel = fmt.Sprintf("bench-%d", n.Add(1))
					}
					for pb.Next() {
						if _, err := br.Publish(ctx, channel, "u", data); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

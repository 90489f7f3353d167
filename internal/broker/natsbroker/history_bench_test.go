package natsbroker_test

import (
	"context"
	"testing"

	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/broker/natsbroker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/natstest"
)

// BenchmarkHistory reads a channel's whole history of 100 messages, each
// published alone (one stream message each), and its last 2: the cost of
// a history read or a recovery on the NATS broker.
func BenchmarkHistory(b *testing.B) {
	srv := natstest.Start(b)
	nb := run(b, natsbroker.Config{URLs: []string{srv.URL()}}, brokertest.NewRecorder())
	data := []byte(`{"text":"a message of about a hundred bytes, like the fan-out benchmarks send: 0123456789"}`)
	for range 100 {
		if _, err := nb.Publish(context.Background(), "h", "u", data); err != nil {
			b.Fatal(err)
		}
	}
	for _, limit := range []int{100, 2} {
		b.Run(map[int]string{100: "last-100", 2: "last-2"}[limit], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := nb.History(context.Background(), "h", history.Query{Limit: limit})
				if err != nil || len(res.Messages) != limit {
					b.Fatalf("History: %d messages, %v", len(res.Messages), err)
				}
			}
		})
	}
}

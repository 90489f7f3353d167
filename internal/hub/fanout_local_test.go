package hub

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// queueConn is a transport without a socket: it queues like the real ones
// and is drained by the benchmark, so that the fan-out path is measured
// without system calls.
type queueConn struct{ out *wsloop.Outbox }

func (q *queueConn) Start(wsloop.Handler)             {}
func (q *queueConn) Enqueue(b []byte) wsloop.Pressure { p, _ := q.out.Push(b); return p }
func (q *queueConn) Close(wsloop.Closing)             {}
func (q *queueConn) Abort()                           {}
func (q *queueConn) Closed() (wsloop.Closing, bool)   { return wsloop.Closing{}, false }
func (q *queueConn) SetReadPaused(bool)               {}
func (q *queueConn) QueuePeak() int                   { return q.out.Peak() }
func (q *queueConn) RemoteAddr() string               { return "" }
func (q *queueConn) Path() string                     { return "queue" }

// BenchmarkFanoutLocal publishes 100-byte messages to a channel with 1000
// local subscribers: offset, encoding, and a queue push per subscriber.
// One op is one publication; allocs/op must not grow with subscribers.
// metrics=on runs the hub with a Prometheus registry, metrics=off without.
func BenchmarkFanoutLocal(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "metrics=off"
		if on {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) { benchFanoutLocal(b, on) })
	}
}

func benchFanoutLocal(b *testing.B, metrics bool) {
	const subscribers = 1000
	cfg := DefaultConfig()
	cfg.Transport = TransportGoroutine
	var opts Options
	if metrics {
		opts.Registry = prometheus.NewRegistry()
	}
	s, err := New(cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	conns := make([]*queueConn, subscribers)
	for i := range conns {
		conns[i] = &queueConn{out: wsloop.NewOutbox(1<<20, 1<<40)}
		c := &client{srv: s, conn: conns[i], ctx: ctx,
			info: protocol.ClientInfo{Client: "c" + strconv.Itoa(i), User: "u" + strconv.Itoa(i)}}
		if err := s.reg.add(c); err != nil {
			b.Fatal(err)
		}
		if err := s.broker.Subscribe(ctx, "bench", nil, func(history.Result) { s.reg.addSub(c, "bench") }); err != nil {
			b.Fatal(err)
		}
	}
	data := json.RawMessage(`{"seq":1,"pad":"` + strings.Repeat("x", 100-len(`{"seq":1,"pad":""}`)) + `"}`)
	drain := func() {
		for _, q := range conns {
			q.out.Recycle(q.out.Take())
			q.out.Park()
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.broker.Publish(ctx, "bench", "anon-1", data); err != nil {
			b.Fatal(err)
		}
		if i++; i%64 == 0 {
			b.StopTimer()
			drain()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/delivery")
}

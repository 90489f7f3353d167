package hub_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
)

// gatedBroker is a memory broker whose first publish waits until release
// is closed, like a broker stuck on the network; it sends on started when
// that publish begins to wait.
func gatedBroker(release <-chan struct{}, started chan<- struct{}) func(broker.Handler) (broker.Broker, error) {
	return func(h broker.Handler) (broker.Broker, error) {
		mem := broker.NewMemory(history.NewMemory(history.MemoryConfig{}), h)
		var first atomic.Bool
		return &brokertest.Delayed{Broker: mem, Wait: func(ctx context.Context, op string) error {
			if op != "publish" || first.Swap(true) {
				return nil
			}
			started <- struct{}{}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}, nil
	}
}

// TestBlockingBrokerStallsOnlyItsConnection runs the hub on one event-loop
// goroutine with a broker whose publish hangs. While one client's publish
// hangs, other clients' commands, pings and pushes go on, and the hanging
// client's own later commands wait their turn: replies keep command order.
func TestBlockingBrokerStallsOnlyItsConnection(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := hubtest.StartWith(t, func(c *hub.Config) { c.JoinLeave = false },
		hub.Options{Broker: gatedBroker(release, started), Pollers: 1})
	stuck, other, sub := h.Dial(t), h.Dial(t), h.Dial(t)
	quiet(t, sub, subscribeCmd(1, "news"))
	quiet(t, sub, subscribeCmd(2, "slow"))

	// stuck's publish hangs in the broker; its ping must wait behind it.
	stuck.Send(`{"id":1,"op":"publish","channel":"slow","data":1}` + "\n" + `{"id":2,"op":"ping"}`)
	<-started

	// Meanwhile everyone else is served: a command on another connection,
	// a ping, and a publication pushed to a subscriber.
	quiet(t, other, pingCmd(7))
	res := quiet(t, other, publishCmd(8, "news", "fresh"))
	if res["offset"] != 1.0 {
		t.Fatalf("publish to news: %v, want offset 1", res)
	}
	if m := readMessage(t, sub); m.Channel != "news" {
		t.Fatalf("subscriber got %+v, want the news message", m)
	}
	if status, _ := h.API(t, "GET", "/api/info", nil); status != http.StatusOK {
		t.Fatalf("GET /api/info: %d", status)
	}

	close(release)
	if m := stuck.Read(); m["id"] != 1.0 || result(t, m)["offset"] != 1.0 {
		t.Fatalf("stuck's first reply = %v, want the publish reply", m)
	}
	if m := stuck.Read(); m["id"] != 2.0 {
		t.Fatalf("stuck's second reply = %v, want the ping reply", m)
	}
	if m := readMessage(t, sub); m.Channel != "slow" {
		t.Fatalf("subscriber got %+v, want the slow message", m)
	}
}

// TestBlockingBrokerDisconnect closes a connection whose command hangs in
// the broker: its cleanup runs off the event loop and the hub still stops.
func TestBlockingBrokerDisconnect(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := hubtest.StartWith(t, nil, hub.Options{Broker: gatedBroker(release, started), Pollers: 1})
	c := h.Dial(t)
	quiet(t, c, subscribeCmd(1, "slow"))
	c.Send(publishCmd(2, "slow", 1))
	<-started
	c.Conn.Close()
	other := h.Dial(t)
	quiet(t, other, pingCmd(1))
	close(release)
	if err := h.Stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

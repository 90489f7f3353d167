package natsbroker_test

import (
	"context"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/broker/natsbroker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/natstest"
	"github.com/netkit/netkit/internal/testenv"
)

// TestConformance runs the broker suite against a broker on an in-process
// NATS server; each case gets its own server, so streams start empty.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, h broker.Handler, o brokertest.Options) broker.Broker {
		if o.Now != nil {
			t.Skip("JetStream keeps time on the server: no test clock")
		}
		srv := natstest.Start(t)
		cfg := natsbroker.Config{URLs: []string{srv.URL()}, MaxBytes: o.MaxBytes}
		if o.Limits != nil {
			lim := *o.Limits
			cfg.Limits = func(string) history.Limits { return lim }
			cfg.MaxHistorySize, cfg.MaxHistoryTTL = lim.Size, lim.TTL
		}
		return run(t, cfg, h)
	})
}

// run starts a broker and waits until it is ready; it stops it in
// t.Cleanup.
func run(t *testing.T, cfg natsbroker.Config, h broker.Handler) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitReady(t, b)
	return b
}

func waitReady(t *testing.T, b *natsbroker.Broker) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, b.Ready)
}

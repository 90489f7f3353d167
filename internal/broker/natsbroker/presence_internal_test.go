package natsbroker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/natstest"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/testenv"
)

// TestDeadNodeLeavesPresence cuts a node off NATS without letting it
// clean up, as a crash would: its presence entries expire within the TTL
// while another node's stay, refreshed.
func TestDeadNodeLeavesPresence(t *testing.T) {
	srv := natstest.Start(t)
	mk := func(id string) *Broker {
		b, err := New(Config{URLs: []string{srv.URL()}, NodeID: id, PresenceTTL: time.Second}, brokertest.NewRecorder())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		testenv.WaitFor(t, 10*time.Second, b.Ready)
		return b
	}
	alive, dying := mk("alive"), mk("dying")
	ctx := context.Background()
	if err := alive.Join(ctx, "p", protocol.ClientInfo{Client: "c1", User: "u1"}, false); err != nil {
		t.Fatal(err)
	}
	if err := dying.Join(ctx, "p", protocol.ClientInfo{Client: "c2", User: "u2"}, false); err != nil {
		t.Fatal(err)
	}
	if got, err := alive.Presence(ctx, "p"); err != nil || len(got) != 2 {
		t.Fatalf("Presence = %v, %v; want 2 clients", got, err)
	}
	dying.nc.Close() // no leave, no refresh from now on
	testenv.WaitFor(t, 10*time.Second, func() error {
		got, err := alive.Presence(ctx, "p")
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Client != "c1" {
			return fmt.Errorf("presence %v, want only c1", got)
		}
		return nil
	})
}

package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/testenv"
)

func TestMemory(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, h broker.Handler) broker.Broker {
		return runMemory(t, h)
	})
}

// TestDelayed runs the suite on a memory broker behind brokertest.Delayed,
// the slow broker the hub tests use: the wrapper must change timing only.
func TestDelayed(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, h broker.Handler) broker.Broker {
		return &brokertest.Delayed{Broker: runMemory(t, h), Delay: time.Millisecond}
	})
}

func runMemory(t *testing.T, h broker.Handler) *broker.Memory {
	b := broker.NewMemory(history.NewMemory(), h, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return b
}

// TestMemoryEvictsIdleChannels checks that Run forgets the sequence of a
// channel without subscribers after the idle TTL, keeps subscribed ones, and
// that a forgotten channel comes back with a new epoch.
func TestMemoryEvictsIdleChannels(t *testing.T) {
	store := history.NewMemory()
	b := broker.NewMemory(store, brokertest.NewRecorder(), 40*time.Millisecond)
	ctx := context.Background()
	old, _ := b.Publish(ctx, "idle", "", []byte("1"))
	if err := b.Subscribe(ctx, "kept", func(history.Position) {}); err != nil {
		t.Fatal(err)
	}
	b.Publish(ctx, "kept", "", []byte("1"))

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n := store.Len(); n != 1 {
			return fmt.Errorf("store holds %d channels, want 1", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	pos, _ := b.Publish(ctx, "idle", "", []byte("1"))
	if pos.Offset != 1 || pos.Epoch == old.Epoch {
		t.Fatalf("after eviction publish = %+v, want offset 1 with an epoch other than %s", pos, old.Epoch)
	}
	if pos, _ := b.Position(ctx, "kept"); pos.Offset != 1 {
		t.Fatalf("kept channel offset = %d, want 1", pos.Offset)
	}
}

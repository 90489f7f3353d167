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
	brokertest.Run(t, func(t *testing.T, h broker.Handler, o brokertest.Options) broker.Broker {
		return runMemory(t, h, o)
	})
}

// TestDelayed runs the suite on a memory broker behind brokertest.Delayed,
// the slow broker the hub tests use: the wrapper must change timing only.
func TestDelayed(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, h broker.Handler, o brokertest.Options) broker.Broker {
		return &brokertest.Delayed{Broker: runMemory(t, h, o), Delay: time.Millisecond}
	})
}

// runMemory returns a running memory broker whose store follows o.
func runMemory(t *testing.T, h broker.Handler, o brokertest.Options) *broker.Memory {
	cfg := history.MemoryConfig{MaxBytes: o.MaxBytes, Now: o.Now, IdleTTL: time.Minute}
	if o.Limits != nil {
		lim := *o.Limits
		cfg.Limits = func(string) history.Limits { return lim }
	}
	b := broker.NewMemory(history.NewMemory(cfg), h)
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

// TestMemoryEvictsIdleChannels checks that the broker pins subscribed
// channels: the store's sweep forgets the sequence of a channel without
// subscribers after the idle TTL, keeps subscribed ones, and a forgotten
// channel comes back with a new epoch.
func TestMemoryEvictsIdleChannels(t *testing.T) {
	clock := brokertest.NewClock()
	store := history.NewMemory(history.MemoryConfig{IdleTTL: time.Minute, Now: clock.Now,
		Limits: func(string) history.Limits { return history.Limits{Size: 10, TTL: time.Second} }})
	b := broker.NewMemory(store, brokertest.NewRecorder())
	ctx := context.Background()
	old, _ := b.Publish(ctx, "idle", "", []byte("1"))
	if err := b.Subscribe(ctx, "kept", nil, func(history.Result) {}); err != nil {
		t.Fatal(err)
	}
	b.Publish(ctx, "kept", "", []byte("1"))
	if err := b.Subscribe(ctx, "left", nil, func(history.Result) {}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if err := b.Unsubscribe(ctx, "left"); err != nil { // idle from now
		t.Fatal(err)
	}
	store.Sweep()
	if n := store.Stats().Channels; n != 2 {
		t.Fatalf("store holds %d channels, want kept and left", n)
	}
	pos, _ := b.Publish(ctx, "idle", "", []byte("1"))
	if pos.Offset != 1 || pos.Epoch == old.Epoch {
		t.Fatalf("after eviction publish = %+v, want offset 1 with an epoch other than %s", pos, old.Epoch)
	}
	if pos, _ := b.Position(ctx, "kept"); pos.Offset != 1 {
		t.Fatalf("kept channel offset = %d, want 1", pos.Offset)
	}
}

// TestMemoryRunSweeps checks that the broker's Run drives the store's
// sweeps: an expired message goes without any read touching its channel.
func TestMemoryRunSweeps(t *testing.T) {
	clock := brokertest.NewClock()
	store := history.NewMemory(history.MemoryConfig{Now: clock.Now,
		Limits: func(string) history.Limits { return history.Limits{Size: 10, TTL: time.Second} }})
	b := broker.NewMemory(store, brokertest.NewRecorder())
	b.Publish(context.Background(), "c", "", []byte("1"))
	clock.Advance(time.Minute)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n := store.Stats().Messages; n != 0 {
			return fmt.Errorf("store holds %d messages, want 0", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

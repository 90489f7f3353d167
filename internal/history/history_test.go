package history

import (
	"context"
	"testing"
	"time"
)

func TestMemorySequence(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	fresh, _ := m.Position(ctx, "a")
	if fresh.Offset != 0 || fresh.Epoch == "" {
		t.Fatalf("fresh position = %+v, want offset 0 and an epoch", fresh)
	}
	for want := uint64(1); want <= 3; want++ {
		pos, err := m.Append(ctx, "a")
		if err != nil || pos.Offset != want || pos.Epoch != fresh.Epoch {
			t.Fatalf("Append = %+v, %v; want offset %d in epoch %s", pos, err, want, fresh.Epoch)
		}
	}
	if pos, _ := m.Append(ctx, "b"); pos.Offset != 1 || pos.Epoch == fresh.Epoch {
		t.Fatalf("other channel = %+v, want offset 1 in its own epoch", pos)
	}
	if other := NewMemory(); func() bool { p, _ := other.Position(ctx, "a"); return p.Epoch == fresh.Epoch }() {
		t.Fatal("a new store (a restarted hub) reused an epoch")
	}
}

func TestMemoryEvict(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	old, _ := m.Append(ctx, "idle")
	m.Append(ctx, "kept")
	if n := m.Evict(time.Now().Add(time.Second), func(ch string) bool { return ch == "kept" }); n != 1 || m.Len() != 1 {
		t.Fatalf("Evict removed %d, left %d; want 1 and 1", n, m.Len())
	}
	again, _ := m.Append(ctx, "idle")
	if again.Offset != 1 || again.Epoch == old.Epoch {
		t.Fatalf("after eviction = %+v, want offset 1 in a new epoch (was %s)", again, old.Epoch)
	}
	if n := m.Evict(time.Now().Add(-time.Hour), func(string) bool { return false }); n != 0 {
		t.Fatalf("Evict of channels used within the hour removed %d, want 0", n)
	}
}

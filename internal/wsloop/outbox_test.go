package wsloop

import (
	"strings"
	"testing"
)

func TestOutboxLimits(t *testing.T) {
	tests := []struct {
		name      string
		softItems int
		softBytes int64
		pushes    []int // sizes
		want      []Pressure
	}{
		{name: "item limits", softItems: 2, softBytes: 1 << 20, pushes: []int{1, 1, 1, 1, 1}, want: []Pressure{Queued, Queued, Congested, Congested, Dropped}},
		{name: "byte limits", softItems: 100, softBytes: 10, pushes: []int{4, 6, 1, 9, 1}, want: []Pressure{Queued, Queued, Congested, Congested, Dropped}},
		{name: "one too big", softItems: 100, softBytes: 10, pushes: []int{21, 20}, want: []Pressure{Dropped, Congested}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOutbox(tc.softItems, tc.softBytes)
			for i, n := range tc.pushes {
				if got, _ := o.Push([]byte(strings.Repeat("x", n))); got != tc.want[i] {
					t.Fatalf("push %d (%d bytes) = %v, want %v", i, n, got, tc.want[i])
				}
			}
		})
	}
}

// TestOutboxPendingCounts checks that bytes taken but not written count
// against the limits, and that the drain is reported only once they are
// written.
func TestOutboxPendingCounts(t *testing.T) {
	o := NewOutbox(100, 10)
	if p, _ := o.Push(make([]byte, 8)); p != Queued {
		t.Fatalf("first push = %v, want Queued", p)
	}
	o.Take()
	if p, _ := o.Push(make([]byte, 4)); p != Congested {
		t.Fatalf("push with 8 bytes pending = %v, want Congested", p)
	}
	if o.Sent(8, nil) {
		t.Fatal("drained with 8 bytes still pending")
	}
	if !o.Sent(0, nil) {
		t.Fatal("not drained after the pending bytes were written")
	}
	if o.Sent(0, nil) {
		t.Fatal("drained twice for one congestion")
	}
}

// TestOutboxTotal checks the limit over connections and the recheck that
// follows when the total falls.
func TestOutboxTotal(t *testing.T) {
	tot := &total{soft: 10}
	a, b := NewOutbox(100, 100), NewOutbox(100, 100)
	a.total, b.total = tot, tot
	if p, _ := a.Push(make([]byte, 11)); p != Congested {
		t.Fatalf("a over the total = %v, want Congested", p)
	}
	if p, _ := b.Push(make([]byte, 1)); p != Congested {
		t.Fatalf("b over the total = %v, want Congested", p)
	}
	b.Take()
	rechecked := 0
	if b.Sent(0, func() { rechecked++ }) {
		t.Fatal("b drained while a keeps the total over")
	}
	if p, _ := b.Push(make([]byte, 10)); p != Dropped {
		t.Fatalf("push past twice the total = %v, want Dropped", p)
	}
	a.Discard()
	if rechecked != 1 {
		t.Fatalf("recheck ran %d times after the total fell, want 1", rechecked)
	}
	if !b.CheckDrain(nil) {
		t.Fatal("b not drained after the total fell")
	}
	if n := tot.bytes.Load(); n != 0 {
		t.Fatalf("total = %d after everything left, want 0", n)
	}
}

// TestOutboxPeak: the high-water mark is the most objects queued at once,
// and stays after the queue is taken.
func TestOutboxPeak(t *testing.T) {
	o := NewOutbox(8, 1<<20)
	for range 3 {
		o.Push([]byte("x"))
	}
	o.Recycle(o.Take())
	o.Push([]byte("y"))
	if got := o.Peak(); got != 3 {
		t.Fatalf("Peak = %d, want 3", got)
	}
}

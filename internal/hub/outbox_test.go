package hub

import (
	"strings"
	"testing"
)

func TestOutboxLimits(t *testing.T) {
	tests := []struct {
		name     string
		maxItems int
		maxBytes int64
		pushes   []int // sizes
		want     []bool
	}{
		{name: "item limit", maxItems: 2, maxBytes: 1 << 20, pushes: []int{1, 1, 1}, want: []bool{true, true, false}},
		{name: "byte limit", maxItems: 100, maxBytes: 10, pushes: []int{4, 6, 1}, want: []bool{true, true, false}},
		{name: "one too big", maxItems: 100, maxBytes: 10, pushes: []int{11, 10}, want: []bool{false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutbox(tc.maxItems, tc.maxBytes)
			for i, n := range tc.pushes {
				if got, _ := o.push([]byte(strings.Repeat("x", n))); got != tc.want[i] {
					t.Fatalf("push %d (%d bytes) = %v, want %v", i, n, got, tc.want[i])
				}
			}
		})
	}
}

func TestOutboxTakeEmptiesAndSignals(t *testing.T) {
	o := newOutbox(2, 100)
	o.push([]byte("a"))
	o.push([]byte("b"))
	select {
	case <-o.ready:
	default:
		t.Fatal("no ready signal after the first push")
	}
	batch := o.take(nil)
	if len(batch) != 2 || string(batch[0]) != "a" || string(batch[1]) != "b" {
		t.Fatalf("take = %q, want [a b]", batch)
	}
	if ok, _ := o.push([]byte("c")); !ok {
		t.Fatal("push after take was refused: take did not reset the limits")
	}
	if ok, _ := o.push([]byte("d")); !ok {
		t.Fatal("push after take was refused: take did not reset the limits")
	}
	batch = o.take(batch)
	if len(batch) != 2 || string(batch[0]) != "c" {
		t.Fatalf("second take = %q, want [c d]", batch)
	}
	if got := o.take(batch); len(got) != 0 {
		t.Fatalf("take of an empty outbox = %q", got)
	}
}

func TestOutboxWriterHandoff(t *testing.T) {
	o := newOutbox(10, 100)
	if _, start := o.push([]byte("a")); !start {
		t.Fatal("first push did not ask for a writer")
	}
	if _, start := o.push([]byte("b")); start {
		t.Fatal("second push asked for a second writer")
	}
	if o.park() {
		t.Fatal("writer parked with items queued")
	}
	o.take(nil)
	if !o.park() {
		t.Fatal("writer could not park with nothing queued")
	}
	if !o.wake() {
		t.Fatal("wake after park did not ask for a writer")
	}
	if o.wake() {
		t.Fatal("second wake asked for a second writer")
	}
}

package wsloop

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
			o := NewOutbox(tc.maxItems, tc.maxBytes)
			for i, n := range tc.pushes {
				if got, _, _ := o.Push([]byte(strings.Repeat("x", n))); got != tc.want[i] {
					t.Fatalf("push %d (%d bytes) = %v, want %v", i, n, got, tc.want[i])
				}
			}
		})
	}
}

func TestOutboxTakeEmpties(t *testing.T) {
	o := NewOutbox(2, 100)
	o.Push([]byte("a"))
	o.Push([]byte("b"))
	batch := o.Take()
	if len(batch) != 2 || string(batch[0]) != "a" || string(batch[1]) != "b" {
		t.Fatalf("take = %q, want [a b]", batch)
	}
	if ok, _, _ := o.Push([]byte("c")); !ok {
		t.Fatal("push after take was refused: take did not reset the limits")
	}
	if ok, _, _ := o.Push([]byte("d")); !ok {
		t.Fatal("push after take was refused: take did not reset the limits")
	}
	batch = o.Take()
	if len(batch) != 2 || string(batch[0]) != "c" {
		t.Fatalf("second take = %q, want [c d]", batch)
	}
	if got := o.Take(); len(got) != 0 {
		t.Fatalf("take of an empty outbox = %q", got)
	}
}

func TestOutboxWriterHandoff(t *testing.T) {
	o := NewOutbox(10, 100)
	if _, start, _ := o.Push([]byte("a")); !start {
		t.Fatal("first push did not ask for a writer")
	}
	if _, start, _ := o.Push([]byte("b")); start {
		t.Fatal("second push asked for a second writer")
	}
	if o.Park() {
		t.Fatal("writer parked with items queued")
	}
	o.Take()
	if !o.Park() {
		t.Fatal("writer could not park with nothing queued")
	}
	if !o.Activate() {
		t.Fatal("wake after park did not ask for a writer")
	}
	if o.Activate() {
		t.Fatal("second wake asked for a second writer")
	}
}

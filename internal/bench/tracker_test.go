package bench

import (
	"slices"
	"testing"
)

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name       string
		arrivals   []uint64
		last       uint64   // the publisher's last sequence number
		skip       []uint64 // refused by the server
		lost       uint64
		duplicates uint64
		reordered  uint64
		unique     uint64
		missing    []seqRange
	}{
		{name: "in order", arrivals: []uint64{1, 2, 3, 4}, last: 4, unique: 4},
		{name: "nothing arrived", last: 5, lost: 5},
		{name: "tail lost", arrivals: []uint64{1, 2}, last: 5, lost: 3, unique: 2},
		{name: "gap", arrivals: []uint64{1, 2, 5, 6}, last: 6, lost: 2, unique: 4, missing: []seqRange{{3, 4}}},
		{name: "first lost", arrivals: []uint64{2, 3}, last: 3, lost: 1, unique: 2, missing: []seqRange{{1, 1}}},
		{name: "duplicate", arrivals: []uint64{1, 2, 2, 3}, last: 3, duplicates: 1, unique: 3},
		{name: "duplicate of the first", arrivals: []uint64{1, 1, 1}, last: 1, duplicates: 2, unique: 1},
		{name: "swap", arrivals: []uint64{1, 3, 2, 4}, last: 4, reordered: 1, unique: 4},
		{name: "late fill of a range's start", arrivals: []uint64{1, 5, 2}, last: 5, lost: 2, reordered: 1, unique: 3, missing: []seqRange{{3, 4}}},
		{name: "late fill of a range's end", arrivals: []uint64{1, 5, 4}, last: 5, lost: 2, reordered: 1, unique: 3, missing: []seqRange{{2, 3}}},
		{name: "late fill splits a range", arrivals: []uint64{1, 9, 5}, last: 9, lost: 6, reordered: 1, unique: 3, missing: []seqRange{{2, 4}, {6, 8}}},
		{name: "reversed", arrivals: []uint64{4, 3, 2, 1}, last: 4, reordered: 3, unique: 4},
		{name: "reordered then duplicated", arrivals: []uint64{2, 1, 1, 2}, last: 2, reordered: 1, duplicates: 2, unique: 2},
		{name: "several gaps", arrivals: []uint64{1, 3, 5, 7}, last: 8, lost: 4, unique: 4, missing: []seqRange{{2, 2}, {4, 4}, {6, 6}}},
		{name: "refused publish is not lost", arrivals: []uint64{1, 3}, last: 3, skip: []uint64{2}, lost: 0, unique: 2, missing: []seqRange{{2, 2}}},
		{name: "refused last publish is not lost", arrivals: []uint64{1, 2}, last: 3, skip: []uint64{3}, lost: 0, unique: 2},
		{name: "refused but delivered anyway", arrivals: []uint64{1, 2}, last: 2, skip: []uint64{2}, lost: 0, unique: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for _, s := range tc.arrivals {
				tr.add(s)
			}
			if got := tr.lost(tc.last, tc.skip); got != tc.lost {
				t.Errorf("lost = %d, want %d", got, tc.lost)
			}
			if tr.duplicates != tc.duplicates {
				t.Errorf("duplicates = %d, want %d", tr.duplicates, tc.duplicates)
			}
			if tr.reordered != tc.reordered {
				t.Errorf("reordered = %d, want %d", tr.reordered, tc.reordered)
			}
			if tr.unique != tc.unique {
				t.Errorf("unique = %d, want %d", tr.unique, tc.unique)
			}
			if !slices.Equal(tr.missing, tc.missing) {
				t.Errorf("missing = %v, want %v", tr.missing, tc.missing)
			}
		})
	}
}

// TestSeqTrackerShuffled delivers 1..n in a scrambled order with some
// numbers dropped and some repeated, and checks the totals.
func TestSeqTrackerShuffled(t *testing.T) {
	const n = 1000
	var arrivals []uint64
	for s := uint64(1); s <= n; s++ {
		if s%10 == 0 {
			continue // dropped: 100
		}
		arrivals = append(arrivals, s)
		if s%25 == 0 {
			arrivals = append(arrivals, s) // repeated: 20 (50, 150, ... are not dropped)
		}
	}
	// Swap neighbours in blocks: each swap reorders one number.
	for i := 0; i+1 < len(arrivals); i += 7 {
		arrivals[i], arrivals[i+1] = arrivals[i+1], arrivals[i]
	}
	var tr seqTracker
	for _, s := range arrivals {
		tr.add(s)
	}
	if got := tr.lost(n, nil); got != 100 {
		t.Errorf("lost = %d, want 100", got)
	}
	if tr.duplicates != 20 {
		t.Errorf("duplicates = %d, want 20", tr.duplicates)
	}
	if tr.unique != n-100 {
		t.Errorf("unique = %d, want %d", tr.unique, n-100)
	}
	if tr.reordered == 0 {
		t.Errorf("reordered = 0, want some")
	}
}

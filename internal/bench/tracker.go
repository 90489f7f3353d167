package bench

import "sort"

// seqTracker follows the sequence numbers that one subscriber receives from
// one publisher. Publishers number their messages 1, 2, 3, ... A number
// above the next expected one opens a gap; a number that fills a gap later
// is reordered; a number seen before is a duplicate. What is still missing
// at the end is lost. Owned by the subscriber's reader.
type seqTracker struct {
	max        uint64     // highest number seen; 0 before the first
	unique     uint64     // distinct numbers seen
	duplicates uint64     // numbers seen more than once, counting each extra copy
	reordered  uint64     // numbers that arrived after a higher one
	missing    []seqRange // gaps below max not filled yet, ascending, disjoint
}

// seqRange is the numbers lo..hi, both included.
type seqRange struct{ lo, hi uint64 }

// add records the arrival of seq (>= 1).
func (t *seqTracker) add(seq uint64) {
	switch {
	case seq == t.max+1:
		t.max = seq
		t.unique++
	case seq > t.max+1:
		t.missing = append(t.missing, seqRange{t.max + 1, seq - 1})
		t.max = seq
		t.unique++
	case t.fill(seq):
		t.reordered++
		t.unique++
	default:
		t.duplicates++
	}
}

// fill removes seq from the missing ranges and reports whether it was
// missing.
func (t *seqTracker) fill(seq uint64) bool {
	// The first range that ends at or after seq.
	i := sort.Search(len(t.missing), func(i int) bool { return t.missing[i].hi >= seq })
	if i == len(t.missing) || t.missing[i].lo > seq {
		return false
	}
	r := t.missing[i]
	switch {
	case r.lo == r.hi:
		t.missing = append(t.missing[:i], t.missing[i+1:]...)
	case seq == r.lo:
		t.missing[i].lo++
	case seq == r.hi:
		t.missing[i].hi--
	default: // split r around seq
		t.missing = append(t.missing, seqRange{})
		copy(t.missing[i+2:], t.missing[i+1:])
		t.missing[i] = seqRange{r.lo, seq - 1}
		t.missing[i+1] = seqRange{seq + 1, r.hi}
	}
	return true
}

// lost returns how many of the numbers 1..last never arrived, leaving out
// those in skip (publishes the server refused, which nobody should get).
func (t *seqTracker) lost(last uint64, skip []uint64) uint64 {
	var n uint64
	for _, r := range t.missing {
		if r.lo > last {
			break
		}
		n += min(r.hi, last) - r.lo + 1
	}
	if last > t.max {
		n += last - t.max
	}
	for _, s := range skip {
		if s >= 1 && s <= last && t.isMissing(s) {
			n--
		}
	}
	return n
}

// isMissing reports whether seq has not arrived (as far as numbers up to
// max go, and any number above max).
func (t *seqTracker) isMissing(seq uint64) bool {
	if seq > t.max {
		return true
	}
	i := sort.Search(len(t.missing), func(i int) bool { return t.missing[i].hi >= seq })
	return i < len(t.missing) && t.missing[i].lo <= seq
}

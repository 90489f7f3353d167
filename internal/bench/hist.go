package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear, like HdrHistogram with 2 significant
// digits: each power of two is split into 1<<subBits equal buckets, so a
// bucket is at most 1/64 (1.6 %) wider than the values it holds.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	// Values below subBuckets get a bucket each; every exponent above adds
	// subBuckets more, up to the largest int64.
	numBuckets = (64 - subBits) * subBuckets
)

// histogram counts durations (in nanoseconds) for percentiles. Record is
// safe for concurrent use; read the results once recording has stopped.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

// bucketOf returns the index of the bucket holding v >= 0.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [subBuckets, 2*subBuckets)
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<e - 1
}

// Record counts one duration; negative durations count as 0.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns how many durations were recorded.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest duration recorded, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the duration that q (0 < q <= 1) of the recorded values
// do not exceed, rounded up to the top of its bucket (and never above Max).
// It returns 0 if nothing was recorded.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.Max())
		}
	}
	return h.Max()
}

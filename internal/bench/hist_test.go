package bench

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{5 * time.Millisecond}, 0.99, 5 * time.Millisecond},
		{"small exact values", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
		{"p90 of 1..10", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"p100 is max", []time.Duration{1, 2, 3, 1000}, 1, 1000},
		{"zero and negative", []time.Duration{0, -5, 0}, 0.5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			if got := h.Quantile(tc.q); got != tc.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// TestHistogramRelativeError records 1µs..1s uniformly and checks every
// percentile against the exact one: log-linear buckets are within 1/64.
func TestHistogramRelativeError(t *testing.T) {
	var h histogram
	const n = 100000
	for i := 1; i <= n; i++ {
		h.Record(time.Duration(i) * 10 * time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := time.Duration(q*n) * 10 * time.Microsecond
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/64 {
			t.Errorf("Quantile(%v) = %v, want %v to %v", q, got, exact, exact+exact/64)
		}
	}
	if got, want := h.Max(), time.Duration(n)*10*time.Microsecond; got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
	if h.Count() != n {
		t.Errorf("Count = %d, want %d", h.Count(), n)
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lies in its bucket, and buckets are ordered and contiguous.
	prevHigh := uint64(0)
	for i := 1; i < numBuckets; i++ {
		lo := prevHigh + 1
		if b := bucketOf(lo); b != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, b, i)
		}
		high := bucketHigh(i)
		if high < lo || bucketOf(high) != i {
			t.Fatalf("bucket %d: high %d, low %d", i, high, lo)
		}
		if high == 1<<64-1 {
			break
		}
		prevHigh = high
	}
	for range 10000 {
		v := rand.Uint64() >> rand.IntN(64)
		i := bucketOf(v)
		if v > bucketHigh(i) || (i > 0 && v <= bucketHigh(i-1)) {
			t.Fatalf("value %d in bucket %d: [%d, %d]", v, i, bucketHigh(i-1)+1, bucketHigh(i))
		}
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000 + i))
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 7999 {
		t.Fatalf("Count %d, Max %d; want 8000, 7999", h.Count(), h.Max())
	}
}

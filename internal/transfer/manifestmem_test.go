package transfer

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// measureManifest decodes the largest manifest the limits allow (the
// most entries, then the most bytes) the way the receiver holds it, and
// reports the heap it keeps and the budget charged for it.
func measureManifest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries int
		nameLen int
	}{
		{"most entries, short names", maxEntries, 8},
		{"most bytes, long names", maxManifest / (entryFixedLen + 4000), 4000},
	} {
		var b []byte
		{
			entries := make([]entry, tc.entries)
			for i := range entries {
				n := strconv.Itoa(i)
				entries[i] = entry{Kind: kindFile, Name: n + strings.Repeat("x", max(tc.nameLen-len(n), 1)), Mode: 0o644, Size: 1}
			}
			b = encodeManifest(entries)
		}
		if len(b) > maxManifest {
			t.Fatalf("%s: %d bytes", tc.name, len(b))
		}
		p := b // the receiver reads it into a slice of its own (readPayload)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		entries, err := decodeManifestOwned(p)
		if err != nil {
			t.Fatal(err)
		}
		files := make([]fileState, len(entries))
		conflicts := manifestConflicts(entries)
		runtime.ReadMemStats(&m1)
		allocated := int64(m1.TotalAlloc-m0.TotalAlloc) + int64(len(p))
		runtime.GC()
		runtime.ReadMemStats(&m1)
		kept := int64(m1.HeapAlloc) - int64(m0.HeapAlloc) + int64(len(p))
		t.Logf("%s: %d entries, %.1f MiB manifest; held while answering %.1f MiB, allocated at most %.1f MiB (+%.1f MiB while the payload grows), charged %.1f MiB",
			tc.name, len(entries), mib(len(p)), mib(kept), mib(allocated), mib(len(p)/2), mib(manifestCost(int64(len(p)))))
		runtime.KeepAlive(entries)
		runtime.KeepAlive(files)
		runtime.KeepAlive(conflicts)
		runtime.KeepAlive(p)
	}
}

func mib[T int | int64](n T) float64 { return float64(n) / (1 << 20) }

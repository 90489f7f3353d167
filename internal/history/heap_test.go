package history

import (
	"encoding/json"
	"runtime"
	"strconv"
	"testing"
)

func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestMemoryCapMatchesHeap is the abuse case of issue 14: one client
// publishes to 200,000 distinct channels. Under a 4 MiB cap the store must
// stay under the cap by its own accounting and by the heap the runtime
// reports. Without a cap it compares the accounting of one channel state
// with its real cost.
func TestMemoryCapMatchesHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes to 200,000 channels")
	}
	data := json.RawMessage(`{"text":"hello"}`)
	tests := []struct {
		name     string
		channels int
		maxBytes int64
	}{
		{"capped", 200_000, 4 << 20},
		{"uncapped", 100_000, 1 << 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := heapAlloc()
			m := NewMemory(MemoryConfig{MaxBytes: tc.maxBytes})
			for i := range tc.channels {
				if _, _, err := m.Append(ctx, "flood:"+strconv.Itoa(i), "anon-5a1b2c3d", data); err != nil {
					t.Fatal(err)
				}
			}
			heap := heapAlloc() - before
			st := m.Stats()
			runtime.KeepAlive(m)
			t.Logf("%d channels published, %d kept with %d messages: accounted %d bytes (%.0f per channel), heap %d bytes (%.0f per channel)",
				tc.channels, st.Channels, st.Messages, st.Bytes, float64(st.Bytes)/float64(st.Channels), heap, float64(heap)/float64(st.Channels))
			if st.Bytes > tc.maxBytes {
				t.Fatalf("store accounts %d bytes, over its cap %d", st.Bytes, tc.maxBytes)
			}
			// The accounting must not undercount the heap by more than the
			// runtime's own noise (a few KiB of unrelated allocations).
			if heap > st.Bytes+64<<10 {
				t.Fatalf("heap grew %d bytes, the store accounts %d: the accounting undercounts", heap, st.Bytes)
			}
		})
	}
}

package transfer

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestReceiverWorstCase measures a receiver with the default limits
// while --max-conns senders each send the largest manifest at once: the
// Go heap's peak and the process's peak RSS, for docs/transfer.md.
//
//	NETKIT_MANIFEST_MEM=1 go test -run TestReceiverWorstCase -v ./internal/transfer
func TestReceiverWorstCase(t *testing.T) {
	if os.Getenv("NETKIT_MANIFEST_MEM") == "" {
		t.Skip("set NETKIT_MANIFEST_MEM=1 to measure")
	}
	const conns = 4
	var manifests [conns][]byte // distinct names: every connection claims its own
	for c := range conns {
		entries := make([]entry, maxEntries)
		for i := range entries {
			n := strconv.Itoa(c) + "-" + strconv.Itoa(i)
			entries[i] = entry{Kind: kindFile, Name: n + strings.Repeat("x", max(8-len(n), 1)), Mode: 0o644, Size: 1}
		}
		manifests[c] = encodeManifest(entries)
	}
	for _, tc := range []struct {
		name   string
		budget int64
	}{{"default budget", 0}, {"no budget (as in v1)", 1 << 40}} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
			rss0 := vmHWM(t)
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			heap0 := m.HeapInuse
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			// Receive without an event log: the tests' one keeps every event.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			free := func() (int64, error) { return 1 << 50, nil }
			go func() {
				done <- Receive(ctx, ln, RecvConfig{Dir: t.TempDir(), Code: testCode, ManifestMem: tc.budget, freeSpace: free, IdleTimeout: time.Minute})
			}()
			defer func() { cancel(); <-done }()
			var wg sync.WaitGroup
			var answered, refused atomic.Int64
			var why atomic.Value
			for c := range conns {
				s := dialRaw(t, ln.Addr().String())
				wg.Add(1)
				go func() {
					defer wg.Done()
					var hdr [frameHdrLen]byte // header and payload apart: no copy of 32 MiB
					hdr[0] = fManifest
					binary.BigEndian.PutUint32(hdr[1:], uint32(len(manifests[c])))
					s.conn.Write(hdr[:])
					s.conn.Write(manifests[c])
					for i := 0; i < maxEntries; i++ {
						s.conn.SetReadDeadline(time.Now().Add(time.Minute))
						typ, p, err := readFrame(s.br, &s.fbuf)
						if err != nil || typ == fAbort {
							refused.Add(1)
							why.Store(fmt.Sprint(err, string(p)))
							return
						}
					}
					answered.Add(1)
				}()
			}
			wg.Wait()
			close(stop)
			<-sampled
			t.Logf("%d connections, each a %.1f MiB manifest of %d entries: %d answered in full, %d refused (%v); Go heap in use peaked %.0f MiB above idle; peak RSS %.0f MiB above idle",
				conns, mib(len(manifests[0])), maxEntries, answered.Load(), refused.Load(), why.Load(), mib(int64(peak.Load()-heap0)), mib(vmHWM(t)-rss0))
		})
	}
}

// vmHWM returns this process's peak resident set in bytes.
func vmHWM(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmHWM")
	return 0
}

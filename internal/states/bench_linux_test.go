package states

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// benchPairsPerListener stays under the accept backlog (somaxconn, 4096
// by default), so that every connection completes on both ends.
const benchPairsPerListener = 3000

// openPairs makes n loopback connections that are never accepted: the
// server ends wait, ESTABLISHED, in the listeners' accept queues and take
// no descriptor, so n pairs (2n sockets) cost this process n descriptors.
func openPairs(b *testing.B, n int) {
	b.Helper()
	var lns []net.Listener
	var conns []net.Conn
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		for _, ln := range lns {
			ln.Close()
		}
	})
	for i := 0; i < n; i++ {
		if i%benchPairsPerListener == 0 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			lns = append(lns, ln)
		}
		c, err := net.Dial("tcp", lns[len(lns)-1].Addr().String())
		if err != nil {
			b.Fatalf("connection %d: %v (raise ulimit -n?)", i, err)
		}
		conns = append(conns, c)
	}
}

// BenchmarkSnapshot times one snapshot of every TCP socket with
// NETKIT_STATES_BENCH_PAIRS loopback connections open (default 1000;
// bench/compare-states.sh uses 9,990 for about 20,000 sockets), through
// netlink, through /proc, and, for comparison, "ss -tan" and "netstat
// -an" run as commands with their output discarded.
func BenchmarkSnapshot(b *testing.B) {
	pairs := 1000
	if v := os.Getenv("NETKIT_STATES_BENCH_PAIRS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("NETKIT_STATES_BENCH_PAIRS=%q: want a number", v)
		}
		pairs = n
	}
	openPairs(b, pairs)
	ctx := context.Background()
	socks, err := Snapshot(ctx, Netlink)
	if err != nil {
		b.Fatal(err)
	}
	sockets := float64(len(socks))

	for _, src := range []Source{Netlink, Proc} {
		b.Run("netkit-"+string(src), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Snapshot(ctx, src); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(sockets, "sockets")
		})
		b.Run("netkit-"+string(src)+"-table", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				socks, err := Snapshot(ctx, src)
				if err != nil {
					b.Fatal(err)
				}
				if err := WriteTable(io.Discard, Select(socks, Filter{}), false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(sockets, "sockets")
		})
	}
	for _, args := range [][]string{{"ss", "-tan"}, {"netstat", "-an"}, {"netstat", "-tan"}} {
		b.Run(args[0]+args[1], func(b *testing.B) {
			path, err := exec.LookPath(args[0])
			if err != nil {
				b.Skipf("%s not installed", args[0])
			}
			for b.Loop() {
				if err := exec.Command(path, args[1:]...).Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(sockets, "sockets")
		})
	}
}

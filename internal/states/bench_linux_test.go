package states

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
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
// bench/compare-states.sh uses 5,000 for about 10,000 sockets), through
// netlink, through /proc, and, for comparison, "ss -tan", "ss -tanp" and
// "netstat -an" run as commands with their output discarded. With
// NETKIT_STATES_BENCH_BIN, a netkit binary, it also runs "netkit states"
// (plain, -p and --summary) as commands, the way a user does.
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

	b.Run("netkit-netlink-by-family", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var socks []Socket
			if _, err := dumpNetlink(ctx, [][]byte{diagRequest(afInet, 1), diagRequest(afInet6, 2)}, func(s Socket) { socks = append(socks, s) }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(sockets, "sockets")
	})
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
	cmds := []struct {
		name string
		args []string
	}{
		{"ss-tan", []string{"ss", "-tan"}},
		{"ss-tanp", []string{"ss", "-tanp"}},
		{"netstat-an", []string{"netstat", "-an"}},
		{"netstat-tan", []string{"netstat", "-tan"}},
	}
	if bin := os.Getenv("NETKIT_STATES_BENCH_BIN"); bin != "" {
		cmds = append(cmds, []struct {
			name string
			args []string
		}{
			{"netkit-states", []string{bin, "states"}},
			{"netkit-states-p", []string{bin, "states", "-p"}},
			{"netkit-states-summary", []string{bin, "states", "--summary"}},
			{"ss-s", []string{"ss", "-s"}},
		}...)
	}
	for _, c := range cmds {
		b.Run(c.name, func(b *testing.B) {
			path, err := exec.LookPath(c.args[0])
			if err != nil {
				b.Skipf("%s not installed", c.args[0])
			}
			var cpu time.Duration
			for b.Loop() {
				cmd := exec.Command(path, c.args[1:]...)
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(sockets, "sockets")
			// CPU time (user + system) of the command: steadier than the
			// wall time on a machine shared with other work.
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

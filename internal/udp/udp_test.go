package udp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

// listen opens a UDP socket on host:0, skipping the test when host is ::1
// and this machine has no IPv6 loopback.
func listen(t *testing.T, host string) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(mustAddrPort(t, host)))
	if err != nil {
		if host == "::1" {
			t.Skipf("IPv6 loopback ::1 not available: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func mustAddrPort(t *testing.T, host string) netip.AddrPort {
	t.Helper()
	return parseAddrPort(t, net.JoinHostPort(host, "0"))
}

// serve runs Serve on a fresh socket until the test ends and returns the
// address, a function that stops it and returns its stats, and the output.
func serve(t *testing.T, host string, mode Mode) (addr string, stop func() Stats, out *testenv.Buffer) {
	t.Helper()
	conn := listen(t, host)
	// Serve asks for these too, but in its goroutine: a test that sends
	// at once could fill the default buffers first and lose datagrams.
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	out = &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Serve(ctx, conn, ServeConfig{Mode: mode, Out: out})
		done <- result{st, err}
	}()
	var once sync.Once
	var res result
	stop = func() Stats {
		once.Do(func() {
			cancel()
			res = <-done
			if res.err != nil {
				t.Errorf("Serve: %v", res.err)
			}
		})
		return res.st
	}
	t.Cleanup(func() { stop() })
	return conn.LocalAddr().String(), stop, out
}

func TestServeModes(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr, stop, out := serve(t, host, ModeEcho)
			for i := range 3 { // three peers, one socket each
				c := dialUDP(t, addr)
				msg := fmt.Sprintf("peer %d \x00\xff", i)
				if got := roundTrip(t, c, []byte(msg)); string(got) != msg {
					t.Fatalf("echo = %q, want %q", got, msg)
				}
			}
			big := bytes.Repeat([]byte{0xff}, 65000)
			if got := roundTrip(t, dialUDP(t, addr), big); !bytes.Equal(got, big) {
				t.Fatalf("echo of 65000 bytes returned %d bytes", len(got))
			}
			st := stop()
			want := Stats{Datagrams: 4, Bytes: int64(3*len("peer 0 \x00\xff") + 65000), Peers: 4}
			if st != want {
				t.Fatalf("stats = %+v, want %+v", st, want)
			}
			if out.String() != "" {
				t.Fatalf("echo mode printed %q", out.String())
			}
		})
	}
}

func TestServePrint(t *testing.T) {
	addr, stop, out := serve(t, "127.0.0.1", ModePrint)
	c := dialUDP(t, addr)
	for _, m := range []string{"hi", "\x1b[31mred\n", "\xff"} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// Print mode does not answer; an echo server would. Stop, then look.
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := strings.Count(out.String(), "\n"); n < 3 {
			return fmt.Errorf("%d lines printed, want 3", n)
		}
		return nil
	})
	st := stop()
	peer := c.LocalAddr().String()
	want := peer + " 2: hi\n" + peer + ` 9: \x1b[31mred\n` + "\n" + peer + ` 1: \xff` + "\n"
	if out.String() != want {
		t.Fatalf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
	if st.Datagrams != 3 || st.Peers != 1 || st.String() != "3 datagrams, 12 bytes, 1 peers" {
		t.Fatalf("stats = %+v (%s)", st, st)
	}
}

func TestDialLines(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr, _, _ := serve(t, host, ModeEcho)
			var out bytes.Buffer
			cfg := DialConfig{Addr: addr, Timeout: 5 * time.Second}
			st, err := Dial(context.Background(), cfg, strings.NewReader("one\ntwo\x07\nthree\n"), &out)
			if err != nil {
				t.Fatal(err)
			}
			if st != (DialStats{Sent: 3, Received: 3}) {
				t.Fatalf("stats = %+v, want 3 sent, 3 received", st)
			}
			if got, want := out.String(), "one\ntwo\\a\nthree\n"; got != want {
				t.Fatalf("stdout = %q, want %q", got, want)
			}
		})
	}
}

func TestDialCount(t *testing.T) {
	addr, _, _ := serve(t, "127.0.0.1", ModeEcho)
	var out bytes.Buffer
	st, err := Dial(context.Background(), DialConfig{Addr: addr, Count: 5, Size: 100, Timeout: 5 * time.Second}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 5 || st.Received != 5 {
		t.Fatalf("stats = %+v, want 5 and 5", st)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if len(first) != 100 || !strings.HasPrefix(first, "netkit 1 ") {
		t.Fatalf("first reply = %q, want 100 bytes starting \"netkit 1 \"", first)
	}
}

func TestDialNoReply(t *testing.T) {
	addr, _, _ := serve(t, "127.0.0.1", ModeDiscard)
	_, err := Dial(context.Background(), DialConfig{Addr: addr, Count: 1, Timeout: 100 * time.Millisecond}, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Fatalf("err = %v, want no reply", err)
	}
}

func TestBench(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr, _, _ := serve(t, host, ModeEcho)
			rep, err := Bench(context.Background(), BenchConfig{Addr: addr, Rate: 2000, Size: 100, Duration: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Sent != 1000 || rep.Lost != 0 || rep.Duplicates != 0 || rep.Received != 1000 {
				t.Fatalf("report = %+v, want 1000 sent and received, none lost", rep)
			}
			if rep.RTTP50Ms <= 0 || rep.RTTP99Ms < rep.RTTP50Ms || rep.JitterMs < 0 {
				t.Fatalf("rtt p50 %v p99 %v jitter %v: want 0 < p50 <= p99", rep.RTTP50Ms, rep.RTTP99Ms, rep.JitterMs)
			}
		})
	}
}

// TestBenchPaced runs above benchWakes datagrams/s, where the sender
// wakes for runs of datagrams: it must still send exactly rate*duration.
func TestBenchPaced(t *testing.T) {
	addr, _, _ := serve(t, "127.0.0.1", ModeEcho)
	rep, err := Bench(context.Background(), BenchConfig{Addr: addr, Rate: 50000, Size: 64, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Loss is possible on a busy machine at this rate; the count sent
	// is not.
	if rep.Sent != 10000 || rep.Received == 0 || rep.Duplicates != 0 || rep.SendErrors != 0 {
		t.Fatalf("report = %+v, want 10000 sent, some received, no duplicates", rep)
	}
}

func TestBenchPace(t *testing.T) {
	tests := []struct {
		rate int
		want int64
	}{
		{1, 1}, {2000, 1}, {benchWakes, 1}, {2 * benchWakes, 2}, {200000, 20}, {10000000, benchBatch},
	}
	for _, tc := range tests {
		if got := benchPace(tc.rate); got != tc.want {
			t.Errorf("benchPace(%d) = %d, want %d", tc.rate, got, tc.want)
		}
	}
}

// TestBenchLoss sends through a relay that drops every 10th datagram on
// the way to the echo server: the report must say 10% lost.
func TestBenchLoss(t *testing.T) {
	addr, _, _ := serve(t, "127.0.0.1", ModeEcho)
	relay := startRelay(t, addr, relayFaults{dropEvery: 10})
	rep, err := Bench(context.Background(), BenchConfig{Addr: relay, Rate: 4000, Size: 64, Duration: 500 * time.Millisecond, Wait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 2000 || rep.LossPercent < 8 || rep.LossPercent > 12 {
		t.Fatalf("sent %d, loss %.2f%%, want 2000 and 10%% ± 2", rep.Sent, rep.LossPercent)
	}
	if rep.Duplicates != 0 {
		t.Fatalf("duplicates = %d, want 0", rep.Duplicates)
	}
}

// TestBenchDuplicatesAndReordering uses a relay that sends every 5th
// datagram twice and holds every 7th back until after the next one.
func TestBenchDuplicatesAndReordering(t *testing.T) {
	addr, _, _ := serve(t, "127.0.0.1", ModeEcho)
	relay := startRelay(t, addr, relayFaults{dupEvery: 5, swapEvery: 7})
	rep, err := Bench(context.Background(), BenchConfig{Addr: relay, Rate: 2000, Size: 64, Duration: 250 * time.Millisecond, Wait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 500 || rep.Received != 500 || rep.Duplicates != 100 || rep.Reordered != 72 || rep.Lost != 0 {
		t.Fatalf("sent %d, received %d, lost %d, duplicates %d, reordered %d; want 500, 500, 0, 100, 72",
			rep.Sent, rep.Received, rep.Lost, rep.Duplicates, rep.Reordered)
	}
}

func TestBenchConfigErrors(t *testing.T) {
	_, err := Bench(context.Background(), BenchConfig{Addr: "127.0.0.1:1", Rate: 0, Size: 5, Duration: 0})
	for _, want := range []string{"rate 0", "size 5", "duration 0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to mention %q", err, want)
		}
	}
}

// TestSocatClient has socat, as a UDP client, talk to Serve.
func TestSocatClient(t *testing.T) {
	socat := testenv.Peer(t, "socat", "socat")
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr, stop, _ := serve(t, host, ModeEcho)
			ap := parseAddrPort(t, addr)
			family := "UDP4"
			if ap.Addr().Is6() {
				family = "UDP6"
			}
			target := fmt.Sprintf("%s:%s", family, net.JoinHostPort(ap.Addr().String(), fmt.Sprint(ap.Port())))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, socat, "-T1", "-", target)
			cmd.Stdin = strings.NewReader("hello from socat\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("socat: %v", err)
			}
			if string(out) != "hello from socat\n" {
				t.Fatalf("socat got %q, want the echo", out)
			}
			if st := stop(); st.Datagrams != 1 || st.Peers != 1 {
				t.Fatalf("stats = %+v, want 1 datagram from 1 peer", st)
			}
		})
	}
}

// TestDialSocatServer has Dial talk to a socat echo server.
func TestDialSocatServer(t *testing.T) {
	socat := testenv.Peer(t, "socat", "socat")
	port := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, socat, "-T5", fmt.Sprintf("UDP4-RECVFROM:%d,bind=127.0.0.1,fork", port), "PIPE")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// socat binds after it starts: retry until a reply comes.
	var out bytes.Buffer
	testenv.WaitFor(t, 5*time.Second, func() error {
		out.Reset()
		_, err := Dial(context.Background(), DialConfig{Addr: addr, Count: 1, Size: 32, Timeout: 200 * time.Millisecond}, nil, &out)
		return err
	})
	if !strings.HasPrefix(out.String(), "netkit 1 ") {
		t.Fatalf("reply = %q", out.String())
	}
}

package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netkit/netkit/internal/hub"
)

// benchHubEnv makes the test binary run a hub instead of tests, so that a
// benchmark can measure the hub's CPU apart from its clients'.
const benchHubEnv = "NETKIT_BENCH_CHILD_HUB"

// runChildHub serves a hub on 127.0.0.1:0, prints its address, and stops
// when stdin closes. NETKIT_BENCH_CPUPROFILE=FILE writes the hub's CPU
// profile, NETKIT_BENCH_HEAPPROFILE=FILE its heap profile when stdin
// closes (before the connections end) and NETKIT_BENCH_MEMSTATS=1 prints
// its runtime.MemStats then; NETKIT_BENCH_TRANSPORT picks hub.transport
// and NETKIT_BENCH_JWT_SECRET sets hub.jwt_secret (for the connect
// scenario's tokens).
func runChildHub() int {
	if path := os.Getenv("NETKIT_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if os.Getenv("NETKIT_BENCH_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for a per-connection account
	}
	cfg := hub.DefaultConfig()
	cfg.APIKey = "bench"
	cfg.JoinLeave = false
	cfg.MaxConnections = 0
	if t := os.Getenv("NETKIT_BENCH_TRANSPORT"); t != "" {
		cfg.Transport = t
	}
	opts := hub.Options{Version: "bench", Registry: prometheus.NewRegistry()}
	cfg.JWTSecret = os.Getenv("NETKIT_BENCH_JWT_SECRET")
	if os.Getenv("NETKIT_BENCH_METRICS") == "off" {
		opts.Registry = nil
	}
	srv, err := hub.New(cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// No TCP keep-alive on accepted connections, like netkit hub's
	// listener (internal/cli/hub.go).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		bufio.NewReader(os.Stdin).ReadByte()
		if os.Getenv("NETKIT_BENCH_MEMSTATS") != "" {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "memstats: heapalloc %d heapinuse %d heapidle %d heapreleased %d stackinuse %d mspan %d gcsys %d other %d sys %d nextgc %d numgc %d\n",
				m.HeapAlloc, m.HeapInuse, m.HeapIdle, m.HeapReleased, m.StackInuse, m.MSpanInuse, m.GCSys, m.OtherSys, m.Sys, m.NextGC, m.NumGC)
		}
		if path := os.Getenv("NETKIT_BENCH_HEAPPROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				runtime.GC()
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		cancel()
	}()
	fmt.Println(ln.Addr().String())
	if err := srv.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childHub is a hub in a child process.
type childHub struct {
	cmd   *exec.Cmd
	addr  string
	stdin interface{ Close() error }
}

func startChildHub(b *testing.B) *childHub {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), benchHubEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("child hub: %v", err)
	}
	h := &childHub{cmd: cmd, addr: strings.TrimSpace(line), stdin: stdin}
	b.Cleanup(func() {
		h.stdin.Close()
		h.cmd.Wait()
	})
	return h
}

// cpuTime returns the user+system CPU time the child has used so far.
func (h *childHub) cpuTime(b *testing.B) time.Duration {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.cmd.Process.Pid), "stat"))
	if err != nil {
		b.Fatalf("read child CPU time: %v", err)
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 per second).
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkFanout publishes b.N 100-byte messages from one publisher (at
// most 100 unacknowledged) to one channel with 1000 subscribers, and waits
// until every subscriber has every message. The hub runs in a child process,
// so server CPU is measured apart from the clients. It reports deliveries
// per second and the hub's CPU time per delivered message.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{1000, 5000} {
		// Subscribers read one object per frame (the default) or joined
		// frames (frames=joined), to measure what per-object frames cost.
		for _, frames := range []string{"object", "joined"} {
			b.Run(fmt.Sprintf("subscribers=%d/frames=%s", subs, frames), func(b *testing.B) { benchFanout(b, subs, frames) })
		}
	}
}

// BenchmarkFanoutMetrics is BenchmarkFanout's 1000 subscribers with the
// hub's metrics on and off (NETKIT_BENCH_METRICS), to see what they cost.
// Run it several times with -count 1 rather than once with -count N, so the
// two alternate on a noisy machine.
func BenchmarkFanoutMetrics(b *testing.B) {
	for _, m := range []string{"on", "off"} {
		b.Run("metrics="+m, func(b *testing.B) {
			b.Setenv("NETKIT_BENCH_METRICS", m)
			benchFanout(b, 1000, "object")
		})
	}
}

func benchFanout(b *testing.B, nsubs int, frames string) {
	h := startChildHub(b)
	url := "ws://" + h.addr + "/ws?frames=" + frames
	subs := make([]*benchSub, nsubs)
	for i := range subs {
		subs[i] = dialBenchSub(b, url, "bench")
	}
	pub := dialBenchSub(b, url, "")
	payload := strings.Repeat("x", 100-len(`{"seq":0000000}`)+3)

	var wg sync.WaitGroup
	total := int64(b.N)
	for _, s := range subs {
		wg.Go(func() { s.receive(total) })
	}
	window := make(chan struct{}, 100)
	acks := make(chan error, 1)
	go func() { acks <- pub.acknowledge(total, window) }()

	b.ResetTimer()
	cpu0, t0 := h.cpuTime(b), time.Now()
	for i := range b.N {
		window <- struct{}{}
		msg := fmt.Sprintf(`{"id":%d,"op":"publish","channel":"bench","data":{"seq":%d,"p":"%s"}}`, i+1, i+1, payload)
		if err := pub.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			b.Fatalf("publish: %v", err)
		}
	}
	if err := <-acks; err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), h.cpuTime(b)-cpu0
	b.StopTimer()

	for i, s := range subs {
		if s.err != nil {
			b.Fatalf("subscriber %d: %v", i, s.err)
		}
	}
	deliveries := float64(total) * float64(nsubs)
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "server-ns/delivery")
}

type benchSub struct {
	ws  *websocket.Conn
	err error
}

func dialBenchSub(b *testing.B, url, channel string) *benchSub {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	b.Cleanup(func() { ws.Close() })
	s := &benchSub{ws: ws}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		b.Fatalf("welcome: %v", err)
	}
	if channel != "" {
		ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"`+channel+`"}`))
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatalf("subscribe: %v", err)
		}
	}
	return s
}

var offsetKey = []byte(`"offset":`)

// receive reads messages until it has n of them and checks that offsets
// run 1..n without gap or duplicate.
func (s *benchSub) receive(n int64) {
	var next int64 = 1
	for next <= n {
		s.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, frame, err := s.ws.ReadMessage()
		if err != nil {
			s.err = fmt.Errorf("after %d messages: %w", next-1, err)
			return
		}
		for len(frame) > 0 {
			var obj []byte
			obj, frame, _ = bytes.Cut(frame, []byte{'\n'})
			i := bytes.Index(obj, offsetKey)
			if i < 0 {
				continue
			}
			rest := obj[i+len(offsetKey):]
			end := bytes.IndexByte(rest, ',')
			off, err := strconv.ParseInt(string(rest[:end]), 10, 64)
			if err != nil || off != next {
				s.err = fmt.Errorf("got offset %s, want %d", rest[:end], next)
				return
			}
			next++
		}
	}
}

// acknowledge reads publish replies, freeing one window slot per reply.
func (s *benchSub) acknowledge(n int64, window chan struct{}) error {
	var got atomic.Int64
	for got.Load() < n {
		s.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, frame, err := s.ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("publisher: after %d replies: %w", got.Load(), err)
		}
		for _, obj := range bytes.Split(frame, []byte{'\n'}) {
			var r struct {
				Result *struct{ Offset int64 } `json:"result"`
				Error  json.RawMessage         `json:"error"`
			}
			if err := json.Unmarshal(obj, &r); err != nil || r.Result == nil {
				return fmt.Errorf("publisher: unexpected %s", obj)
			}
			got.Add(1)
			<-window
		}
	}
	return nil
}

// info returns the child's /api/info.
func (h *childHub) info(b *testing.B) hub.Info {
	req, _ := http.NewRequest("GET", "http://"+h.addr+"/api/info", nil)
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("info: %v", err)
	}
	defer resp.Body.Close()
	var info hub.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		b.Fatalf("info: %v", err)
	}
	return info
}

// rss returns the child's resident set size.
func (h *childHub) rss(b *testing.B) int64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.cmd.Process.Pid), "status"))
	if err != nil {
		b.Fatalf("read child status: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in child status")
	return 0
}

// BenchmarkIdle opens 5000 connections to a hub in a child process, each
// subscribed to its own channel, and reports the hub's resident memory per
// connection. b.N is ignored beyond the first run.
func BenchmarkIdle(b *testing.B) {
	const conns = 5000
	h := startChildHub(b)
	url := "ws://" + h.addr + "/ws"
	before := h.rss(b)
	for i := range conns {
		dialBenchSub(b, url, "idle-"+strconv.Itoa(i))
	}
	for range b.N {
	}
	time.Sleep(7 * time.Second) // idle: writer goroutines exit after 5 s without writes
	after := h.rss(b)
	b.ReportMetric(float64(after-before)/conns, "server-bytes/conn")
	info := h.info(b)
	b.ReportMetric(float64(info.HeapBytes)/conns, "heap-bytes/conn")
	b.ReportMetric(float64(info.StackBytes)/conns, "stack-bytes/conn")
	b.ReportMetric(float64(info.Goroutines)/conns, "goroutines/conn")
}

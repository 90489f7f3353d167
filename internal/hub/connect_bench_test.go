package hub_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/auth"
)

// connectConcurrency is how many connections BenchmarkConnect opens at
// once, as the load generator's connect scenario does (there 64).
const connectConcurrency = 16

// BenchmarkConnect opens b.N WebSocket connections to a hub in a child
// process, each with its own HS256 token in ?token=, connectConcurrency at
// a time, each until its welcome has arrived. The connections stay open
// until the end, so their closes fall outside the timed part, as in
// "netkit bench hub connect". It reports connects per second and the
// hub's CPU time per connect. NETKIT_BENCH_CPUPROFILE=FILE makes the
// child write its CPU profile (closes included):
//
//	NETKIT_BENCH_CPUPROFILE=/tmp/connect.prof go test -run '^$' -bench Connect -benchtime 5000x ./internal/hub
func BenchmarkConnect(b *testing.B) {
	const secret = "netkit-bench-secret"
	b.Setenv("NETKIT_BENCH_JWT_SECRET", secret) // the child hub's hub.jwt_secret
	h := startChildHub(b)
	tokens := make([]string, b.N)
	for i := range tokens {
		t, err := auth.Sign([]byte(secret), auth.Claims{User: fmt.Sprintf("bench-%d", i)}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t
	}
	conns := make([]*websocket.Conn, b.N) // index i set by the goroutine that opened it
	b.Cleanup(func() {
		for _, ws := range conns {
			if ws != nil {
				ws.Close()
			}
		}
	})
	url := "ws://" + h.addr + "/ws?token="

	b.ResetTimer()
	cpu0, t0 := h.cpuTime(b), time.Now()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range connectConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				ws, err := dialWelcome(url + tokens[i])
				if err != nil {
					errMu.Lock()
					first = firstErr(first, fmt.Errorf("connection %d: %w", i, err))
					errMu.Unlock()
					return
				}
				conns[i] = ws
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), h.cpuTime(b)-cpu0
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "connects/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-µs/connect")
}

// dialWelcome opens a connection and reads its welcome.
func dialWelcome(url string) (*websocket.Conn, error) {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil {
		ws.Close()
		return nil, fmt.Errorf("welcome: %w", err)
	}
	ws.SetReadDeadline(time.Time{})
	return ws, nil
}

// firstErr keeps the first error.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

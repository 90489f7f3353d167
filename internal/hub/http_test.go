package hub_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

// TestSlowHeaders sends an upgrade request one byte at a time, too slowly:
// the hub cuts it off after hub.http_timeout, and serves others meanwhile.
func TestSlowHeaders(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.HTTPTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + strings.Repeat("X-Pad: slow\r\n", 100)
	cut := make(chan error, 1)
	go func() { // the slow client: a byte every 20 ms until the hub hangs up
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(req); i++ {
			<-tick.C
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				cut <- err
				return
			}
		}
		cut <- errors.New("the whole request went through")
	}()
	// Others are served while the slow client dribbles.
	c := h.Dial(t)
	quiet(t, c, pingCmd(1))
	// The hub closes the connection: reads end, after an optional 400 or
	// 408 answer (net/http's choice).
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, _ := io.ReadAll(conn)
	if len(resp) > 0 && !strings.HasPrefix(string(resp), "HTTP/1.1 400") && !strings.HasPrefix(string(resp), "HTTP/1.1 408") {
		t.Fatalf("slow client got %q, want nothing, 400 or 408", resp)
	}
	if err := <-cut; err == nil || strings.Contains(err.Error(), "went through") {
		t.Fatalf("slow client: %v, want its writes to fail after the hub hung up", err)
	}
	quiet(t, c, pingCmd(2))
}

// TestHugeHeaders sends a megabyte of headers: 431, nothing else happens.
func TestHugeHeaders(t *testing.T) {
	h := hubtest.Start(t, nil)
	conn, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		w := bufio.NewWriter(conn)
		fmt.Fprintf(w, "GET /ws HTTP/1.1\r\nHost: x\r\n")
		for range 1 << 14 {
			fmt.Fprintf(w, "X-Big: %s\r\n", strings.Repeat("b", 60))
		}
		w.WriteString("\r\n")
		w.Flush()
	}()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", resp.StatusCode)
	}
	c := h.Dial(t)
	quiet(t, c, pingCmd(1))
}

func readyz(t *testing.T, h *hubtest.Hub) int {
	t.Helper()
	resp, err := http.Get(h.HTTPURL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDrainDelay shuts a hub down with a drain delay: /readyz answers 503
// at once while the listener still takes connections and clients are
// served; when Shutdown's context ends, everything is cut off.
func TestDrainDelay(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.DrainDelay = time.Hour })
	old := h.Dial(t)
	if got := readyz(t, h); got != http.StatusOK {
		t.Fatalf("/readyz before shutdown = %d, want 200", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- h.Server.Shutdown(ctx) }()
	testenv.WaitFor(t, 10*time.Second, func() error {
		if got := readyz(t, h); got != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz = %d, want 503 while draining", got)
		}
		return nil
	})
	late := h.Dial(t) // the listener is still open
	quiet(t, late, pingCmd(1))
	quiet(t, old, pingCmd(1))

	cancel() // the drain delay is cut short: Shutdown drops everyone
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	for _, c := range []*hubtest.Client{old, late} {
		for { // at most the shutdown push, then the end of the connection
			m, err := c.ReadRaw()
			if err != nil {
				break
			}
			if !strings.Contains(string(m), `"code":"shutdown"`) {
				t.Fatalf("after Shutdown a client read %s, want only the shutdown push", m)
			}
		}
	}
	if err := h.Stop(t); err != nil {
		t.Fatalf("Serve = %v, want nil after Shutdown", err)
	}
}

// TestShutdownMethod stops a hub with Server.Shutdown and a short drain
// delay: clients get the shutdown push and close 1001, Shutdown returns
// nil, then Serve returns nil.
func TestShutdownMethod(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.DrainDelay = 50 * time.Millisecond })
	c := h.Dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Server.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if m := c.Read(); m["push"] != "disconnect" || m["code"] != "shutdown" {
		t.Fatalf("client got %v, want the shutdown disconnect", m)
	}
	_, err := c.ReadRaw()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("read after the push: %v, want close 1001", err)
	}
	if err := h.Stop(t); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

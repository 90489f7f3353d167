package hub_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

func TestSlowConsumer(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) {
		c.QueueMessages = 16
		c.WriteTimeout = time.Second // bounds how long a blocked write can delay the drop
		c.JoinLeave = false
	})
	pub, fast := h.Dial(t), h.Dial(t)
	quiet(t, fast, subscribeCmd(1, "firehose"))
	slow := dialSmallReadBuffer(t, h)
	quiet(t, slow, subscribeCmd(1, "firehose"))
	// From here on slow reads nothing.

	data := `"` + strings.Repeat("x", 16<<10) + `"`
	next := uint64(1)
	publishRound := func() {
		t.Helper()
		const round = 10
		for i := range round {
			pub.Send(fmt.Sprintf(`{"id":%d,"op":"publish","channel":"firehose","data":%s}`, int(next)+i, data))
		}
		// The publisher's replies keep coming: it is never blocked.
		for i := range round {
			want := float64(next) + float64(i)
			if m := pub.Read(); m["id"] != want || result(t, m)["offset"] != want {
				t.Fatalf("publisher got %.200v, want the reply with offset %v", m, want)
			}
		}
		// The fast subscriber gets every message, in order.
		for i := range round {
			if m := readMessage(t, fast); m.Offset != next+uint64(i) {
				t.Fatalf("fast subscriber got offset %d, want %d", m.Offset, next+uint64(i))
			}
		}
		next += round
	}
	// 16 MiB: more than slow's socket buffers (a few MiB on loopback) and
	// its queue can hold, so its queue overflows.
	for next <= 1000 {
		publishRound()
	}
	// Nothing tells the test when the hub has dropped it: poll.
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := connections(t, h); n != 2 {
			return fmt.Errorf("connections = %d, want 2: the slow consumer is still connected", n)
		}
		return nil
	})
	for range 3 {
		publishRound()
	}
	if got := presenceCount(t, h, "firehose"); got != 1 {
		t.Fatalf("presence lists %d clients, want only the fast subscriber", got)
	}

	// What slow still gets: messages in order, maybe the disconnect push
	// (only if the socket took it), then the end of the connection: the
	// close frame 1008, or 1006 when the hub had to cut the socket.
	want := uint64(1)
	for {
		raw, err := slow.ReadRaw()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation && ce.Code != websocket.CloseAbnormalClosure {
				t.Fatalf("slow consumer's read ended with %v, want close 1008 or 1006", err)
			}
			break
		}
		var m serverObject
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("slow consumer read %.100q: %v", raw, err)
		}
		if m.Push == "disconnect" {
			if m.Code != "slow_consumer" {
				t.Fatalf("disconnect code = %q, want slow_consumer", m.Code)
			}
			continue
		}
		if m.Push != "message" || m.Offset != want {
			t.Fatalf("slow consumer got %s offset %d, want message %d", m.Push, m.Offset, want)
		}
		want++
	}
}

// dialSmallReadBuffer dials with a small socket receive buffer, so that a
// client that stops reading fills up after little data, and reads the
// welcome push.
func dialSmallReadBuffer(t *testing.T, h *hubtest.Hub) *hubtest.Client {
	t.Helper()
	d := *websocket.DefaultDialer
	d.NetDial = func(network, addr string) (net.Conn, error) {
		conn, err := net.Dial(network, addr)
		if err == nil {
			// Well above the loopback MSS (64 KiB): smaller windows
			// make the sender crawl on persist-timer probes.
			err = conn.(*net.TCPConn).SetReadBuffer(256 << 10)
		}
		return conn, err
	}
	c := hubtest.DialWith(t, &d, h.URL)
	if m := c.Read(); m["push"] != "welcome" {
		t.Fatalf("first push = %v, want welcome", m)
	}
	return c
}

func TestDeadPeer(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) {
		c.PingInterval = 100 * time.Millisecond
		// Long enough for the live client to answer on a loaded machine
		// (with 100 ms it was dropped under -race with other suites).
		c.PongTimeout = 3 * time.Second
	})
	live := h.Dial(t)
	var pings atomic.Int32
	live.Conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.Conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	p := startPump(t, live)
	live.Send(subscribeCmd(1, "room"))
	if m := p.next(t); m["id"] != 1.0 {
		t.Fatalf("got %v, want the subscribe reply", m)
	}

	dead := hubtest.DialURL(t, h.URL) // never reads, so never answers a ping
	dead.Send(subscribeCmd(1, "room"))
	join := p.next(t)
	leave := p.next(t)
	if join["push"] != "join" || leave["push"] != "leave" || leave["client"] != join["client"] {
		t.Fatalf("live client got %v then %v, want the dead peer's join and leave", join, leave)
	}
	if n := connections(t, h); n != 1 {
		t.Fatalf("connections = %d, want 1", n)
	}
	if n := presenceCount(t, h, "room"); n != 1 {
		t.Fatalf("presence lists %d clients, want 1", n)
	}

	// The live client, which answers pings, outlives several deadlines.
	since := pings.Load()
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n := pings.Load() - since; n < 5 {
			return fmt.Errorf("live client got %d pings since the dead peer left, want 5", n)
		}
		return nil
	})
	live.Send(pingCmd(2))
	if m := p.next(t); m["id"] != 2.0 || m["result"] == nil {
		t.Fatalf("got %v, want the pong", m)
	}
	if n := connections(t, h); n != 1 {
		t.Fatalf("connections = %d, want 1", n)
	}

	// The dead peer was dropped without a push: after its welcome and
	// reply, the connection just ends.
	for range 2 {
		if _, err := dead.ReadRaw(); err != nil {
			t.Fatalf("dead peer: %v, want its welcome and reply", err)
		}
	}
	if raw, err := dead.ReadRaw(); err == nil {
		t.Fatalf("dead peer read %s, want the end of the connection", raw)
	}
}

func TestShutdown(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JoinLeave = false })
	var pumps []*pump
	for range 3 {
		c := h.Dial(t)
		quiet(t, c, subscribeCmd(1, "room"))
		pumps = append(pumps, startPump(t, c))
	}
	// Queued before the shutdown: each client gets them before the push.
	const queued = 100
	for i := range queued {
		h.API(t, "POST", "/api/publish", map[string]any{"channel": "room", "data": i})
	}
	start := time.Now()
	if err := h.Stop(t); err != nil {
		t.Fatalf("Stop = %v, want nil", err)
	}
	// Clients that answer the close frame do not make the hub wait for
	// the closing handshake's 2s bound.
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("Stop took %s, want well under the 2s closing-handshake bound", d)
	}
	for i, p := range pumps {
		var got []map[string]any
		for m := range p.objs {
			got = append(got, m)
		}
		if len(got) != queued+1 {
			t.Errorf("client %d: got %d objects, want %d messages and the disconnect", i, len(got), queued)
			continue
		}
		for j, m := range got[:queued] {
			if m["push"] != "message" || m["offset"] != float64(j+1) {
				t.Errorf("client %d: object %d = %v, want message %d", i, j, m, j+1)
				break
			}
		}
		if last := got[queued]; last["push"] != "disconnect" || last["code"] != "shutdown" {
			t.Errorf("client %d: last object %v, want the shutdown disconnect", i, last)
		}
		err := <-p.done
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("client %d: read ended with %v, want close 1001", i, err)
		}
	}
	if ws, _, err := websocket.DefaultDialer.Dial(h.URL, nil); err == nil {
		ws.Close()
		t.Fatal("dial after shutdown succeeded")
	}
}

func TestShutdownDraining(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.ShutdownGrace = 500 * time.Millisecond })
	stuck := h.Dial(t) // reads nothing more: it never answers the close frame
	quiet(t, stuck, subscribeCmd(1, "room"))

	// While Stop waits for stuck, probe the handler in process (the
	// listener is closed already).
	type probe struct {
		path   string
		status int
		body   string
	}
	probes := make(chan []probe, 1)
	stopDone := make(chan struct{})
	go func() {
		for {
			var got []probe
			for _, path := range []string{"/readyz", "/ws"} {
				rec := httptest.NewRecorder()
				h.Server.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				got = append(got, probe{path, rec.Code, strings.TrimSpace(rec.Body.String())})
			}
			if got[0].status == http.StatusServiceUnavailable {
				probes <- got
				return
			}
			select {
			case <-stopDone:
				probes <- nil
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	err := func() error {
		defer close(stopDone) // also when Stop fails the test
		return h.Stop(t)
	}()
	got := <-probes
	if got == nil {
		t.Fatal("/readyz never answered 503 during shutdown")
	}
	if got[0].body != `{"status":"draining"}` {
		t.Errorf("/readyz while draining = %s, want {\"status\":\"draining\"}", got[0].body)
	}
	if got[1].status != http.StatusServiceUnavailable || !strings.Contains(got[1].body, `"error":{"code":`) {
		t.Errorf("/ws while draining = %d %s, want 503 with a JSON error", got[1].status, got[1].body)
	}
	if err != nil {
		t.Fatalf("Stop = %v, want nil (clients cut off at the grace period are no error)", err)
	}
	// The push and close frame went out before the hub cut the connection.
	expectDisconnect(t, stuck, "shutdown", websocket.CloseGoingAway)
}

func TestGoroutinesReturn(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	base := runtime.NumGoroutine()
	h := hubtest.Start(t, nil)
	var pumps []*pump
	for i := range 5 {
		c := h.Dial(t)
		quiet(t, c, subscribeCmd(1, "room"))
		c.Call(publishCmd(2, "room", i))
		pumps = append(pumps, startPump(t, c))
	}
	h.API(t, "POST", "/api/publish", map[string]any{"channel": "room", "data": 1})
	if err := h.Stop(t); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	for _, p := range pumps {
		for range p.objs {
		}
		<-p.done
	}
	http.DefaultClient.CloseIdleConnections()
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > base {
			return fmt.Errorf("%d goroutines, %d before the hub started:\n%s", n, base, stacks())
		}
		return nil
	})
}

// Helpers. Commands carry an id so that hubtest's Call finds the reply.

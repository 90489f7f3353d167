package wsloop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

func TestFrames(t *testing.T) {
	tests := []struct {
		name string
		path string
		run  func(c *rawClient)
	}{
		{name: "echo", run: func(c *rawClient) {
			c.write(text("hello"))
			c.expect(opText, "hello")
		}},
		{name: "objects due at once go in frames of their own", run: func(c *rawClient) {
			c.srv.conn.Enqueue([]byte("a"))
			c.srv.conn.Enqueue([]byte("b"))
			c.expect(opText, "a")
			c.expect(opText, "b")
		}},
		{name: "joined frames on request", path: "/?frames=joined", run: func(c *rawClient) {
			var got []string
			for _, s := range []string{"a", "b", "c"} {
				c.srv.conn.Enqueue([]byte(s))
			}
			for len(strings.Join(got, "\n")) < len("a\nb\nc") {
				op, p := c.read()
				if op != opText {
					t.Fatalf("got op %#x, want text", op)
				}
				got = append(got, string(p))
			}
			if s := strings.Join(got, "\n"); s != "a\nb\nc" {
				t.Fatalf("frames %q, want a, b and c joined by newlines", got)
			}
		}},
		{name: "binary is handed on as binary", run: func(c *rawClient) {
			c.write(frame(true, opBinary, "\x01\x02"))
			c.expect(opText, "binary 2")
			c.write(text("still"))
			c.expect(opText, "still")
		}},
		{name: "client close is answered", run: func(c *rawClient) {
			c.write(clientClose(1000, ""))
			c.expectCloseFrame(1000)
			c.expectEnd()
			if _, ok := c.srv.conn.Closed(); ok {
				t.Fatal("Closed() = true after the peer closed, want false")
			}
		}},
		{name: "unmasked frame", run: func(c *rawClient) {
			c.write([]byte{0x81, 0x01, 'x'})
			c.expectClosing(ReasonProtocol)
			c.expectEnd()
			if cl, ok := c.srv.conn.Closed(); !ok || cl.Status != 1002 {
				t.Fatalf("Closed() = %+v, %v; want the protocol closing", cl, ok)
			}
		}},
		{name: "Close sends queued objects, the push and the close frame", run: func(c *rawClient) {
			c.srv.conn.Enqueue([]byte("queued"))
			c.srv.conn.Close(Closing{Push: []byte("bye"), Status: 1001, Reason: "shutdown"})
			if p := c.srv.conn.Enqueue([]byte("late")); p != Dropped {
				t.Fatalf("Enqueue after Close = %v, want Dropped", p)
			}
			c.expect(opText, "queued")
			c.expect(opText, "bye")
			c.expectCloseFrame(1001)
			c.write(clientClose(1001, ""))
			c.expectEnd()
			if cl, ok := c.srv.conn.Closed(); !ok || cl.Reason != "shutdown" {
				t.Fatalf("Closed() = %+v, %v; want the shutdown closing", cl, ok)
			}
		}},
		{name: "Abort drops at once", run: func(c *rawClient) {
			c.srv.conn.Abort()
			c.expectEnd()
		}},
	}
	forPaths(t, defaultConfig(), func(t *testing.T, tl *testLayer) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := tl.dialPath(t, cmp(tc.path, "/"))
				c.t = t
				tc.run(c)
			})
		}
	})
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestPingsAndDropsSilentPeers(t *testing.T) {
	cfg := defaultConfig()
	cfg.PingInterval, cfg.PongTimeout = 50*time.Millisecond, 50*time.Millisecond
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		c.expect(opPing, "")
		// Never answered: the peer is dropped without a closing handshake.
		for {
			if _, _, err := c.readFrame(); err != nil {
				break
			}
		}
		c.srv.waitClosed(t)
	})
}

// TestCloseWaitExpires: a peer that never answers our close frame is
// dropped after closeWait.
func TestCloseWaitExpires(t *testing.T) {
	forPaths(t, defaultConfig(), func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		start := time.Now()
		c.srv.conn.Close(Closing{Status: 1000, Reason: "bye"})
		c.expectCloseFrame(1000)
		c.expectEnd() // without our close frame
		if d := time.Since(start); d < closeWait/2 {
			t.Fatalf("closed after %s, want the close wait of %s", d, closeWait)
		}
	})
}

// TestPingFlood: pings from a peer that does not read keep at most one
// pong waiting; the connection stays healthy and answers the latest.
func TestPingFlood(t *testing.T) {
	forPaths(t, defaultConfig(), func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		const pings = 5000
		var flood []byte
		for i := range pings {
			flood = append(flood, frame(true, opPing, fmt.Sprintf("%0120d", i))...)
		}
		c.write(flood, text("after"))
		pongs, last := 0, -1
		for {
			op, p := c.read()
			if op == opText {
				if string(p) != "after" {
					t.Fatalf("got %q, want after", p)
				}
				break
			}
			var n int
			fmt.Sscanf(string(p), "%d", &n)
			if op != opPong || n <= last {
				t.Fatalf("got op %#x %q after pong %d, want pongs in increasing order", op, p, last)
			}
			pongs, last = pongs+1, n
		}
		if last != pings-1 {
			t.Fatalf("last pong answered ping %d, want the latest, %d", last, pings-1)
		}
		t.Logf("%d pings answered with %d pongs", pings, pongs)
	})
}

// TestPendingBytes: a reader slower than the writer leaves bytes the
// socket did not take (EPOLLOUT on the event loop); everything arrives,
// in order.
func TestPendingBytes(t *testing.T) {
	cfg := defaultConfig()
	cfg.QueueMessages, cfg.QueueBytes = 1<<16, 64<<20
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		const n = 2000
		obj := strings.Repeat("x", 4000)
		for i := range n {
			if p := c.srv.conn.Enqueue(fmt.Appendf(nil, "%05d%s", i, obj)); p == Dropped {
				t.Fatalf("Enqueue %d = Dropped", i)
			}
		}
		for i := range n {
			c.expect(opText, fmt.Sprintf("%05d%s", i, obj))
		}
	})
}

// TestPauseResume: a handler pauses reading inside OnMessage; frames that
// arrived in the same read wait for the resume, in order.
func TestPauseResume(t *testing.T) {
	forPaths(t, defaultConfig(), func(t *testing.T, tl *testLayer) {
		tl.onMessage = func(h *testHandler, msg []byte) bool {
			if string(msg) == "pause" {
				h.pause()
				h.conn.Enqueue([]byte("paused")) // after the pause: the test resumes when it reads this
				return true
			}
			return false
		}
		c := tl.dial(t)
		c.write(text("pause"), text("one"), frame(true, opPing, "p"), text("two"))
		c.expect(opText, "paused")
		c.srv.resume()
		var got []string
		for len(got) < 3 { // the pong may come before "one": control frames go first
			op, p := c.read()
			got = append(got, fmt.Sprintf("%#x %s", op, p))
		}
		if g := strings.Join(got, ", "); g != "0x1 one, 0xa p, 0x1 two" && g != "0xa p, 0x1 one, 0x1 two" {
			t.Fatalf("after resume got %s, want one, the pong and two", g)
		}
		// Paused again from outside, with nothing buffered.
		c.srv.pause()
		c.write(text("three"))
		c.srv.resume()
		c.expect(opText, "three")
	})
}

// TestPausedPeerIsNotTimedOut: while reading is paused the pong deadline
// does not run.
func TestPausedPeerIsNotTimedOut(t *testing.T) {
	cfg := defaultConfig()
	cfg.PingInterval, cfg.PongTimeout = 20*time.Millisecond, 20*time.Millisecond
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		c.srv.pause()
		for range 10 { // ten ping intervals, far beyond the deadline
			c.expect(opPing, "")
		}
		c.srv.resume()
		c.write(text("alive"))
		for {
			op, p := c.read()
			if op == opText {
				if string(p) != "alive" {
					t.Fatalf("got %q, want alive", p)
				}
				return
			}
		}
	})
}

// fill makes the handler enqueue objects of size bytes until Enqueue
// reports want or limit objects were queued; it returns the pressures.
func fill(h *testHandler, size, limit int, want Pressure) []Pressure {
	obj := bytes.Repeat([]byte("f"), size)
	for range limit {
		if h.enqueue(obj) == want {
			break
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Pressure(nil), h.pressures...)
}

// TestCongestedThenDrain: over the soft limit Enqueue reports Congested;
// OnDrain follows once the client has read enough.
func TestCongestedThenDrain(t *testing.T) {
	cfg := defaultConfig()
	cfg.QueueMessages, cfg.QueueBytes = 1<<16, 64<<10
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		c.conn.SetReadBuffer(32 << 10)
		ps := fill(c.srv, 8<<10, 4000, Congested)
		if ps[len(ps)-1] != Congested {
			t.Fatalf("never Congested after %d objects of 8KiB", len(ps))
		}
		select {
		case <-c.srv.drains:
			t.Fatal("OnDrain before the client read anything")
		default:
		}
		for range ps {
			if op, _ := c.read(); op != opText {
				t.Fatalf("got op %#x, want text", op)
			}
		}
		select {
		case <-c.srv.drains:
		case <-time.After(10 * time.Second):
			t.Fatal("no OnDrain within 10s after the client read everything")
		}
	})
}

// TestHardLimitDrops: Enqueue past twice the soft limit reports Dropped
// and closes with the slow-consumer closing (queued objects not sent).
func TestHardLimitDrops(t *testing.T) {
	cfg := defaultConfig()
	cfg.QueueMessages, cfg.QueueBytes = 1<<16, 64<<10
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		c.conn.SetReadBuffer(32 << 10)
		ps := fill(c.srv, 8<<10, 8000, Dropped)
		if ps[len(ps)-1] != Dropped {
			t.Fatalf("never Dropped after %d objects of 8KiB", len(ps))
		}
		for {
			op, p := c.read()
			if op == opText && bytes.Equal(p, testClosings[ReasonSlowConsumer].Push) {
				break
			}
			if op != opText {
				t.Fatalf("got op %#x before the slow-consumer push", op)
			}
		}
		c.expectCloseFrame(1008)
		c.write(clientClose(1008, ""))
		c.expectEnd()
	})
}

// outbox returns a connection's outbox, for tests that watch its state.
func outbox(c Conn) *Outbox {
	switch c := c.(type) {
	case *goConn:
		return c.out
	default:
		return outboxOf(c)
	}
}

// keepOver enqueues objects of 8 KiB on h's connection, whose client does
// not read, until the outbox stays over its soft limit (the socket buffers
// are full) and done reports true. It returns how many objects it queued.
func keepOver(t *testing.T, h *testHandler, done func() bool) int {
	t.Helper()
	obj := bytes.Repeat([]byte("k"), 8<<10)
	n := 0
	testenv.WaitFor(t, 20*time.Second, func() error {
		if done() {
			return nil
		}
		if outbox(h.conn).OverSince() == 0 {
			switch h.conn.Enqueue(obj) {
			case Dropped:
				return nil
			default:
				n++
			}
		}
		return errors.New("still not over the soft limit")
	})
	return n
}

// TestSoftLimitTooLongDrops: a connection over its soft limit for
// WriteTimeout is closed as a slow consumer, though it never hit the hard
// limit.
func TestSoftLimitTooLongDrops(t *testing.T) {
	cfg := defaultConfig()
	cfg.QueueMessages, cfg.QueueBytes, cfg.WriteTimeout = 1<<16, 64<<10, 300*time.Millisecond
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		c.conn.SetReadBuffer(32 << 10)
		keepOver(t, c.srv, func() bool {
			select {
			case <-c.srv.closed:
				return true
			default:
				return false
			}
		})
		c.srv.waitClosed(t)
		if cl, ok := c.srv.conn.Closed(); !ok || cl.Status != 1008 {
			t.Fatalf("Closed() = %+v, %v; want the slow-consumer closing", cl, ok)
		}
	})
}

// TestTotalBytes: one connection that does not read holds the total over
// its limit: another's Enqueue reports Congested, and it gets OnDrain once
// the first has been read.
func TestTotalBytes(t *testing.T) {
	cfg := defaultConfig()
	cfg.QueueMessages, cfg.QueueBytes, cfg.TotalBytes = 1<<16, 64<<10, 48<<10
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		slow := tl.dial(t)
		slow.conn.SetReadBuffer(32 << 10)
		other := tl.dial(t)
		sent := 0
		n := keepOver(t, slow.srv, func() bool {
			sent++
			return other.srv.conn.Enqueue([]byte("small")) == Congested
		})
		for range sent {
			other.expect(opText, "small")
		}
		slow.conn.SetReadBuffer(1 << 20)
		for range n {
			slow.read()
		}
		select {
		case <-other.srv.drains:
		case <-time.After(10 * time.Second):
			t.Fatal("no OnDrain for the other connection after the total fell")
		}
	})
}

// TestStopClosesConnections: Run closes every connection at its end, and a
// connection started after that closes at once.
func TestStopClosesConnections(t *testing.T) {
	for _, mode := range paths() {
		t.Run(mode, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Mode = mode
			l, stop := runLayer(t, cfg)
			conns := make(chan Conn, 2)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := l.Upgrade(w, r, Options{})
				if err == nil {
					conns <- c
				}
			}))
			defer srv.Close()
			dial := func() (net.Conn, Conn) {
				tl := &testLayer{addr: srv.Listener.Addr().String(), conns: make(chan *testHandler, 1)}
				tl.conns <- nil
				rc := tl.dial(t)
				return rc.conn, <-conns
			}
			client, c := dial()
			h := &testHandler{t: t, conn: c, closed: make(chan struct{}), drains: make(chan struct{}, 1)}
			c.Start(h)
			late, lc := dial()
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			select {
			case <-h.closed:
			default:
				t.Fatal("Run returned without closing its connection")
			}
			lh := &testHandler{t: t, conn: lc, closed: make(chan struct{}), drains: make(chan struct{}, 1)}
			lc.Start(lh) // after Run returned: closes at once
			select {
			case <-lh.closed:
			default:
				t.Fatal("Start after Run returned did not close the connection")
			}
			lc.Enqueue([]byte("x")) // must not touch a closed poller
			for _, nc := range []net.Conn{client, late} {
				nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := nc.Read(make([]byte, 1)); err == nil {
					t.Fatal("socket still open after the layer stopped")
				}
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"good", func(*Config) {}, ""},
		{"bad mode", func(c *Config) { c.Mode = "fast" }, "mode"},
		{"zero limit", func(c *Config) { c.MaxMessage = 0 }, "positive"},
		{"missing closing", func(c *Config) { c.Closings = map[Reason]Closing{ReasonTooLarge: {Status: 1009}} }, "no entry"},
		{"reserved status", func(c *Config) {
			c.Closings = map[Reason]Closing{ReasonTooLarge: {Status: 1005}, ReasonBadUTF8: {Status: 1007}, ReasonProtocol: {Status: 1002}, ReasonSlowConsumer: {Status: 1008}}
		}, "may not be sent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			tc.edit(&cfg)
			_, err := New(cfg)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestCloseReasonCut: a reason longer than a control frame allows is cut
// to 123 bytes.
func TestCloseReasonCut(t *testing.T) {
	forPaths(t, defaultConfig(), func(t *testing.T, tl *testLayer) {
		c := tl.dial(t)
		c.srv.conn.Close(Closing{Status: 4000, Reason: strings.Repeat("r", 300)})
		op, p := c.read()
		if op != opClose || len(p) != 125 || binary.BigEndian.Uint16(p) != 4000 {
			t.Fatalf("got op %#x with %d bytes, want a close frame of 125 bytes with 4000", op, len(p))
		}
	})
}

// TestWriteDelayGathers: with a write delay, objects enqueued one after
// another go out together (seen here as one joined frame).
func TestWriteDelayGathers(t *testing.T) {
	cfg := defaultConfig()
	cfg.WriteDelay = time.Second // far longer than three Enqueue calls take
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		c := tl.dialPath(t, "/?frames=joined")
		for _, s := range []string{"a", "b", "c"} {
			c.srv.conn.Enqueue([]byte(s))
		}
		c.expect(opText, "a\nb\nc")
		c.write(text("echo")) // an echo waits for the delay too, and arrives
		c.expect(opText, "echo")
	})
}

// TestStartRacesStop: connections started while Run is stopping each get
// OnClose exactly once, and Run returns.
func TestStartRacesStop(t *testing.T) {
	for _, mode := range paths() {
		t.Run(mode, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Mode = mode
			l, stop := runLayer(t, cfg)
			conns := make(chan Conn, 20)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c, err := l.Upgrade(w, r, Options{}); err == nil {
					conns <- c
				}
			}))
			defer srv.Close()
			tl := &testLayer{addr: srv.Listener.Addr().String(), conns: make(chan *testHandler, 20)}
			var handlers []*testHandler
			for range 20 {
				tl.conns <- nil
				rc := tl.dial(t)
				c := <-conns
				c.Enqueue([]byte("early")) // before Start, racing the stop too
				handlers = append(handlers, &testHandler{t: t, conn: c, closed: make(chan struct{}), drains: make(chan struct{}, 1)})
				_ = rc
			}
			started := make(chan struct{})
			for _, h := range handlers {
				go func() { <-started; h.conn.Start(h) }()
			}
			close(started)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, h := range handlers {
				h.waitClosed(t) // a second OnClose would panic on the closed channel
				h.conn.Enqueue([]byte("late"))
				h.conn.SetReadPaused(true)
				h.conn.Close(Closing{Status: 1000})
			}
		})
	}
}

package wsloop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// paths are the connection paths of this platform. Every layer test runs
// on each through forPaths.
func paths() []string {
	if epollSupported {
		return []string{ModeEpoll, ModeGoroutine}
	}
	return []string{ModeGoroutine}
}

// forPaths runs fn once per path, as a subtest named after it, with a
// layer built from cfg (its Mode set to the path).
func forPaths(t *testing.T, cfg Config, fn func(t *testing.T, tl *testLayer)) {
	t.Helper()
	for _, mode := range paths() {
		t.Run(mode, func(t *testing.T) {
			c := cfg
			c.Mode = mode
			fn(t, startLayer(t, c))
		})
	}
}

// Closings of the test layers: each push names its reason.
var testClosings = map[Reason]Closing{
	ReasonTooLarge:     {Push: []byte(`{"push":"disconnect","code":"too_large"}`), Status: 1009, Reason: "too_large"},
	ReasonBadUTF8:      {Push: []byte(`{"push":"disconnect","code":"bad_utf8"}`), Status: 1007, Reason: "bad_utf8"},
	ReasonProtocol:     {Push: []byte(`{"push":"disconnect","code":"protocol"}`), Status: 1002, Reason: "protocol"},
	ReasonSlowConsumer: {Push: []byte(`{"push":"disconnect","code":"slow_consumer"}`), Status: 1008, Reason: "slow_consumer"},
}

func defaultConfig() Config {
	return Config{Pollers: 2, MaxMessage: 1000, QueueMessages: 64, QueueBytes: 1 << 20,
		PingInterval: time.Minute, PongTimeout: time.Minute, WriteTimeout: 5 * time.Second, Closings: testClosings}
}

// testHandler is the tests' Handler: it echoes text messages, answers
// binary ones with "binary N", and runs commands of the form "!cmd arg".
type testHandler struct {
	t      *testing.T
	conn   Conn
	closed chan struct{}
	drains chan struct{} // one value per OnDrain

	mu        sync.Mutex
	pressures []Pressure // what Enqueue reported for command output; guarded by mu
	paused    bool       // guarded by mu
	onMessage func(h *testHandler, msg []byte) bool
}

func (h *testHandler) OnMessage(msg []byte, binary bool) {
	h.mu.Lock()
	if h.paused {
		h.t.Errorf("OnMessage(%.40q) while reading is paused", msg)
	}
	f := h.onMessage
	h.mu.Unlock()
	if f != nil && f(h, msg) {
		return
	}
	if binary {
		h.conn.Enqueue(fmt.Appendf(nil, "binary %d", len(msg)))
		return
	}
	h.conn.Enqueue(append([]byte(nil), msg...))
}

func (h *testHandler) OnDrain() {
	select {
	case h.drains <- struct{}{}:
	default:
	}
}

func (h *testHandler) OnClose() { close(h.closed) }

// enqueue enqueues b and records the pressure.
func (h *testHandler) enqueue(b []byte) Pressure {
	p := h.conn.Enqueue(b)
	h.mu.Lock()
	h.pressures = append(h.pressures, p)
	h.mu.Unlock()
	return p
}

// pause pauses reading; the handler fails the test if a message arrives
// before resume.
func (h *testHandler) pause() {
	h.mu.Lock()
	h.paused = true
	h.mu.Unlock()
	h.conn.SetReadPaused(true)
}

func (h *testHandler) resume() {
	h.mu.Lock()
	h.paused = false
	h.mu.Unlock()
	h.conn.SetReadPaused(false)
}

func (h *testHandler) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-h.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called within 10s")
	}
}

type testLayer struct {
	l     *Layer
	addr  string
	conns chan *testHandler
	// onMessage, when set before dialing, is given to new handlers.
	onMessage func(h *testHandler, msg []byte) bool
}

// startLayer runs a layer behind a real HTTP server on 127.0.0.1; each
// connection gets a testHandler.
func startLayer(t *testing.T, cfg Config) *testLayer {
	t.Helper()
	l, _ := runLayer(t, cfg)
	tl := &testLayer{l: l, conns: make(chan *testHandler, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := l.Upgrade(w, r, Options{Joined: r.URL.Query().Get("frames") == "joined"})
		if err != nil {
			return
		}
		if c.Path() != cfg.Mode {
			t.Errorf("connection took path %q, want %q", c.Path(), cfg.Mode)
		}
		h := &testHandler{t: t, conn: c, closed: make(chan struct{}), drains: make(chan struct{}, 64), onMessage: tl.onMessage}
		tl.conns <- h
		c.Start(h)
	}))
	tl.addr = srv.Listener.Addr().String()
	t.Cleanup(srv.Close) // before runLayer's cleanup stops the layer
	return tl
}

// runLayer makes a layer of cfg and runs it until stop, which returns
// Run's error (only its first call waits). If the test has not called
// stop, its cleanup does, and reports the error.
func runLayer(t *testing.T, cfg Config) (*Layer, func() error) {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var runErr error
	called := false
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !called {
			t.Errorf("Run: %v", err)
		}
	})
	return l, func() error {
		called = true
		return stop()
	}
}

// rawClient is a WebSocket client that writes hand-made frames.
type rawClient struct {
	t    *testing.T
	conn *net.TCPConn
	br   *bufio.Reader
	srv  *testHandler
}

func (tl *testLayer) dial(t *testing.T) *rawClient { return tl.dialPath(t, "/") }

func (tl *testLayer) dialPath(t *testing.T, path string) *rawClient {
	t.Helper()
	return tl.dialVia(t, path, &net.Dialer{})
}

// dialVia is dialPath with the dialer d (for socket options).
func (tl *testLayer) dialVia(t *testing.T, path string, d *net.Dialer) *rawClient {
	t.Helper()
	conn, err := d.Dial("tcp", tl.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake: %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	return &rawClient{t: t, conn: conn.(*net.TCPConn), br: br, srv: <-tl.conns}
}

var key = [4]byte{0x11, 0x22, 0x33, 0x44}

func (c *rawClient) write(frames ...[]byte) {
	c.t.Helper()
	if _, err := c.conn.Write(bytes.Join(frames, nil)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next server frame's opcode and payload.
func (c *rawClient) read() (byte, []byte) {
	c.t.Helper()
	op, payload, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return op, payload
}

func (c *rawClient) readFrame() (byte, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0]&0xF0 != 0x80 || hdr[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("server frame header %x: want FIN set, no reserved bits and no mask", hdr)
	}
	n := int(hdr[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0F, payload, nil
}

func (c *rawClient) expect(op byte, payload string) {
	c.t.Helper()
	gotOp, got := c.read()
	if gotOp != op || string(got) != payload {
		c.t.Fatalf("got frame op %#x %.80q, want op %#x %.80q", gotOp, got, op, payload)
	}
}

// expectClosing reads the layer's closing for r: its push, then its close
// frame.
func (c *rawClient) expectClosing(r Reason) {
	c.t.Helper()
	cl := testClosings[r]
	c.expect(opText, string(cl.Push))
	c.expectCloseFrame(cl.Status)
}

// expectCloseFrame reads a close frame with status (0: no payload).
func (c *rawClient) expectCloseFrame(status int) {
	c.t.Helper()
	op, payload := c.read()
	switch {
	case op != opClose:
		c.t.Fatalf("got op %#x %.80q, want a close frame with status %d", op, payload, status)
	case status == 0 && len(payload) != 0:
		c.t.Fatalf("close frame %x, want no payload", payload)
	case status != 0 && (len(payload) < 2 || int(binary.BigEndian.Uint16(payload)) != status):
		c.t.Fatalf("close frame %x, want status %d", payload, status)
	}
}

// expectEnd reads the end of stream, then waits for the handler's OnClose.
func (c *rawClient) expectEnd() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := c.br.ReadByte(); err == nil {
		c.t.Fatalf("connection still open: read %#x, want end of stream", b)
	}
	c.conn.Close()
	c.srv.waitClosed(c.t)
}

// clientClose is a close frame a client sends.
func clientClose(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return clientFrame(true, opClose, append(p, reason...), key)
}

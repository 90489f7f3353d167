//go:build linux

package wsloop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echo is a Handler that sends every message back.
type echo struct {
	c      *Conn
	closed chan struct{}
}

func (e *echo) OnFrame(b []byte) { e.c.Enqueue(append([]byte(nil), b...)) }
func (e *echo) OnClose()         { close(e.closed) }

type testLoop struct {
	addr  string
	conns chan *echo
}

func defaultConfig() Config {
	return Config{Pollers: 2, MaxMessage: 1000, QueueMessages: 64, QueueBytes: 1 << 20,
		PingInterval: time.Minute, PongTimeout: time.Minute, WriteTimeout: 5 * time.Second}
}

// startLoop runs a loop whose connections echo, behind a real HTTP server
// on 127.0.0.1 that does the upgrade.
func startLoop(t *testing.T, cfg Config) *testLoop {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	tl := &testLoop{conns: make(chan *echo, 16)}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c, err := l.Attach(ws.NetConn())
		if err != nil {
			t.Errorf("Attach: %v", err)
			return
		}
		e := &echo{c: c, closed: make(chan struct{})}
		tl.conns <- e
		c.Start(e)
	}))
	tl.addr = srv.Listener.Addr().String()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return tl
}

// rawClient is a WebSocket client that writes hand-made frames.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	srv  *echo
}

func (tl *testLoop) dial(t *testing.T) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", tl.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
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
	return &rawClient{t: t, conn: conn, br: br, srv: <-tl.conns}
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
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if hdr[0]&0x80 == 0 || hdr[1]&0x80 != 0 {
		c.t.Fatalf("server frame header %x: want FIN set and no mask", hdr)
	}
	n := int(hdr[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(c.br, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(c.br, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		c.t.Fatalf("read payload: %v", err)
	}
	return hdr[0] & 0x0F, payload
}

func (c *rawClient) expect(op byte, payload string) {
	c.t.Helper()
	gotOp, got := c.read()
	if gotOp != op || string(got) != payload {
		c.t.Fatalf("got frame op %#x %q, want op %#x %q", gotOp, got, op, payload)
	}
}

// expectClose reads a disconnect push with code, then a close frame with
// status.
func (c *rawClient) expectClose(code string, status int) {
	c.t.Helper()
	op, push := c.read()
	if op != opText || !strings.Contains(string(push), `"push":"disconnect","code":"`+code+`"`) {
		c.t.Fatalf("got op %#x %q, want the %s disconnect push", op, push, code)
	}
	op, payload := c.read()
	if op != opClose || len(payload) < 2 || int(binary.BigEndian.Uint16(payload)) != status {
		c.t.Fatalf("got op %#x %x, want a close frame with status %d", op, payload, status)
	}
}

func (c *rawClient) expectEnd() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.br.ReadByte(); err == nil {
		c.t.Fatal("connection still open: read a byte, want EOF")
	}
	select {
	case <-c.srv.closed:
	case <-time.After(10 * time.Second):
		c.t.Fatal("OnClose not called within 10s")
	}
}

func TestLoopFrames(t *testing.T) {
	tl := startLoop(t, defaultConfig())
	tests := []struct {
		name string
		run  func(c *rawClient)
	}{
		{"echo", func(c *rawClient) {
			c.write(clientFrame(true, opText, []byte("hello"), key))
			c.expect(opText, "hello")
		}},
		{"pipelined messages come back in one frame", func(c *rawClient) {
			c.write(clientFrame(true, opText, []byte("a"), key), clientFrame(true, opText, []byte("b"), key))
			op, got := c.read()
			if op != opText || (string(got) != "a\nb" && string(got) != "a") {
				t.Fatalf("got %q, want \"a\\nb\" (or \"a\" then \"b\")", got)
			}
			if string(got) == "a" {
				c.expect(opText, "b")
			}
		}},
		{"fragments with a ping between", func(c *rawClient) {
			c.write(clientFrame(false, opText, []byte("hel"), key), clientFrame(true, opPing, []byte("p"), key),
				clientFrame(true, opContinuation, []byte("lo"), key))
			c.expect(opPong, "p")
			c.expect(opText, "hello")
		}},
		{"frame split across writes", func(c *rawClient) {
			f := clientFrame(true, opText, bytes.Repeat([]byte("z"), 900), key)
			c.write(f[:3])
			c.write(f[3:500])
			c.write(f[500:])
			c.expect(opText, strings.Repeat("z", 900))
		}},
		{"binary gets an error, then echo works", func(c *rawClient) {
			c.write(clientFrame(true, opBinary, []byte{1, 2}, key))
			_, got := c.read()
			if !strings.Contains(string(got), `"code":"bad_request"`) {
				t.Fatalf("got %q, want a bad_request error", got)
			}
			c.write(clientFrame(true, opText, []byte("still"), key))
			c.expect(opText, "still")
		}},
		{"client close is answered", func(c *rawClient) {
			c.write(clientFrame(true, opClose, []byte{0x03, 0xE8}, key))
			op, _ := c.read()
			if op != opClose {
				t.Fatalf("got op %#x, want close", op)
			}
			c.expectEnd()
		}},
		{"unmasked frame", func(c *rawClient) {
			c.write([]byte{0x81, 0x01, 'x'})
			c.expectClose("bad_request", 1002)
			c.write(clientFrame(true, opClose, []byte{0x03, 0xEA}, key))
			c.expectEnd()
		}},
		{"continuation without a start", func(c *rawClient) {
			c.write(clientFrame(true, opContinuation, []byte("x"), key))
			c.expectClose("bad_request", 1002)
		}},
		{"invalid UTF-8", func(c *rawClient) {
			c.write(clientFrame(true, opText, []byte{0xff, 0xfe}, key))
			c.expectClose("bad_request", 1007)
		}},
		{"too large in one frame; the rest is skipped", func(c *rawClient) {
			c.write(clientFrame(true, opText, bytes.Repeat([]byte("x"), 5000), key))
			c.expectClose("too_large", 1009)
			c.write(clientFrame(true, opClose, []byte{0x03, 0xE8}, key))
			c.expectEnd()
		}},
		{"too large in fragments", func(c *rawClient) {
			c.write(clientFrame(false, opText, bytes.Repeat([]byte("x"), 600), key), clientFrame(true, opContinuation, bytes.Repeat([]byte("x"), 600), key))
			c.expectClose("too_large", 1009)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tl.dial(t)
			c.t = t
			tc.run(c)
		})
	}
}

func TestLoopPingsAndDropsSilentPeers(t *testing.T) {
	cfg := defaultConfig()
	cfg.PingInterval, cfg.PongTimeout = 50*time.Millisecond, 50*time.Millisecond
	tl := startLoop(t, cfg)
	c := tl.dial(t)
	op, _ := c.read()
	if op != opPing {
		t.Fatalf("got op %#x, want a ping", op)
	}
	// Never answered: the peer is dropped without a closing handshake.
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.br.ReadByte(); err != nil {
			break
		}
	}
	select {
	case <-c.srv.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called for a silent peer")
	}
}

func TestLoopStopClosesConnections(t *testing.T) {
	l, err := New(defaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	a, b := net.Pipe() // no file descriptor: Attach must refuse it
	defer b.Close()
	if _, err := l.Attach(a); err == nil {
		t.Fatal("Attach of a net.Pipe succeeded, want an error")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Attach(server)
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{c: c, closed: make(chan struct{})}
	c.Start(e)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case <-e.closed:
	default:
		t.Fatal("Run returned without closing its connection")
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("socket still open after the loop stopped")
	}
}

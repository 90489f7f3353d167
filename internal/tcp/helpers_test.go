package tcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// listen listens on host:0, skipping the test when host is ::1 and this
// machine has no IPv6 loopback.
func listen(t *testing.T, host string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		if host == "::1" {
			t.Skipf("IPv6 loopback ::1 not available: %v", err)
		}
		t.Fatal(err)
	}
	return ln
}

// start serves cfg on host:0 until the test ends, checking that Serve
// returns ErrServerClosed, and returns the address.
func start(t *testing.T, host string, cfg Config) string {
	t.Helper()
	ln := listen(t, host)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := NewServer(cfg)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// dialTCP connects to addr; the connection is closed when the test ends.
func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// readAll reads c until EOF under a deadline.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	_, err := b.ReadFrom(c)
	if err != nil {
		t.Fatalf("reading until EOF: %v (got %q)", err, b.String())
	}
	return b.String()
}

// expectClosed checks that the server closes c without sending anything.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read = %d, %v; want the server to close the connection", n, err)
	}
}

// lineReader reads lines from a connection under a deadline.
type lineReader struct {
	c  net.Conn
	br *bufio.Reader
}

func newLineReader(c net.Conn) *lineReader { return &lineReader{c: c, br: bufio.NewReader(c)} }

// until reads lines until one satisfies ok and returns it.
func (r *lineReader) until(d time.Duration, ok func(string) bool) (string, error) {
	r.c.SetReadDeadline(time.Now().Add(d))
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line = strings.TrimSuffix(line, "\n"); ok(line) {
			return line, nil
		}
	}
}

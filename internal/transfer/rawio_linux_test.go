//go:build linux && (amd64 || arm64)

package transfer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns two ends of a TCP connection on 127.0.0.1.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb := <-done
	if cb == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca.(*net.TCPConn), cb.(*net.TCPConn)
}

// TestRawSockStream sends 16 MiB through the raw writer to a reader that
// takes small pieces with pauses (so the writer meets a full socket and
// waits on the poller), and back through the raw reader from a writer
// that pauses (so the reader meets an empty socket); both streams arrive
// whole and end in io.EOF.
func TestRawSockStream(t *testing.T) {
	a, b := tcpPair(t)
	a.SetWriteBuffer(64 << 10)
	b.SetReadBuffer(64 << 10)
	data := randomBytes(1, 16<<20)

	ra := newRawSock(a)
	if ra == nil {
		t.Fatal("newRawSock(*net.TCPConn) = nil")
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		p := make([]byte, 8<<10)
		for i := 0; ; i++ {
			n, err := b.Read(p)
			buf.Write(p[:n])
			if err != nil {
				break
			}
			if i%256 == 0 {
				time.Sleep(time.Millisecond) // let the writer's socket fill
			}
		}
		got <- buf.Bytes()
	}()
	if n, err := ra.Write(data); n != len(data) || err != nil {
		t.Fatalf("raw Write = %d, %v; want %d, nil", n, err, len(data))
	}
	a.CloseWrite()
	if g := <-got; !bytes.Equal(g, data) {
		t.Fatalf("received %d bytes, want the %d sent", len(g), len(data))
	}

	// The other way: b writes in bursts, a reads raw.
	go func() {
		for p := data[:4<<20]; len(p) > 0; {
			k := min(len(p), 100_000)
			b.Write(p[:k])
			p = p[k:]
			time.Sleep(time.Millisecond) // let the reader find the socket empty
		}
		b.CloseWrite()
	}()
	back, err := io.ReadAll(ra)
	if err != nil || !bytes.Equal(back, data[:4<<20]) {
		t.Fatalf("raw reads gave %d bytes, %v; want the %d sent and EOF", len(back), err, 4<<20)
	}
	if n, err := ra.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
}

// TestRawSockDeadlines checks that the raw reader and writer honour the
// connection's deadlines with the errors net.Conn gives.
func TestRawSockDeadlines(t *testing.T) {
	a, _ := tcpPair(t) // the other end never reads nor writes
	s := newRawSock(a)

	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 10))
	var ne net.Error
	var op *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &op) || op.Op != "read" {
		t.Fatalf("Read past the deadline: %v; want a read *net.OpError that times out", err)
	}

	big := make([]byte, 64<<20) // more than both socket buffers hold; made (and faulted in) before the clock starts
	a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := s.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &op) || op.Op != "write" {
		t.Fatalf("Write past the deadline: %d, %v; want a write *net.OpError that times out", n, err)
	}
	if n <= 0 || n >= 64<<20 {
		t.Fatalf("Write past the deadline wrote %d bytes, want some but not all", n)
	}
}

// TestRawSockReset checks that an error from the kernel comes back as
// net.Conn gives it: a *net.OpError around an *os.SyscallError.
func TestRawSockReset(t *testing.T) {
	a, b := tcpPair(t)
	b.SetLinger(0)
	b.Close() // RST
	s := newRawSock(a)
	var err error
	for range 100 { // the RST may need a write to be noticed
		if _, err = s.Write([]byte("x")); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var se *os.SyscallError
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) || !errors.As(err, &se) {
		t.Fatalf("Write to a reset connection: %v; want ECONNRESET or EPIPE in an *os.SyscallError", err)
	}
}

func TestRawSockNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if s := newRawSock(a); s != nil {
		t.Fatal("newRawSock(net.Pipe) is not nil")
	}
	if r := sockReader(a); r != io.Reader(a) {
		t.Fatal("sockReader(net.Pipe) is not the pipe")
	}
}

// TestRawFile checks the raw ReadAt and WriteAt against os.File's: full
// and short reads, writes at offsets, and the errors.
func TestRawFile(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if newRawFile(f) != nil {
		t.Fatal("newRawFile with GOMAXPROCS 2 is not nil: raw file calls are for one P only")
	}
	runtime.GOMAXPROCS(1)
	r := newRawFile(f)
	if r == nil {
		t.Fatal("newRawFile with GOMAXPROCS 1 = nil")
	}
	data := randomBytes(2, 1<<20)
	if n, err := r.WriteAt(data[100:], 100); n != len(data)-100 || err != nil {
		t.Fatalf("WriteAt(100) = %d, %v", n, err)
	}
	if n, err := r.WriteAt(data[:100], 0); n != 100 || err != nil {
		t.Fatalf("WriteAt(0) = %d, %v", n, err)
	}
	got := make([]byte, len(data))
	if n, err := r.ReadAt(got, 0); n != len(data) || err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt(0) = %d, %v (same bytes: %v); want all, nil", n, err, bytes.Equal(got, data))
	}
	if n, err := r.ReadAt(got, 1000); n != len(data)-1000 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v; want %d, io.EOF", n, err, len(data)-1000)
	}
	if _, err := r.WriteAt(data, -1); !errors.Is(err, os.ErrInvalid) {
		t.Fatalf("WriteAt(-1) = %v, want os.ErrInvalid", err)
	}

	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var pe *os.PathError
	if _, err := newRawFile(ro).WriteAt(data, 0); !errors.Is(err, syscall.EBADF) || !errors.As(err, &pe) || pe.Path != f.Name() {
		t.Fatalf("WriteAt on a read-only file: %v; want EBADF in an *os.PathError naming the file", err)
	}
}

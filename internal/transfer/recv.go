package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// server is Receive's state shared by its connections.
type server struct {
	cfg  RecvConfig
	em   *emitter
	root *os.Root
	tls  *tls.Config // nil without TLS

	mu       sync.Mutex
	busy     map[string]bool // final names being received, guarded by mu
	reserved int64           // bytes promised to accepted files, guarded by mu

	// finished is called once per connection that got as far as a
	// transfer (a manifest, or a classic name), with its outcome.
	finished func(error)
}

func receive(ctx context.Context, ln net.Listener, cfg RecvConfig) error {
	dir := cfg.Dir
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		ln.Close()
		return fmt.Errorf("transfer: --dir: %w", err)
	}
	defer root.Close()
	s := &server{cfg: cfg, em: newEmitter(cfg.Events), root: root, busy: map[string]bool{}}
	var code string
	if cfg.TLS {
		if s.tls, code, err = serverTLS(); err != nil {
			ln.Close()
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var first error // the Once transfer's outcome, written before wg.Done
	var once sync.Once
	s.finished = func(err error) {
		if cfg.Once {
			once.Do(func() { first = err; cancel() })
		}
	}
	s.em.emit(Event{Kind: EventListening, Addr: ln.Addr().String(), Code: code})
	var wg sync.WaitGroup
	err = s.acceptLoop(ctx, ln, &wg)
	cancel()
	ln.Close()
	wg.Wait()
	if err != nil {
		return err
	}
	return first
}

// acceptLoop starts a goroutine per connection until ctx ends.
func (s *server) acceptLoop(ctx context.Context, ln net.Listener, wg *sync.WaitGroup) error {
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) && !errors.Is(err, syscall.ECONNABORTED) {
				return fmt.Errorf("transfer: accept: %w", err)
			}
			// Out of descriptors: wait for connections to end, as net/http does.
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

// serveConn runs one sender's connection and reports its summary.
func (s *server) serveConn(ctx context.Context, conn net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	peer := conn.RemoteAddr().String()
	start := time.Now()
	s.em.emit(Event{Kind: EventConnected, Peer: peer})
	if s.tls != nil {
		tc, err := s.handshake(ctx, conn)
		if err != nil {
			s.em.emit(Event{Kind: EventError, Peer: peer, Reason: err.Error()})
			return
		}
		conn = tc
	}
	var sum Summary
	var started bool
	var err error
	if s.cfg.Classic {
		sum, started, err = s.serveClassic(ctx, conn, peer)
	} else {
		sum, started, err = newRecvConn(s, conn, peer).run(ctx)
	}
	sum.Elapsed = time.Since(start)
	if err != nil {
		s.em.emit(Event{Kind: EventError, Peer: peer, Reason: err.Error()})
	}
	if started {
		s.em.emit(Event{Kind: EventSummary, Peer: peer, Files: sum.Files, Bytes: sum.Bytes,
			Elapsed: sum.Elapsed, Rate: xferRate(sum.Bytes, sum.Elapsed), Verified: sum.Verified,
			Skipped: sum.Skipped, Rejected: sum.Rejected, Failed: sum.Failed})
		s.finished(err)
	}
}

// handshake serves TLS on conn. A sender without TLS is told so in its
// own protocol instead of getting a handshake failure it cannot explain.
func (s *server) handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	conn.SetDeadline(time.Now().Add(s.helloTimeout()))
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return nil, fmt.Errorf("transfer: tls handshake: %w", err)
	}
	if first[0] != 0x16 { // not a TLS handshake record
		const why = "this receiver runs with --tls: send with --tls --code CODE"
		if first[0] == magic[0] {
			conn.Write(appendFrame(appendHello(nil, 0), fAbort, []byte(why)))
		} else {
			conn.Write([]byte("error: " + why + "\n"))
		}
		linger(conn, "")
		return nil, errors.New("transfer: a sender without TLS; this receiver runs with --tls")
	}
	tc := tls.Server(&replayConn{Conn: conn, first: first[:]}, s.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("transfer: tls handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return tc, nil
}

// replayConn gives back bytes already read before reading conn.
type replayConn struct {
	net.Conn
	first []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// helloTimeout bounds the TLS handshake and the hello: IdleTimeout, or
// 30 s without one, so that a silent connection does not stay forever.
func (s *server) helloTimeout() time.Duration {
	if s.cfg.IdleTimeout > 0 {
		return s.cfg.IdleTimeout
	}
	return 30 * time.Second
}

// claim marks name as being received; false if another connection has it.
func (s *server) claim(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[name] {
		return false
	}
	s.busy[name] = true
	return true
}

// release undoes claim and reserve for one connection.
func (s *server) release(names []string, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		delete(s.busy, n)
	}
	s.reserved -= bytes
}

// reserve promises need bytes of the avail free ones (less a margin and
// what other transfers were promised); it returns what was left to
// promise when need does not fit.
func (s *server) reserve(need, avail int64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := avail - s.reserved
	if need > left {
		return max(left, 0), false
	}
	s.reserved += need
	return left, true
}

// freeSpace returns the bytes available to this user under dir, less a
// safety margin of 1% of the file system, at most 64 MiB.
func (s *server) freeSpace() (int64, error) {
	if s.cfg.freeSpace != nil {
		return s.cfg.freeSpace()
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.root.Name(), &st); err != nil {
		return 0, fmt.Errorf("transfer: free space: %w", err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	total := int64(st.Blocks) * int64(st.Bsize)
	return avail - min(total/100, 64<<20), nil
}

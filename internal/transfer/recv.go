package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is Receive's state shared by its connections.
type server struct {
	cfg  RecvConfig
	em   *emitter
	root *os.Root
	tls  *tls.Config // nil without TLS

	code  string        // the code senders must prove; "" when open
	slots chan struct{} // one per connection served, MaxConns

	mu        sync.Mutex
	busy      map[string]*recvConn // final names being received and by whom, guarded by mu
	reserved  int64                // bytes promised to accepted files, guarded by mu
	failures  int                  // senders that did not prove the code, guarded by mu
	manifests int64                // bytes charged for manifests in memory, guarded by mu
	fatal     error                // why Receive must stop (too many failures), guarded by mu
	stop      context.CancelFunc   // ends Receive, set before the first connection

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
	s, err := newServer(cfg, root)
	if err != nil {
		ln.Close()
		return err
	}
	code := s.code
	if cfg.TLS {
		if s.tls, code, err = serverTLS(); err != nil {
			ln.Close()
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.stop = cancel
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var first error // the Once transfer's outcome, written before wg.Done
	var once sync.Once
	s.finished = func(err error) {
		if cfg.Once {
			once.Do(func() { first = err; cancel() })
		}
	}
	s.em.emit(Event{Kind: EventListening, Addr: ln.Addr().String(), Code: code, Dir: absDir(dir), Addrs: localAddrs(ln.Addr())})
	var wg sync.WaitGroup
	err = s.acceptLoop(ctx, ln, &wg)
	cancel()
	ln.Close()
	wg.Wait()
	if err != nil {
		return err
	}
	if err := s.fatalErr(); err != nil {
		return err
	}
	return first
}

// newServer checks cfg and fills in its defaults: a new code unless the
// receiver is open.
func newServer(cfg RecvConfig, root *os.Root) (*server, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 10
	}
	if cfg.ManifestMem <= 0 {
		cfg.ManifestMem = 256 << 20
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 2 * time.Minute
	}
	s := &server{cfg: cfg, em: newEmitter(cfg.Events), root: root, busy: map[string]*recvConn{},
		slots: make(chan struct{}, cfg.MaxConns), stop: func() {}}
	if cfg.Open || cfg.Classic || cfg.TLS {
		return s, nil
	}
	code := cfg.Code
	var err error
	if code == "" {
		code, err = NewCode()
	} else {
		code, _, err = ParseCode(code)
	}
	s.code = code
	return s, err
}

// failedCode counts a sender that did not prove the code and stops
// Receive when there were too many; it returns the count.
func (s *server) failedCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	if s.failures >= s.cfg.MaxFailures && s.fatal == nil {
		s.fatal = ErrTooManyFailures
		s.stop()
	}
	return s.failures
}

func (s *server) maxFailures() int { return s.cfg.MaxFailures }

func (s *server) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
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
		select {
		case s.slots <- struct{}{}:
		default:
			// Full: say so without a goroutine, briefly, and drop it.
			s.em.emit(Event{Kind: EventWarning, Peer: conn.RemoteAddr().String(),
				Reason: fmt.Sprintf("refused: %d connections already (--max-conns)", s.cfg.MaxConns)})
			conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			conn.Write(appendFrame(appendHello(nil, 0, s.auth()), fAbort,
				[]byte(fmt.Sprintf("busy: this receiver serves %d connections at once; try again later", s.cfg.MaxConns))))
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.slots }()
			s.serveConn(ctx, conn)
		}()
	}
}

// serveConn runs one sender's connection, reports its summary and
// returns its error.
func (s *server) serveConn(ctx context.Context, conn net.Conn) error {
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
			s.em.emit(Event{Kind: EventError, Peer: peer, Reason: connReason(err, peer)})
			return err
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
		s.em.emit(Event{Kind: EventError, Peer: peer, Reason: connReason(err, peer)})
	}
	if started {
		s.em.emit(Event{Kind: EventSummary, Peer: peer, Files: sum.Files, Bytes: sum.Bytes,
			Elapsed: sum.Elapsed, Rate: xferRate(sum.Bytes, sum.Elapsed), Verified: sum.Verified,
			Skipped: sum.Skipped, Rejected: sum.Rejected, Failed: sum.Failed})
		s.finished(err)
	}
	return err
}

// connReason is a connection's error for its event, which names the
// peer already: without "transfer: PEER: ".
func connReason(err error, peer string) string {
	msg := strings.TrimPrefix(err.Error(), "transfer: ")
	return strings.TrimPrefix(msg, peer+": ")
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
			conn.Write(appendFrame(appendHello(nil, 0, authOpen), fAbort, []byte(why)))
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

// claim marks name as being received by rc; when another connection has
// it, it returns that connection.
func (s *server) claim(name string, rc *recvConn) *recvConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.busy[name]; other != nil {
		return other
	}
	s.busy[name] = rc
	return nil
}

// release undoes claim and reserve for one connection.
func (s *server) release(rc *recvConn, names []string, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if s.busy[n] == rc {
			delete(s.busy, n)
		}
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
	avail, total, err := diskSpace(s.root.Name())
	if err != nil {
		return 0, fmt.Errorf("transfer: free space: %w", err)
	}
	return avail - min(total/100, 64<<20), nil
}

// Manifest memory: what a manifest of n bytes may cost the receiver, at
// most, while its connection runs: the payload (its names are
// substrings of it), half as much again while it grows, and per entry
// the entry (40 bytes), its state (16), the duplicate check's maps, the
// claim of its name and its answer on the way out: 200 bytes in all,
// measured at about 190 with every file accepted (TestReceiverWorstCase).
// docs/transfer.md has the figures.
const perEntryCost = 200

// payloadCost is what reading a payload of n bytes may take.
func payloadCost(n int64) int64 { return n + n/2 }

// manifestCost is the most a manifest of n bytes is charged: its payload
// and the most entries it can hold.
func manifestCost(n int64) int64 {
	return payloadCost(n) + min(n/(entryFixedLen+1), maxEntries)*perEntryCost
}

// charge takes n bytes of the manifest budget; false when they do not fit.
func (s *server) charge(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifests+n > s.cfg.ManifestMem {
		return false
	}
	s.manifests += n
	return true
}

// uncharge gives manifest budget back.
func (s *server) uncharge(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifests -= n
}

// absDir returns dir as an absolute path, for the first screen.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// localAddrs returns the HOST:PORT a sender could use: the listener's
// own address, or when it listens on every interface, each interface's
// address that is up and not loopback (IPv4 first).
func localAddrs(a net.Addr) []string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil
	}
	port := strconv.Itoa(ta.Port)
	if !ta.IP.IsUnspecified() {
		return []string{net.JoinHostPort(ta.IP.String(), port)}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var v4, v6 []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil {
				v4 = append(v4, net.JoinHostPort(ipn.IP.String(), port))
			} else {
				v6 = append(v6, net.JoinHostPort(ipn.IP.String(), port))
			}
		}
	}
	return append(v4, v6...)
}

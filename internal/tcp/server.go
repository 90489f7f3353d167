package tcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/netkit/netkit/internal/termtext"
)

// Config is how a Server treats its clients.
type Config struct {
	Mode        Mode           // echo, print, discard or chat; "" means echo
	MaxConns    int            // connections served at once; 0 means no limit, more are closed at once
	IdleTimeout time.Duration  // close a client that sends nothing this long; 0 means never
	Allow       []netip.Prefix // if not empty, only clients in these prefixes are served
	Deny        []netip.Prefix // clients in these prefixes are closed at once; Deny wins over Allow
	TLS         *tls.Config    // if not nil, clients speak TLS
	// ChatSoftLimit is the bytes queued for a chat client above which the
	// clients whose lines filled its queue are not read until it drains;
	// each queued line counts 32 bytes more than its length. 0 means
	// DefaultChatSoftLimit (64 KiB).
	ChatSoftLimit int
	// ChatHardLimit is the bytes queued for a chat client that drop it at
	// once. 0 means DefaultChatHardLimit (1 MiB); anything under
	// ChatSoftLimit + MinChatHeadroom is raised to that, so that a line
	// over the soft limit always fits.
	ChatHardLimit int
	// ChatStallTimeout is how long a chat client's queue may stay over
	// ChatSoftLimit before it is dropped as not reading. 0 means
	// DefaultChatStallTimeout (10s).
	ChatStallTimeout time.Duration
	SendBuffer       int          // SO_SNDBUF of each connection in bytes; 0 leaves the system's default
	Out              io.Writer    // print mode's output; nil discards it
	Log              *slog.Logger // connections, refusals and drops; nil discards them
}

// maxLine is the longest line print and chat modes take; chat closes a
// client that sends a longer one.
const maxLine = 16 << 10

// Server serves TCP clients in one Mode.
type Server struct {
	cfg  Config
	log  *slog.Logger
	room chatRoom

	outMu sync.Mutex // serializes writes to cfg.Out

	mu     sync.Mutex
	active int // guarded by mu; connections being served
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) *Server {
	if cfg.Mode == "" {
		cfg.Mode = ModeEcho
	}
	if cfg.ChatSoftLimit <= 0 {
		cfg.ChatSoftLimit = DefaultChatSoftLimit
	}
	if cfg.ChatHardLimit <= 0 {
		cfg.ChatHardLimit = DefaultChatHardLimit
	}
	cfg.ChatHardLimit = max(cfg.ChatHardLimit, cfg.ChatSoftLimit+MinChatHeadroom)
	if cfg.ChatStallTimeout <= 0 {
		cfg.ChatStallTimeout = DefaultChatStallTimeout
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, room: chatRoom{clients: make(map[*chatClient]struct{})}}
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection, waits for their goroutines and returns ErrServerClosed.
// Another accept error is returned, also after the connections ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "in", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
				continue
			}
			return fmt.Errorf("tcp: accept: %w", err)
		}
		backoff = 0
		if !s.admit(c) {
			continue
		}
		wg.Go(func() {
			defer s.release()
			s.handle(ctx, c)
		})
	}
}

// isTemporary reports whether an accept error is worth retrying (EMFILE
// and the like).
func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// admit applies the address filters and the connection limit; it closes c
// and returns false for a client it refuses.
func (s *Server) admit(c net.Conn) bool {
	peer := remoteAddr(c)
	if !s.allowed(peer.Addr()) {
		s.log.Info("refused", "peer", peer.String(), "reason", "address filter")
		c.Close()
		return false
	}
	s.mu.Lock()
	full := s.cfg.MaxConns > 0 && s.active >= s.cfg.MaxConns
	if !full {
		s.active++
	}
	s.mu.Unlock()
	if full {
		s.log.Info("refused", "peer", peer.String(), "reason", "max-conns")
		c.Close()
		return false
	}
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

// allowed reports whether the filters let a client at a in.
func (s *Server) allowed(a netip.Addr) bool {
	in := func(p netip.Prefix) bool { return p.Contains(a) }
	if slices.ContainsFunc(s.cfg.Deny, in) {
		return false
	}
	return len(s.cfg.Allow) == 0 || slices.ContainsFunc(s.cfg.Allow, in)
}

// remoteAddr is c's peer address with IPv4-mapped IPv6 addresses unmapped.
func remoteAddr(c net.Conn) netip.AddrPort {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handle serves one client until it goes, ctx ends or it idles too long.
func (s *Server) handle(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok && s.cfg.SendBuffer > 0 {
		_ = tc.SetWriteBuffer(s.cfg.SendBuffer)
	}
	peer := remoteAddr(c).String()
	if s.cfg.TLS != nil {
		tc := tls.Server(c, s.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			s.log.Info("tls handshake failed", "peer", peer, "err", err)
			return
		}
		c = tc
	}
	s.log.Info("connected", "peer", peer)
	r := &idleReader{c: c, timeout: s.cfg.IdleTimeout}
	var err error
	switch s.cfg.Mode {
	case ModeChat:
		err = s.chat(ctx, cancel, c, r, peer)
	case ModePrint:
		err = s.print(r, peer)
	case ModeDiscard:
		_, err = io.Copy(io.Discard, r)
	default:
		_, err = io.Copy(c, r)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		s.log.Info("closed", "peer", peer, "err", err)
		return
	}
	s.log.Info("closed", "peer", peer)
}

// print writes each line from r as "<peer>: <escaped line>".
func (s *Server) print(r io.Reader, peer string) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			line = trimEOL(line)
			s.outMu.Lock()
			_, werr := fmt.Fprintf(s.cfg.Out, "%s: %s\n", peer, termtext.Escape(line))
			s.outMu.Unlock()
			if werr != nil {
				return werr
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue // the rest of a long line follows as another line
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// trimEOL drops a trailing "\n" or "\r\n".
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// idleReader reads from c, failing when nothing arrives for timeout.
type idleReader struct {
	c       net.Conn
	timeout time.Duration // 0 means no limit
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.timeout > 0 {
		if err := r.c.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
			return 0, err
		}
	}
	n, err := r.c.Read(p)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("tcp: idle for %v: %w", r.timeout, err)
	}
	return n, err
}

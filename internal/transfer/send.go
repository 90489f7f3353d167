package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// sender is one Send. The goroutine running Send is the only writer; once
// the answers are in, readAcks is the only reader.
type sender struct {
	cfg  SendConfig
	em   *emitter
	conn net.Conn
	tcp  *net.TCPConn // for sendfile; nil with TLS
	br   *bufio.Reader
	bw   *bufio.Writer
	fbuf bytes.Buffer // frame payloads read
	fb   []byte       // frame being written
	buf  []byte       // file data, 1 MiB, reused
	bufs [][]byte     // copyBodyPiped's buffers, pipeBuffers of chunkSize, reused
	raw  syscall.RawConn

	code          string // canonical code; "" when open or TLS
	localProgress bool   // classic: progress from what went into the socket (no receiver reports)
	srcs          []source
	answers       []answer
	every         time.Duration // keepalive interval while hashing
	lastFlush     time.Time
	werr          error // first write failure
	sum           Summary
	sentData      int // files whose data went out: each gets an ack

	confirmed atomic.Int64 // file bytes the receiver reported on disk; written by readAcks
}

// dialError says what to check when a connection cannot be made: the
// address, and what should be listening there.
func dialError(addr, what string, err error) error {
	var why string
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		why = "no answer"
	default:
		var de *net.DNSError
		if errors.As(err, &de) {
			why = "unknown host"
		}
	}
	if why == "" {
		return fmt.Errorf("transfer: cannot connect to %s (%s, and can this machine reach that port?): %w", addr, what, err)
	}
	return fmt.Errorf("transfer: cannot connect to %s: %s; %s, and can this machine reach that port?", addr, why, what)
}

func send(ctx context.Context, cfg SendConfig) (Summary, error) {
	em := newEmitter(cfg.Events)
	start := time.Now()
	warn := func(name, why string) { em.emit(Event{Kind: EventWarning, File: name, Reason: why}) }
	srcs, err := walkPaths(cfg.Paths, cfg.Follow, warn)
	if err != nil {
		return Summary{}, err
	}
	if len(srcs) == 0 {
		return Summary{}, errors.New("transfer: nothing to send (everything was skipped)")
	}
	var code string
	if !cfg.Open && !cfg.TLS && cfg.Relay == "" {
		if cfg.Code == "" {
			return Summary{}, errors.New("transfer: a code is needed: send with --code CODE, the code netkit recv printed (or --open for a receiver that runs with --open)")
		}
		if code, _, err = ParseCode(cfg.Code); err != nil {
			return Summary{}, err
		}
	}
	var conn net.Conn
	if cfg.Relay != "" {
		conn, code, err = relayOffer(ctx, cfg.Relay, em)
	} else {
		conn, err = dialReceiver(ctx, cfg)
	}
	if err != nil {
		return Summary{}, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	em.emit(Event{Kind: EventConnected, Peer: conn.RemoteAddr().String()})

	s := &sender{cfg: cfg, em: em, conn: conn, srcs: srcs, every: time.Second, code: code,
		br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 64<<10)}
	if canSendfile {
		s.tcp, _ = conn.(*net.TCPConn)
	}
	err = s.run(ctx)
	if ctx.Err() != nil {
		err = fmt.Errorf("transfer: send stopped: %w", ctx.Err())
	}
	s.sum.Elapsed = time.Since(start)
	em.emit(Event{Kind: EventSummary, Files: s.sum.Files, Bytes: s.sum.Bytes, Elapsed: s.sum.Elapsed,
		Rate: xferRate(s.sum.Bytes, s.sum.Elapsed), Verified: s.sum.Verified,
		Skipped: s.sum.Skipped, Rejected: s.sum.Rejected, Failed: s.sum.Failed})
	return s.sum, err
}

// dialReceiver connects, and with TLS completes a handshake that accepts
// only the certificate named by cfg.Code.
func dialReceiver(ctx context.Context, cfg SendConfig) (net.Conn, error) {
	var tcfg *tls.Config
	if cfg.TLS {
		var err error
		if tcfg, err = clientTLS(cfg.Code); err != nil {
			return nil, err
		}
	}
	timeout := cfg.IdleTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, dialError(cfg.Addr, "is netkit recv running there", err)
	}
	if tcfg == nil {
		return conn, nil
	}
	tc := tls.Client(conn, tcfg)
	conn.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if errors.Is(err, ErrCodeMismatch) {
			return nil, ErrCodeMismatch
		}
		return nil, fmt.Errorf("transfer: tls handshake with %s (does it run with --tls?): %w", cfg.Addr, err)
	}
	conn.SetDeadline(time.Time{})
	return tc, nil
}

// run speaks the protocol: hello, manifest, answers, then the files while
// readAcks collects the receiver's verdicts.
func (s *sender) run(ctx context.Context) error {
	if err := s.hello(); err != nil {
		return err
	}
	if err := s.sendManifest(); err != nil {
		return err
	}
	if err := s.readAnswers(); err != nil {
		return err
	}
	acks := make(chan ackResult, 1)
	go func() { acks <- s.readAcks() }()
	defer func() { s.sum.Bytes = s.confirmed.Load() }()
	err := s.sendAll(ctx)
	if err == nil {
		s.writeFrame(fEnd, nil)
		err = s.flush()
	}
	if err != nil {
		s.conn.Close() // stops readAcks
	}
	ar := <-acks
	s.sum.Files += ar.files
	s.sum.Verified += ar.files
	s.sum.Failed += ar.failed
	switch {
	case ar.err != nil && (err == nil || ar.remote):
		return ar.err // the receiver's reason beats our broken pipe
	case err != nil:
		return err
	case ar.files+ar.failed != s.sentData:
		return fmt.Errorf("transfer: %w: the receiver confirmed %d of %d files", ErrProtocol, ar.files+ar.failed, s.sentData)
	}
	return nil
}

// hello exchanges hellos and learns how often the receiver wants a sign
// of life: a quarter of its idle timeout, at most 1 s.
func (s *sender) hello() error {
	var st *pakeState
	auth := authOpen
	if s.code != "" {
		var err error
		if st, err = newPake(s.code, true); err != nil {
			return err
		}
		auth = authCode
	}
	s.bw.Write(appendHello(nil, s.cfg.IdleTimeout, auth))
	if st != nil {
		s.writeFrame(fPake, st.mine) // no round trip of its own
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.readDeadline()
	b, err := readHello(s.br)
	if err != nil {
		if len(b) > 0 && b[0] == 0x15 { // a TLS alert record
			return fmt.Errorf("transfer: %s: the receiver speaks TLS: send with --tls --code CODE", s.where())
		}
		if len(b) > 0 {
			return fmt.Errorf("transfer: %s: not a netkit receiver (it answered %q; a classic receiver needs --classic)", s.where(), safeText(string(b)))
		}
		return s.readErr(err)
	}
	idle, peerAuth, err := parseHello(b)
	if err != nil {
		return fmt.Errorf("transfer: %s: %w", s.where(), err)
	}
	if idle > 0 {
		s.every = max(min(s.every, idle/4), 10*time.Millisecond)
	}
	return s.secure(st, peerAuth)
}

func (s *sender) sendManifest() error {
	entries := make([]entry, len(s.srcs))
	ev := Event{Kind: EventManifest}
	for i, src := range s.srcs {
		entries[i] = src.entry
		if src.Kind == kindFile {
			ev.Files++
			ev.Bytes += src.Size
		}
	}
	p := encodeManifest(entries)
	if len(p) > maxManifest {
		return fmt.Errorf("transfer: the list of files is %s, more than the %s a manifest may hold; send fewer at once", spaceString(int64(len(p))), spaceString(maxManifest))
	}
	if len(entries) > maxEntries {
		return fmt.Errorf("transfer: %d files and directories, more than the %d a manifest may hold; send fewer at once", len(entries), maxEntries)
	}
	s.em.emit(ev)
	s.writeFrame(fManifest, p)
	return s.flush()
}

// readAnswers reads the receiver's verdict on every entry, in order.
func (s *sender) readAnswers() error {
	s.answers = make([]answer, len(s.srcs))
	for i, src := range s.srcs {
		typ, p, err := s.readFrame()
		if err != nil {
			return err
		}
		var a answer
		if typ != fAnswer {
			err = fmt.Errorf("%w: frame type %d instead of an answer", ErrProtocol, typ)
		} else if a, err = decodeAnswer(p); err == nil && !answerFits(a, i, src.entry) {
			err = fmt.Errorf("%w: answer %d (verdict %d) does not fit entry %d", ErrProtocol, a.Index, a.Verdict, i)
		}
		if err != nil {
			return fmt.Errorf("transfer: %s: %w", s.where(), err)
		}
		if a.Verdict == vReject {
			s.sum.Rejected++
			s.em.emit(Event{Kind: EventReject, File: src.Name, Reason: a.Reason})
		}
		s.answers[i] = a
	}
	return nil
}

func answerFits(a answer, i int, e entry) bool {
	switch {
	case a.Index != uint32(i):
		return false
	case a.Verdict == vReject:
		return true
	case e.Kind == kindDir:
		return a.Verdict == vDir
	}
	return a.Verdict == vCheck || (a.Verdict == vSend && a.Offset <= e.Size)
}

// ackResult is what readAcks saw.
type ackResult struct {
	files, failed int
	err           error
	remote        bool // err is the receiver's own reason
}

// readAcks reads the receiver's per-file verdicts and progress until
// DONE. Progress comes from what the receiver reports on disk, not from
// what went into the socket.
func (s *sender) readAcks() (r ackResult) {
	defer func() {
		if r.err != nil {
			s.conn.Close() // stops the writer too
		}
	}()
	var acked int64   // bytes of files acknowledged
	var fileOff int64 // the current file's offset, from its progress
	cur := -1
	for {
		typ, p, err := s.readFrame()
		if err != nil {
			r.err, r.remote = err, errors.Is(err, errRemote)
			return r
		}
		if typ == fDone {
			return r
		}
		var res result
		var pr progressReport
		switch typ {
		case fAck:
			res, err = decodeResult(p)
		case fProgress:
			pr, err = decodeProgress(p)
			res.Index = pr.Index
		default:
			err = fmt.Errorf("%w: frame type %d instead of an ack", ErrProtocol, typ)
		}
		if err == nil && (int64(res.Index) >= int64(len(s.srcs)) || s.srcs[res.Index].Kind != kindFile) {
			err = fmt.Errorf("%w: ack for entry %d", ErrProtocol, res.Index)
		}
		if err != nil {
			r.err = fmt.Errorf("transfer: %s: %w", s.where(), err)
			return r
		}
		src := s.srcs[res.Index]
		switch {
		case typ == fProgress:
			if pr.Pos > src.Size || pr.Offset > pr.Pos {
				r.err = fmt.Errorf("transfer: %s: %w: progress %d of %d", s.where(), ErrProtocol, pr.Pos, src.Size)
				return r
			}
			cur, fileOff = int(pr.Index), pr.Offset
			s.confirmed.Store(acked + pr.Pos - pr.Offset)
			s.em.emit(Event{Kind: EventProgress, File: src.Name, Size: src.Size, Done: pr.Pos})
		case res.OK:
			r.files++
			if cur == int(res.Index) {
				acked += src.Size - fileOff
			}
			s.confirmed.Store(acked)
			s.em.emit(Event{Kind: EventDone, File: src.Name, Size: src.Size, Hash: hexHash(res.Hash)})
		default:
			r.failed++
			s.confirmed.Store(acked)
			s.em.emit(Event{Kind: EventError, File: src.Name, Reason: res.Reason})
		}
	}
}

// errRemote marks the receiver's reason for ending the connection.
var errRemote = errors.New("receiver")

// readFrame reads the next frame other than a keepalive; an ABORT becomes
// an error carrying the receiver's reason.
func (s *sender) readFrame() (byte, []byte, error) {
	for {
		s.readDeadline()
		typ, p, err := readFrame(s.br, &s.fbuf)
		if err != nil {
			return 0, nil, s.readErr(err)
		}
		switch typ {
		case fKeepalive:
			continue
		case fAbort:
			reason, _ := decodeReason(p)
			return 0, nil, fmt.Errorf("transfer: %w: %s", errRemote, reason)
		}
		return typ, p, nil
	}
}

func (s *sender) readErr(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, ErrTampered):
		return fmt.Errorf("transfer: %s: %w", s.where(), err)
	case errors.Is(err, ErrProtocol):
		return fmt.Errorf("transfer: %s: %w", s.where(), err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("transfer: %s: receiver silent for %v: %w", s.where(), s.cfg.IdleTimeout, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("transfer: %s: receiver closed the connection: %w", s.where(), err)
	}
	return fmt.Errorf("transfer: %s: %w", s.where(), err)
}

func (s *sender) readDeadline() {
	if s.cfg.IdleTimeout > 0 {
		s.conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	}
}

func (s *sender) writeDeadline() {
	if s.cfg.IdleTimeout > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	}
}

// writeFrame buffers a frame; flush sends it.
func (s *sender) writeFrame(typ byte, payload []byte) {
	s.fb = appendFrame(s.fb[:0], typ, payload)
	s.bw.Write(s.fb)
}

func (s *sender) flush() error {
	s.writeDeadline()
	if err := s.bw.Flush(); err != nil {
		if s.werr == nil {
			s.werr = s.writeErr(err)
		}
		return s.werr
	}
	s.lastFlush = time.Now()
	return nil
}

func (s *sender) writeErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("transfer: %s: receiver stalled for %v: %w", s.where(), s.cfg.IdleTimeout, err)
	}
	return fmt.Errorf("transfer: %s: %w", s.where(), err)
}

// tick sends a keepalive when the receiver has heard nothing for a while;
// it runs between the windows of a long hash.
func (s *sender) tick() error {
	if time.Since(s.lastFlush) < s.every {
		return nil
	}
	s.writeFrame(fKeepalive, nil)
	return s.flush()
}

func (s *sender) buffer() []byte {
	if s.buf == nil {
		s.buf = make([]byte, 1<<20)
	}
	return s.buf
}

// readHello reads a 12-byte hello from r, stopping early with what it got
// when the bytes cannot start one.
func readHello(r io.Reader) ([]byte, error) {
	b := make([]byte, helloLen)
	n := 0
	for n < helloLen {
		k, err := r.Read(b[n:])
		n += k
		if !bytes.HasPrefix(magic[:], b[:min(n, len(magic))]) {
			return b[:n], fmt.Errorf("%w: not a netkit peer", ErrProtocol)
		}
		if err != nil && n < helloLen {
			return b[:n], err
		}
	}
	return b, nil
}

// sameFile checks that f is still the file that was listed.
func sameFile(f *os.File, src source) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() != src.Size || fi.ModTime().UnixNano() != src.MTime {
		return errors.New("changed since it was listed; send it again")
	}
	return nil
}

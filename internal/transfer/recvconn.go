package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Per-entry states on the receiver.
const (
	stRejected = iota // refused, or a directory: nothing more to come
	stPending         // accepted file: DATA or SKIP expected
	stDone            // handled
)

// fileState is what the receiver remembers about one manifest entry: 16
// bytes, so that a manifest of a million entries stays small. The hash
// state of a resumed prefix lives in recvConn.prefixes, for a few files.
type fileState struct {
	offset  int64 // vSend: the resume offset offered
	state   uint8
	verdict byte
	created bool // directory made by this connection
}

// maxPrefixes is how many resumed files keep their prefix's hash state
// (about 2 KiB each) between the answer and the data; the others hash
// their prefix again when the data comes.
const maxPrefixes = 16

// recvConn is one netkit sender's connection on the receiver. Its run
// goroutine is the only reader; w is the only writer.
type recvConn struct {
	srv  *server
	conn net.Conn
	peer string
	br   *bufio.Reader
	w    *frameWriter
	fbuf bytes.Buffer // frame payloads
	buf  []byte       // file data, 1 MiB, reused
	bufs chan []byte  // buffers for receiveBody's pipeline, made on first use
	pipe *splicePipe  // for splice(2), made on first use
	raw  syscall.RawConn

	entries  []entry
	files    []fileState
	prefixes map[int]*hasher // resumed files' prefix hash state, at most maxPrefixes
	last     int             // highest entry index handled in the data phase
	claimed  []string        // names claimed on the server
	reserved int64           // bytes reserved on the server
	charged  int64           // manifest bytes charged on the server
	cur      progressReport  // the file being received
	sum      Summary

	moved  atomic.Int64       // Unix ns of the last file data or step; read by other connections
	cancel context.CancelFunc // ends this connection (a takeover)
	done   chan struct{}      // closed once its claims are released
}

func newRecvConn(s *server, conn net.Conn, peer string) *recvConn {
	rc := &recvConn{srv: s, conn: conn, peer: peer, br: bufio.NewReaderSize(sockReader(conn), 64<<10), last: -1,
		cancel: func() {}, done: make(chan struct{})}
	rc.step()
	return rc
}

// step records progress: file data arrived, or a frame that moves the
// transfer on. Keepalives are not progress: a sender that sends nothing
// else for cfg.Hold is dropped and its reservations end.
func (rc *recvConn) step() { rc.moved.Store(time.Now().UnixNano()) }

// run serves the connection; started reports whether a manifest arrived.
func (rc *recvConn) run(ctx context.Context) (sum Summary, started bool, err error) {
	ctx, rc.cancel = context.WithCancel(ctx)
	defer rc.cancel()
	raw := rc.conn // a takeover cancels ctx: that must end blocked reads
	stopClose := context.AfterFunc(ctx, func() { raw.Close() })
	defer stopClose()
	defer close(rc.done)
	defer func() { rc.srv.release(rc, rc.claimed, rc.reserved); rc.srv.uncharge(rc.charged) }()
	every, auth, err := rc.readHello()
	if err != nil {
		return rc.sum, false, err
	}
	if err := rc.secure(auth); err != nil {
		return rc.sum, false, err
	}
	rc.w = newFrameWriter(rc.conn, every, rc.srv.cfg.IdleTimeout)
	go rc.w.run()
	defer func() {
		if rc.pipe != nil {
			rc.pipe.close()
		}
		if err != nil {
			err = rc.abort(ctx, err)
		} else if werr := rc.w.close(); werr != nil {
			err = fmt.Errorf("transfer: %s: %w", rc.peer, werr)
		}
		if ctx.Err() != nil && err != nil {
			err = fmt.Errorf("transfer: %s: stopped: %w", rc.peer, ctx.Err())
		}
	}()
	if err := rc.readManifest(ctx); err != nil {
		return rc.sum, false, err
	}
	defer rc.finishDirs()
	if err := rc.confirm(); err != nil {
		return rc.sum, true, err
	}
	if err := rc.answerAll(ctx); err != nil {
		return rc.sum, true, err
	}
	rc.step() // the sender has cfg.Hold from here to start sending
	if err := rc.dataPhase(ctx); err != nil {
		return rc.sum, true, err
	}
	return rc.sum, true, rc.w.send(ctx, appendFrame(nil, fDone, nil))
}

// readHello reads the sender's hello, failing as soon as the bytes cannot
// be one (a classic sender's file name, say), and returns how often to
// send keepalives: a quarter of the sender's idle timeout, at most 1 s.
func (rc *recvConn) readHello() (time.Duration, byte, error) {
	rc.conn.SetReadDeadline(time.Now().Add(rc.srv.helloTimeout()))
	b, err := readHello(rc.br)
	if err != nil {
		if len(b) > 0 && b[0] == 0x16 { // a TLS handshake record
			return 0, 0, fmt.Errorf("transfer: %s: a TLS sender, but this receiver runs without --tls", rc.peer)
		}
		if len(b) > 0 {
			return 0, 0, fmt.Errorf("transfer: %s: not a netkit sender (it sent %q; a classic sender needs --classic)", rc.peer, safeText(string(b)))
		}
		return 0, 0, fmt.Errorf("transfer: %s: hello: %w", rc.peer, err)
	}
	idle, auth, err := parseHello(b)
	if err != nil {
		return 0, 0, fmt.Errorf("transfer: %s: %w", rc.peer, err)
	}
	every := time.Second
	if idle > 0 {
		every = max(min(every, idle/4), 10*time.Millisecond)
	}
	return every, auth, nil
}

// readFrame reads the next frame other than a keepalive, giving the
// sender IdleTimeout to send it.
func (rc *recvConn) readFrame() (byte, []byte, error) {
	for {
		rc.readDeadline()
		typ, p, err := readFrame(rc.br, &rc.fbuf)
		if errors.Is(err, ErrProtocol) {
			return 0, nil, fmt.Errorf("transfer: %s: %w", rc.peer, err)
		}
		if err != nil {
			return 0, nil, rc.connErr(err)
		}
		if typ == fAbort {
			reason, _ := decodeReason(p)
			return 0, nil, fmt.Errorf("transfer: %s: sender gave up: %s", rc.peer, reason)
		}
		if typ != fKeepalive {
			rc.step()
			return typ, p, nil
		}
	}
}

// readDeadline gives the sender IdleTimeout for its next bytes, and no
// more than Hold since it last made progress: keepalives alone do not
// keep a connection, its space or its names.
func (rc *recvConn) readDeadline() {
	var d time.Time
	if idle := rc.srv.cfg.IdleTimeout; idle > 0 {
		d = time.Now().Add(idle)
	}
	if h := time.Unix(0, rc.moved.Load()).Add(rc.srv.cfg.Hold); d.IsZero() || h.Before(d) {
		d = h
	}
	rc.conn.SetReadDeadline(d)
}

// stalled reports whether the sender has moved nothing for Hold.
func (rc *recvConn) stalled() bool {
	return time.Since(time.Unix(0, rc.moved.Load())) >= rc.srv.cfg.Hold
}

// lostError is a failed read: the sender went away or stalled. There is
// no one left to tell why, and partial files stay for resume.
type lostError struct{ err error }

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// connErr names a read failure for the user: an idle sender or a lost
// connection.
func (rc *recvConn) connErr(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, ErrTampered):
		return fmt.Errorf("transfer: %s: %w", rc.peer, err) // told to the sender, in a sealed ABORT
	case errors.As(err, &ne) && ne.Timeout() && rc.stalled():
		err = fmt.Errorf("transfer: %s: sender moved no file data for %v (keepalives do not count); dropped, its space and names released (partial files kept for resume): %w", rc.peer, rc.srv.cfg.Hold, err)
	case errors.As(err, &ne) && ne.Timeout():
		err = fmt.Errorf("transfer: %s: sender idle for %v; dropped (partial files kept for resume): %w", rc.peer, rc.srv.cfg.IdleTimeout, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("transfer: %s: connection closed early (partial files kept for resume): %w", rc.peer, err)
	default:
		err = fmt.Errorf("transfer: %s: %w", rc.peer, err)
	}
	return &lostError{err}
}

// readManifest reads the manifest into memory charged to the server's
// budget first (ManifestMem), so that connections together cannot take
// more; a manifest that does not fit now is refused with a reason.
func (rc *recvConn) readManifest(ctx context.Context) error {
	var typ byte
	var n uint32
	var err error
	for {
		rc.readDeadline()
		if typ, n, err = readFrameHeader(rc.br); err != nil {
			if errors.Is(err, ErrProtocol) {
				return fmt.Errorf("transfer: %s: %w", rc.peer, err)
			}
			return rc.connErr(err)
		}
		if typ != fKeepalive {
			break
		}
	}
	if typ != fManifest {
		return fmt.Errorf("transfer: %s: %w: frame type %d before the manifest", rc.peer, ErrProtocol, typ)
	}
	busy := func() error {
		return fmt.Errorf("transfer: %s: receiver busy: a manifest of %s does not fit the memory left for manifests now; try again later or send fewer files at once", rc.peer, spaceString(int64(n)))
	}
	// The most a manifest of this size can cost, before reading it; once
	// the count is read, what it does cost (the rest is given back).
	cost := manifestCost(int64(n))
	if !rc.srv.charge(cost) {
		return busy()
	}
	rc.charged = cost
	p, err := readPayload(rc.br, int(n))
	if err != nil {
		return rc.connErr(err)
	}
	if len(p) >= 4 {
		count := min(int64(binary.BigEndian.Uint32(p)), maxEntries, int64(n)/(entryFixedLen+1))
		actual := payloadCost(int64(n)) + count*perEntryCost
		rc.srv.uncharge(rc.charged - actual)
		rc.charged = actual
	}
	if rc.entries, err = decodeManifestOwned(p); err != nil {
		return fmt.Errorf("transfer: %s: %w", rc.peer, err)
	}
	rc.step()
	rc.files = make([]fileState, len(rc.entries))
	ev := Event{Kind: EventManifest, Peer: rc.peer}
	for _, e := range rc.entries {
		if e.Kind == kindFile {
			ev.Files++
			ev.Bytes += e.Size
		}
	}
	rc.srv.em.emit(ev)
	return nil
}

// confirm asks cfg.Confirm about the offer, if set. The writer's
// keepalives keep the sender waiting meanwhile.
func (rc *recvConn) confirm() error {
	if rc.srv.cfg.Confirm == nil {
		return nil
	}
	o := Offer{Peer: rc.peer, Entries: len(rc.entries)}
	for _, e := range rc.entries {
		if e.Kind == kindFile {
			o.Files++
			o.Bytes += e.Size
		}
		if len(o.Names) < MaxOfferNames {
			o.Names = append(o.Names, OfferedFile{Name: safeText(e.Name), Size: e.Size, Dir: e.Kind == kindDir})
		}
	}
	if !rc.srv.cfg.Confirm(o) {
		return fmt.Errorf("transfer: %s: declined by the receiver", rc.peer)
	}
	rc.step()
	return nil
}

// answerAll decides every entry and sends the answers in order.
func (rc *recvConn) answerAll(ctx context.Context) error {
	conflicts := manifestConflicts(rc.entries)
	avail, err := rc.srv.freeSpace()
	if err != nil {
		return err
	}
	var b []byte
	for i, e := range rc.entries {
		a := rc.decide(ctx, i, e, conflicts[i], avail)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if a.Verdict == vReject {
			rc.sum.Rejected++
			rc.srv.em.emit(Event{Kind: EventReject, Peer: rc.peer, File: safeText(e.Name), Reason: a.Reason})
		}
		b = appendFrame(b[:0], fAnswer, appendAnswer(nil, a))
		if err := rc.w.send(ctx, bytes.Clone(b)); err != nil {
			return err
		}
	}
	return nil
}

// dataPhase handles the sender's decisions and files until END.
func (rc *recvConn) dataPhase(ctx context.Context) error {
	for {
		typ, p, err := rc.readFrame()
		if err != nil {
			return err
		}
		switch typ {
		case fEnd:
			return nil
		case fData:
			i, off, err := decodeDataHdr(p)
			if err == nil {
				err = rc.pending(i, off, true)
			}
			if err != nil {
				return fmt.Errorf("transfer: %s: %w", rc.peer, err)
			}
			if err := rc.receiveFile(ctx, int(i), off); err != nil {
				return err
			}
		case fSkip:
			sk, err := decodeSkip(p)
			if err == nil {
				err = rc.pending(sk.Index, 0, false)
			}
			if err == nil {
				err = rc.skipped(sk)
			}
			if err != nil {
				return fmt.Errorf("transfer: %s: %w", rc.peer, err)
			}
		default:
			return fmt.Errorf("transfer: %s: %w: unexpected frame type %d", rc.peer, ErrProtocol, typ)
		}
	}
}

// pending checks that entry i awaits data or a skip, in manifest order,
// and that a data offset is one the receiver allows.
func (rc *recvConn) pending(i uint32, off int64, data bool) error {
	if int64(i) >= int64(len(rc.files)) || int(i) <= rc.last || rc.files[i].state != stPending {
		return fmt.Errorf("%w: entry %d is not awaiting data", ErrProtocol, i)
	}
	fs := rc.files[i]
	if data && off != 0 && !(fs.verdict == vSend && off == fs.offset) {
		return fmt.Errorf("%w: entry %d: offset %d was not offered", ErrProtocol, i, off)
	}
	if data && fs.verdict == vCheck && !rc.srv.cfg.Overwrite {
		return fmt.Errorf("%w: entry %d: data for a file that may not be replaced", ErrProtocol, i)
	}
	rc.last = int(i)
	rc.files[i].state = stDone
	return nil
}

// skipped records the sender's decision to send no data for an entry.
func (rc *recvConn) skipped(sk skip) error {
	e, fs := rc.entries[sk.Index], rc.files[sk.Index]
	name := e.Name
	switch {
	case sk.Why == skipIdentical && fs.verdict == vCheck:
		rc.sum.Skipped++
		rc.srv.em.emit(Event{Kind: EventSkip, Peer: rc.peer, File: name, Size: e.Size, Reason: "already there (same size and hash)"})
	case sk.Why == skipDiffers && fs.verdict == vCheck:
		rc.sum.Rejected++
		rc.srv.em.emit(Event{Kind: EventReject, Peer: rc.peer, File: name, Reason: reasonExists})
	case sk.Why == skipFailed:
		rc.sum.Failed++
		rc.srv.em.emit(Event{Kind: EventError, Peer: rc.peer, File: name, Reason: "sender: " + sk.Reason})
	default:
		return fmt.Errorf("%w: entry %d: skip %d does not fit the answer", ErrProtocol, sk.Index, sk.Why)
	}
	return nil
}

// abort tells the sender why the connection ends, lets the writer flush,
// then closes our side for writing and reads what is still in flight for
// a moment, so that the sender sees the reason before a reset.
func (rc *recvConn) abort(ctx context.Context, cause error) error {
	if ctx.Err() != nil || errors.As(cause, new(*lostError)) {
		rc.w.close()
		return cause
	}
	reason := strings.TrimPrefix(cause.Error(), "transfer: "+rc.peer+": ")
	rc.w.send(ctx, appendFrame(nil, fAbort, []byte(clipReason(reason))))
	rc.w.close()
	if cw, ok := rc.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		// Drain the socket itself: after a record that failed to open, the
		// sealed reader fails at once, and closing with the sender's bytes
		// unread would send a reset that can overtake the ABORT.
		raw := rc.conn
		if sc, ok := raw.(*sealedConn); ok {
			raw = sc.Conn
		}
		raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, io.LimitReader(raw, 64<<20))
	}
	return cause
}

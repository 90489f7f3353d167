package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The classic protocol: the sender writes the file's base name in one
// write, waits for "ok", streams the bytes and closes; the receiver reads
// the name with one read, answers "ok" and keeps everything until EOF.
// There is no size, no hash and no resume. netkit's receiver answers
// "error: REASON\n" instead of "ok" when it refuses, and writes the same
// line when it has to stop early (a netkit sender prints it).

const (
	classicMaxName  = 255
	classicMode     = 0o644
	classicWaitNote = time.Second // silence before the sender says it waits for "ok"
)

// sendClassic sends one regular file with the classic protocol.
func sendClassic(ctx context.Context, cfg SendConfig) (Summary, error) {
	em := newEmitter(cfg.Events)
	start := time.Now()
	path, name, size, err := classicSource(cfg)
	if err != nil {
		return Summary{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Summary{}, fmt.Errorf("transfer: cannot read %s: %w", cfg.Paths[0], errors.Unwrap(err))
	}
	defer f.Close()
	conn, err := dialReceiver(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	em.emit(Event{Kind: EventConnected, Peer: conn.RemoteAddr().String()})
	em.emit(Event{Kind: EventManifest, Files: 1, Bytes: size})

	s := &sender{cfg: cfg, em: em, conn: conn, localProgress: true}
	if canSendfile {
		s.tcp, _ = conn.(*net.TCPConn)
	}
	var sum Summary
	refused, err := s.classic(f, name, size)
	if ctx.Err() != nil {
		err = fmt.Errorf("transfer: send stopped: %w", ctx.Err())
	}
	switch {
	case refused != "" && err == nil:
		sum.Rejected = 1
		em.emit(Event{Kind: EventReject, File: name, Reason: refused})
	case err == nil:
		sum.Files, sum.Bytes = 1, size
		em.emit(Event{Kind: EventDone, File: name, Size: size})
	case ctx.Err() != nil:
		sum.Failed = 1
		em.emit(Event{Kind: EventError, File: name, Reason: "interrupted (classic mode cannot resume: send the file again)"})
	default:
		sum.Failed = 1
		em.emit(Event{Kind: EventError, File: name, Reason: strings.TrimPrefix(err.Error(), "transfer: ")})
	}
	sum.Elapsed = time.Since(start)
	em.emit(Event{Kind: EventSummary, Files: sum.Files, Bytes: sum.Bytes, Elapsed: sum.Elapsed, Rate: xferRate(sum.Bytes, sum.Elapsed)})
	return sum, err
}

// classicSource checks that cfg names exactly one regular file.
func classicSource(cfg SendConfig) (path, name string, size int64, err error) {
	if len(cfg.Paths) != 1 {
		return "", "", 0, errors.New("transfer: classic mode sends exactly one file")
	}
	path, err = filepath.Abs(cfg.Paths[0])
	if err != nil {
		return "", "", 0, fmt.Errorf("transfer: %w", err)
	}
	fi, err := os.Lstat(path)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if !cfg.Follow {
			return "", "", 0, fmt.Errorf("transfer: %s is a symlink; use --follow to send what it points to", cfg.Paths[0])
		}
		fi, err = os.Stat(path)
	}
	if err != nil {
		return "", "", 0, fmt.Errorf("transfer: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", "", 0, fmt.Errorf("transfer: %s: classic mode sends one regular file", cfg.Paths[0])
	}
	name = filepath.Base(path)
	if why := checkClassicName(name); why != "" {
		return "", "", 0, fmt.Errorf("transfer: %s: %s", name, why)
	}
	return path, name, fi.Size(), nil
}

// classic runs the exchange: name, "ok", bytes, close. refused is the
// reason a netkit receiver gave for not taking the file.
func (s *sender) classic(f *os.File, name string, size int64) (refused string, err error) {
	s.writeDeadline()
	if _, err := s.conn.Write([]byte(name)); err != nil {
		return "", s.writeErr(err)
	}
	// Say what we wait for when the answer does not come at once.
	wait := time.AfterFunc(classicWaitNote, func() {
		s.em.emit(Event{Kind: EventWaiting, Reason: "sent the name " + name + "; waiting for the receiver's ok"})
	})
	reply, err := s.classicReply()
	wait.Stop()
	switch {
	case err != nil:
		return "", err
	case strings.HasPrefix(reply, "error: "):
		return safeText(strings.TrimPrefix(reply, "error: ")), nil
	case reply != "ok":
		return "", fmt.Errorf("transfer: %s: the receiver answered %q instead of \"ok\"", s.cfg.Addr, safeText(reply))
	}
	s.em.emit(Event{Kind: EventStart, File: name, Size: size})
	src := source{entry: entry{Name: name, Size: size}}
	var changed error
	if s.tcp != nil {
		changed, err = s.sendfileBody(f, src, 0, nil)
	} else {
		changed, err = s.copyBody(f, src, 0, nil)
	}
	if err != nil {
		if late, _ := s.classicReply(); strings.HasPrefix(late, "error: ") {
			return "", fmt.Errorf("transfer: receiver: %s", safeText(strings.TrimPrefix(late, "error: ")))
		}
		return "", err
	}
	if changed != nil {
		return "", fmt.Errorf("transfer: %s changed while being sent: %w", name, changed)
	}
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// A receiver that closes tells us it is done; netkit's says why it failed.
	if late, _ := s.classicReply(); strings.HasPrefix(late, "error: ") {
		return "", fmt.Errorf("transfer: receiver: %s", safeText(strings.TrimPrefix(late, "error: ")))
	}
	return "", nil
}

// classicReply reads a short reply (or nothing until EOF), without the
// line ending.
func (s *sender) classicReply() (string, error) {
	timeout := s.cfg.IdleTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	s.conn.SetReadDeadline(time.Now().Add(timeout))
	var b [512]byte
	n := 0
	for n < 2 || (b[0] == 'e' && n < len(b) && b[n-1] != '\n') {
		k, err := s.conn.Read(b[n:])
		n += k
		if err != nil {
			if n > 0 {
				break
			}
			return "", s.readErr(err)
		}
	}
	return strings.TrimRight(string(b[:n]), "\r\n"), nil
}

// classicName is the name a classic sender sent, less one trailing "\n"
// or "\r\n": what `printf 'name\n' | nc host port` sends.
func classicName(b []byte) string {
	name := string(b)
	if t, ok := strings.CutSuffix(name, "\r\n"); ok {
		return t
	}
	name, _ = strings.CutSuffix(name, "\n")
	return name
}

// serveClassic receives one file with the classic protocol. started is
// true once a name arrived.
func (s *server) serveClassic(ctx context.Context, conn net.Conn, peer string) (sum Summary, started bool, err error) {
	conn.SetReadDeadline(time.Now().Add(s.helloTimeout()))
	var b [classicMaxName + 1]byte
	n, err := conn.Read(b[:])
	if n == 0 {
		return sum, false, fmt.Errorf("transfer: %s: no file name: %w", peer, err)
	}
	name := classicName(b[:n])
	s.em.emit(Event{Kind: EventManifest, Peer: peer, Files: 1})
	why := s.classicRefusal(name, n)
	if why == "" {
		owner := &recvConn{peer: peer, cancel: func() {}, done: make(chan struct{})}
		owner.step()
		if other := s.claim(name, owner); other != nil {
			why = "being received from another sender (" + other.peer + ")"
		} else {
			defer s.release(owner, []string{name}, 0)
		}
	}
	if why != "" {
		sum.Rejected = 1
		s.em.emit(Event{Kind: EventReject, Peer: peer, File: safeText(name), Reason: why})
		writeLine(conn, s.cfg.IdleTimeout, "error: "+why)
		return sum, true, nil
	}
	// Exactly "ok": a sender that reads two bytes and closes would leave
	// anything more unread, and its close would then reset the connection.
	conn.SetWriteDeadline(time.Now().Add(s.helloTimeout()))
	if _, err := conn.Write([]byte("ok")); err != nil {
		return sum, true, fmt.Errorf("transfer: %s: %w", peer, err)
	}
	s.em.emit(Event{Kind: EventStart, Peer: peer, File: name})
	sum.Bytes, err = s.receiveClassic(conn, peer, name)
	if err != nil {
		sum.Failed = 1
		return sum, true, err
	}
	sum.Files = 1
	s.em.emit(Event{Kind: EventDone, Peer: peer, File: name, Size: sum.Bytes})
	return sum, true, nil
}

// classicRefusal returns why a classic name cannot be received, or "".
func (s *server) classicRefusal(name string, n int) string {
	if n > classicMaxName {
		return "name longer than 255 bytes"
	}
	if why := checkClassicName(name); why != "" {
		return why
	}
	fi, err := s.root.Lstat(name)
	switch {
	case err == nil && fi.IsDir():
		return "exists as a directory"
	case err == nil && !s.cfg.Overwrite:
		return reasonExists
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "cannot check the existing file: " + err.Error()
	}
	return ""
}

// receiveClassic writes everything until EOF into the partial file and
// publishes it. A lost or idle connection keeps the partial file; too
// much data or a full disk removes it and tells the sender.
func (s *server) receiveClassic(conn net.Conn, peer, name string) (int64, error) {
	f, err := s.openPartial(name, 0)
	if err != nil {
		return 0, fmt.Errorf("transfer: %s: %s: %w", peer, name, err)
	}
	n, err := s.classicBody(conn, f, name)
	if err != nil {
		f.Close()
		var de *diskError
		if errors.As(err, &de) || errors.Is(err, errTooLarge) {
			s.removePartial(name)
			linger(conn, "error: "+err.Error())
		}
		return n, fmt.Errorf("transfer: %s: %w", peer, err)
	}
	e := entry{Kind: kindFile, Name: name, Mode: classicMode, MTime: time.Now().UnixNano(), Size: n}
	if err := s.publish(f, e); err != nil {
		s.removePartial(name)
		linger(conn, "error: "+err.Error())
		return n, fmt.Errorf("transfer: %s: %w", peer, err)
	}
	return n, nil
}

var errTooLarge = errors.New("too large")

// classicBody copies conn to f until EOF: spliced straight into the file
// on plain TCP, through a buffer otherwise.
func (s *server) classicBody(conn net.Conn, f *os.File, name string) (int64, error) {
	limit := s.cfg.MaxSize
	tk := newFileTicker(s.em, conn.RemoteAddr().String(), name, 0)
	var n int64
	var buf []byte
	lr := io.LimitedReader{R: conn}
	for {
		chunk := int64(1 << 20)
		if limit > 0 {
			chunk = min(chunk, limit+1-n)
		}
		if s.cfg.IdleTimeout > 0 {
			conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		var k int64
		var err error
		if _, ok := conn.(*net.TCPConn); ok {
			lr.N = chunk
			k, err = f.ReadFrom(&lr)
		} else {
			if buf == nil {
				buf = make([]byte, 1<<20)
			}
			var m int
			m, err = conn.Read(buf[:chunk])
			if m > 0 {
				if _, werr := f.Write(buf[:m]); werr != nil {
					err = werr
				}
			}
			k = int64(m)
		}
		n += k
		if limit > 0 && n > limit {
			return n, fmt.Errorf("%w: more than --max-size %s", errTooLarge, spaceString(limit))
		}
		if errors.Is(err, io.EOF) || (err == nil && k == 0) {
			return n, nil
		}
		if err != nil {
			return n, classicErr(name, err)
		}
		tk.at(n)
	}
}

// classicErr tells a write failure (disk) from a read failure (network):
// a splice reports both as a write error on the file.
func classicErr(name string, err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s: sender idle; dropped (partial file kept): %w", name, err)
	case isDiskErr(err):
		return &diskError{name: name, err: err}
	}
	return fmt.Errorf("%s: connection lost (partial file kept): %w", name, err)
}

func isDiskErr(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EIO, syscall.EROFS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

func writeLine(conn net.Conn, idle time.Duration, line string) error {
	if idle <= 0 {
		idle = 30 * time.Second
	}
	conn.SetWriteDeadline(time.Now().Add(idle))
	_, err := conn.Write([]byte(line + "\n"))
	return err
}

// linger writes a last line (if any), closes our side for writing and reads what
// is still in flight for a moment, so that the sender sees the line
// before a reset.
func linger(conn net.Conn, line string) {
	if line != "" {
		writeLine(conn, 2*time.Second, line)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 64<<20))
}

//go:build linux

package transfer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// canSplice reports whether receiveSpliced is available: splice(2) is
// Linux only.
const canSplice = true

// canSendfile reports whether the sender's sendfile is available.
const canSendfile = true

// sendChunk is how much one sendfile call may move: the write deadline
// and progress are refreshed between chunks.
const sendChunk = 4 << 20

// sendfile sends f[off, src.Size) with sendfile(2) from one raw-conn
// callback: no allocation per chunk, the write deadline renewed each time
// the socket is full, progress between calls. It returns where it
// stopped: short of the size when the file shrank.
func (s *sender) sendfile(f *os.File, src source, off int64) (int64, error) {
	if s.raw == nil {
		raw, err := s.tcp.SyscallConn()
		if err != nil {
			return off, fmt.Errorf("transfer: %w", err)
		}
		s.raw = raw
	}
	tk := s.ticker(src)
	in := int(f.Fd())
	raw := oneP() // see rawio_linux.go
	pos := off
	var serr error
	s.writeDeadline()
	err := s.raw.Write(func(out uintptr) bool {
		for pos < src.Size {
			n, err := sendfileFD(raw, int(out), in, &pos, int(min(sendChunk, src.Size-pos)))
			switch {
			case err == unix.EAGAIN:
				s.writeDeadline()
				return false // wait until the socket can take more
			case err == unix.EINTR:
				continue
			case err != nil:
				serr = err
				return true
			case n == 0:
				return true // end of file: it shrank
			}
			tk.at(pos)
		}
		return true
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return pos, s.writeErr(err)
	}
	return pos, nil
}

// receiveSpliced is receiveBody for plain TCP: the bytes go from the
// socket into a pipe and from the pipe into the file with splice(2),
// never through user space, and a goroutine hashes the written range a
// step behind, from the page cache (see hashRange).
func (rc *recvConn) receiveSpliced(tcp *net.TCPConn, f *os.File, e entry, off int64, h *hasher) (int64, error) {
	pos := off
	// The frame reader may hold the first bytes already.
	if n := int(min(int64(rc.br.Buffered()), e.Size-pos)); n > 0 {
		b, _ := rc.br.Peek(n)
		if _, err := f.WriteAt(b, pos); err != nil {
			return 0, &diskError{name: e.Name, err: err}
		}
		rc.br.Discard(n)
		pos += int64(n)
	}
	marks := make(chan int64, 16) // written up to; closed when done
	done := make(chan struct{})
	var herr error
	go func() {
		defer close(done)
		from := off
		for to := range marks {
			if herr == nil {
				herr = hashRange(f, from, to, h, rc.buffer(), nil)
			}
			from = to
		}
	}()
	tk := newFileTicker(rc.srv.em, rc.peer, e.Name, e.Size)
	last := pos
	err := rc.splice(tcp, f, e.Name, &pos, e.Size, func() {
		if pos-last >= hashBehind {
			marks <- pos
			last = pos
		}
		rc.at(&tk, pos)
	})
	marks <- pos
	close(marks)
	<-done
	if err == nil && herr != nil {
		err = &diskError{name: e.Name, err: herr}
	}
	return pos - off, err
}

// splicePipe is a connection's pipe for splice(2), 1 MiB when the system
// allows.
type splicePipe struct{ r, w int }

func newSplicePipe() (*splicePipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, chunkSize)
	return &splicePipe{r: fds[0], w: fds[1]}, nil
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// splice moves the socket's bytes into f (the partial file of name) from
// *pos up to end, advancing
// *pos and calling step after each move. It runs in one raw-conn read
// callback (no allocation per chunk) and renews the read deadline each
// time the socket runs dry. A socket error is a lostError, a file error a
// diskError.
func (rc *recvConn) splice(tcp *net.TCPConn, f *os.File, name string, pos *int64, end int64, step func()) error {
	if rc.pipe == nil {
		p, err := newSplicePipe()
		if err != nil {
			return fmt.Errorf("transfer: pipe: %w", err)
		}
		rc.pipe = p
	}
	if rc.raw == nil {
		raw, err := tcp.SyscallConn()
		if err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		rc.raw = raw
	}
	out := int(f.Fd())
	raw := oneP() // see rawio_linux.go
	var rerr, werr error
	rc.readDeadline()
	err := rc.raw.Read(func(sock uintptr) bool {
		for *pos < end {
			n, err := spliceFD(raw, int(sock), nil, rc.pipe.w, nil, int(min(chunkSize, end-*pos)), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			switch {
			case err == unix.EAGAIN:
				rc.readDeadline()
				return false // wait for more from the socket
			case err == unix.EINTR:
				continue
			case err != nil:
				rerr = err
				return true
			case n == 0:
				rerr = io.ErrUnexpectedEOF
				return true
			}
			if werr = drainPipe(raw, rc.pipe.r, out, pos, int64(n)); werr != nil {
				return true
			}
			step()
		}
		return true
	})
	switch {
	case werr != nil:
		return &diskError{name: name, err: werr}
	case rerr != nil:
		return rc.connErr(rerr)
	case err != nil:
		return rc.connErr(err)
	}
	return nil
}

// drainPipe moves n bytes from the pipe into the file at *pos, with raw
// system calls if raw is set.
func drainPipe(raw bool, pipe, out int, pos *int64, n int64) error {
	for n > 0 {
		m, err := spliceFD(raw, pipe, nil, out, pos, int(n), unix.SPLICE_F_MOVE)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return io.ErrShortWrite
		}
		n -= int64(m)
	}
	return nil
}

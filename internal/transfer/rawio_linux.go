//go:build linux && (amd64 || arm64)

package transfer

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls on the data path.
//
// With one P (GOMAXPROCS 1: an end pinned to one core, the way
// bench/compare-transfer.sh --pin simulates two machines), a system call
// that is still running when the runtime's monitor looks twice (20 µs
// apart) loses its P: the monitor hands it to another thread, which finds
// nothing to do and sleeps, and the caller's thread takes the P back on
// return. On the one core that is two or three thread switches per call,
// and reading, writing, sealing-sized calls take 50-90 µs each: a pinned
// sealed receiver made 10,000 involuntary switches per GiB and spent a
// quarter of its CPU on them, the sender 2,500 (docs/benchmarks.md,
// issue 19). A raw system call keeps its P.
//
// Sockets are non-blocking, so a raw read or write never waits in the
// kernel: on EAGAIN the RawConn callback returns false and the runtime
// parks the goroutine on the poller as net.Conn does, deadlines included.
// Regular files can block (a slow disk), and then a raw call holds the P
// for that time, so file calls are raw only with one P, where the P had
// nothing else to run but the timers of this connection.
//
// Only where the offset fits one register (64-bit Linux); elsewhere the
// plain calls of rawio_other.go.

// rawSock reads and writes a TCP connection with raw system calls.
type rawSock struct {
	c      *net.TCPConn
	rc     syscall.RawConn
	readFn func(fd uintptr) bool // r.read, bound once: no allocation per call
	rp     []byte
	rn     int
	rerrno syscall.Errno

	writeFn func(fd uintptr) bool
	wp      []byte
	wn      int
	werrno  syscall.Errno
}

// newRawSock returns c's raw reader and writer, or nil when c is not a
// TCP connection (TLS, a test pipe).
func newRawSock(c net.Conn) *rawSock {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSock{c: tc, rc: rc}
	s.readFn, s.writeFn = s.read, s.write
	return s
}

func (s *rawSock) read(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(s.rp))), uintptr(len(s.rp)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until readable
		}
		s.rn, s.rerrno = int(n), e
		return true
	}
}

// Read is net.Conn's Read, with the same errors.
func (s *rawSock) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rp, s.rn, s.rerrno = p, 0, 0
	err := s.rc.Read(s.readFn)
	s.rp = nil
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case s.rerrno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", s.rerrno))
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

func (s *rawSock) write(fd uintptr) bool {
	for s.wn < len(s.wp) {
		rest := s.wp[s.wn:]
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
		switch e {
		case 0:
			s.wn += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait until writable
		default:
			s.werrno = e
			return true
		}
	}
	return true
}

// Write is net.Conn's Write: it writes all of p or fails.
func (s *rawSock) Write(p []byte) (int, error) {
	s.wp, s.wn, s.werrno = p, 0, 0
	err := s.rc.Write(s.writeFn)
	s.wp = nil
	switch {
	case err != nil:
		return s.wn, s.opError("write", err)
	case s.werrno != 0:
		return s.wn, s.opError("write", os.NewSyscallError("write", s.werrno))
	}
	return s.wn, nil
}

func (s *rawSock) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
}

// rawFile reads and writes a regular file at offsets with raw system
// calls.
type rawFile struct {
	f       *os.File
	rc      syscall.RawConn
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
	p       []byte
	off     int64
	n       int
	errno   syscall.Errno
}

// newRawFile returns f's raw reader and writer, or nil where they would
// not help (more than one P) or cannot be had.
func newRawFile(f *os.File) *rawFile {
	if !oneP() {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawFile{f: f, rc: rc}
	r.readFn, r.writeFn = r.pread, r.pwrite
	return r
}

func (r *rawFile) pread(fd uintptr) bool  { return r.call(fd, unix.SYS_PREAD64) }
func (r *rawFile) pwrite(fd uintptr) bool { return r.call(fd, unix.SYS_PWRITE64) }

// call moves r.p at r.off with pread(2) or pwrite(2) (trap) until all of
// it is moved, a call moves nothing (the end of the file, for a read) or
// one fails.
func (r *rawFile) call(fd, trap uintptr) bool {
	for r.n < len(r.p) {
		rest := r.p[r.n:]
		n, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)), uintptr(r.off+int64(r.n)), 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			r.errno = e
			return true
		case n == 0:
			return true
		}
		r.n += int(n)
	}
	return true
}

// ReadAt is os.File's ReadAt: short only at the end of the file (io.EOF)
// or on an error.
func (r *rawFile) ReadAt(p []byte, off int64) (int, error) {
	return r.do(false, p, off)
}

// WriteAt is os.File's WriteAt.
func (r *rawFile) WriteAt(p []byte, off int64) (int, error) {
	return r.do(true, p, off)
}

func (r *rawFile) do(write bool, p []byte, off int64) (int, error) {
	op := "read"
	if write {
		op = "write"
	}
	if off < 0 {
		return 0, &os.PathError{Op: op, Path: r.f.Name(), Err: os.ErrInvalid}
	}
	r.p, r.off, r.n, r.errno = p, off, 0, 0
	var err error
	if write {
		err = r.rc.Write(r.writeFn)
	} else {
		err = r.rc.Read(r.readFn)
	}
	r.p = nil
	switch {
	case err != nil:
		return r.n, &os.PathError{Op: op, Path: r.f.Name(), Err: err}
	case r.errno != 0:
		return r.n, &os.PathError{Op: op, Path: r.f.Name(), Err: r.errno}
	case r.n < len(p) && !write:
		return r.n, io.EOF
	case r.n < len(p):
		return r.n, &os.PathError{Op: op, Path: r.f.Name(), Err: io.ErrShortWrite}
	}
	return r.n, nil
}

// sendfileFD is sendfile(2), raw when raw is set (a socket for out; the
// caller sets raw only with one P, since reading in from a slow disk can
// block).
func sendfileFD(raw bool, out, in int, off *int64, count int) (int, error) {
	call := unix.Syscall6
	if raw {
		call = unix.RawSyscall6
	}
	n, _, e := call(unix.SYS_SENDFILE, uintptr(out), uintptr(in), uintptr(unsafe.Pointer(off)), uintptr(count), 0, 0)
	if e != 0 {
		return int(n), e
	}
	return int(n), nil
}

// spliceFD is splice(2), raw when raw is set (only with one P: a splice
// into a file can block on the disk).
func spliceFD(raw bool, rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error) {
	call := unix.Syscall6
	if raw {
		call = unix.RawSyscall6
	}
	m, _, e := call(unix.SYS_SPLICE, uintptr(rfd), uintptr(unsafe.Pointer(roff)), uintptr(wfd), uintptr(unsafe.Pointer(woff)), uintptr(n), uintptr(flags))
	if e != 0 {
		return int(m), e
	}
	return int(m), nil
}

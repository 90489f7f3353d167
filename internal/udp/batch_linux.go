package udp

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched reports whether this system reads and writes datagrams in
// batches (recvmmsg and sendmmsg).
const Batched = true

// mmsghdr is the kernel's struct mmsghdr: one message of recvmmsg(2) or
// sendmmsg(2) and the byte count the call sets. Go pads it as C does on
// every Linux architecture (to 64 bytes on 64-bit, 32 on 32-bit).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddr holds a peer's address as the kernel gives and takes it: a
// sockaddr_in or sockaddr_in6 in the first n bytes.
type sockaddr struct {
	b [unix.SizeofSockaddrInet6]byte
	n uint32
}

// equal reports whether a and b are the same address.
func (a *sockaddr) equal(b *sockaddr) bool { return a.n == b.n && a.b == b.b }

// addrPort decodes a into an address and port; IPv4-mapped addresses are
// unmapped, and an IPv6 scope becomes the zone (its interface index).
func (a *sockaddr) addrPort() netip.AddrPort {
	port := binary.BigEndian.Uint16(a.b[2:4])
	switch binary.NativeEndian.Uint16(a.b[:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a.b[4:8])), port)
	case unix.AF_INET6:
		addr := netip.AddrFrom16([16]byte(a.b[8:24])).Unmap()
		if scope := binary.NativeEndian.Uint32(a.b[24:28]); scope != 0 && addr.Is6() {
			addr = addr.WithZone(strconv.FormatUint(uint64(scope), 10))
		}
		return netip.AddrPortFrom(addr, port)
	}
	return netip.AddrPort{}
}

// batchConn reads up to its capacity of datagrams with one recvmmsg and
// sends what was queued with one sendmmsg, through its own message
// arrays: no allocation per datagram, and peers stay in the kernel's
// form from the read to the reply. Where the kernel offers UDP GSO,
// datagrams of one size to one peer go as one message that the kernel
// cuts into datagrams (a UDP_SEGMENT control message): an echo server
// answering a client's burst sends it through the stack once. It belongs
// to one goroutine for reading and one for writing: the read and write
// sides share nothing.
type batchConn struct {
	rc syscall.RawConn
	v6 bool // an IPv6 socket: peers are sockaddr_in6

	// Read side: message i reads into bufs[i], its peer into inName[i].
	in     []mmsghdr
	inIov  []unix.Iovec
	inName []sockaddr
	bufs   [][]byte

	// Write side: messages [0, nout) are queued; message k carries the
	// datagrams outIov[k] (of outSize[k] bytes each when more than one)
	// to outName[k] (n 0: the connected peer).
	out     []mmsghdr
	nout    int
	outIov  [][]unix.Iovec
	outName []sockaddr
	outSize []int
	oob     [][]byte // UDP_SEGMENT control messages, made on first use
	gso     bool     // queue joins datagrams into GSO messages
}

// newBatchConn reads and writes conn in batches of up to n datagrams of at
// most size bytes each: it holds n*size bytes of buffers.
func newBatchConn(conn *net.UDPConn, n, size int) *batchConn {
	rc, err := conn.SyscallConn()
	if err != nil {
		panic("udp: a UDPConn without a file descriptor: " + err.Error())
	}
	b := &batchConn{rc: rc, in: make([]mmsghdr, n), inIov: make([]unix.Iovec, n), inName: make([]sockaddr, n),
		bufs: make([][]byte, n), out: make([]mmsghdr, n), outIov: make([][]unix.Iovec, n),
		outName: make([]sockaddr, n), outSize: make([]int, n), oob: make([][]byte, n), gso: gsoOffered(conn)}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		b.v6 = true
	}
	for i := range b.in {
		b.bufs[i] = make([]byte, size)
		if size > 0 {
			b.inIov[i].Base = &b.bufs[i][0]
		}
		b.inIov[i].SetLen(size)
		h := &b.in[i].hdr
		h.Iov = &b.inIov[i]
		h.SetIovlen(1)
		h.Name = &b.inName[i].b[0]
	}
	runs := 1
	if b.gso {
		runs = maxGSOSegments
	}
	for k := range b.outIov {
		b.outIov[k] = make([]unix.Iovec, 0, runs)
	}
	return b
}

// gsoOffered reports whether conn's kernel knows UDP_SEGMENT.
func gsoOffered(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		_, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return gerr == nil
}

// recv reads what is queued on fd, up to the batch size, without waiting.
func (b *batchConn) recv(fd uintptr) (int, syscall.Errno) {
	for i := range b.in {
		b.in[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].hdr.Flags = 0
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), uintptr(len(b.in)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		for i := range int(r) {
			b.inName[i].n = b.in[i].hdr.Namelen
		}
		return int(r), 0
	}
}

// ReadLoop reads batches until a read fails or f returns false, calling
// f with the number of datagrams of each (Data, Peer, Truncated and
// QueueReply hold for them until f returns); it returns the error that
// ended it, nil when f did. f is how a caller stops a loop that a steady
// stream keeps busy: closing the socket wakes a waiting read, but the
// loop looks at the socket again only when it waits.
//
// A batch smaller than the batch size emptied the socket's queue, so
// ReadLoop then waits for the next datagram at once instead of asking
// again to hear EAGAIN: the edge-triggered poller wakes it for anything
// that arrives after the read. That saves a system call per wake when
// datagrams come apart.
func (b *batchConn) ReadLoop(f func(n int) bool) error {
	var errno syscall.Errno
	err := b.rc.Read(func(fd uintptr) bool {
		for {
			var n int
			n, errno = b.recv(fd)
			switch {
			case errno == unix.EAGAIN:
				return false
			case errno != 0:
				return true
			}
			if !f(n) {
				return true
			}
			if n < len(b.in) {
				return false
			}
		}
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("recvmmsg", errno)
	}
	return err
}

// Data is datagram i of the batch being handled.
func (b *batchConn) Data(i int) []byte { return b.bufs[i][:b.in[i].n] }

// Peer is the sender of datagram i of the batch.
func (b *batchConn) Peer(i int) netip.AddrPort { return b.inName[i].addrPort() }

// Truncated reports whether datagram i of the batch was cut short.
func (b *batchConn) Truncated(i int) bool { return b.in[i].hdr.Flags&unix.MSG_TRUNC != 0 }

// QueueReply queues datagram i of the batch back to its sender.
func (b *batchConn) QueueReply(i int) { b.queueTo(b.Data(i), &b.inName[i]) }

// Queue queues p to the connected peer; p must not change until Flush.
func (b *batchConn) Queue(p []byte) { b.queueTo(p, nil) }

// queueTo queues p to the peer to (nil: the connected one). With GSO, p
// joins the last message queued to the same peer when it holds datagrams
// of p's size and has room; datagrams to one peer keep their order, and
// the peers of a batch may interleave.
func (b *batchConn) queueTo(p []byte, to *sockaddr) {
	if b.gso && len(p) > 0 {
		for k := b.nout - 1; k >= 0; k-- {
			if !b.samePeer(k, to) {
				continue
			}
			run := len(b.outIov[k])
			if run < maxGSOSegments && b.outSize[k] == len(p) && (run+1)*len(p) <= maxUDPPayload {
				b.outIov[k] = appendIov(b.outIov[k], p)
				return
			}
			break
		}
	}
	if b.nout == len(b.out) {
		b.grow()
	}
	k := b.nout
	b.nout++
	b.outIov[k] = appendIov(b.outIov[k][:0], p)
	b.outSize[k] = len(p)
	if to != nil {
		b.outName[k] = *to
	} else {
		b.outName[k].n = 0
	}
}

// samePeer reports whether queued message k goes to to.
func (b *batchConn) samePeer(k int, to *sockaddr) bool {
	if to == nil {
		return b.outName[k].n == 0
	}
	return b.outName[k].equal(to)
}

// grow doubles the write side, for a caller that queues more than the
// batch size between two Flushes.
func (b *batchConn) grow() {
	n := max(1, 2*len(b.out))
	b.out = append(b.out, make([]mmsghdr, n-len(b.out))...)
	b.outName = append(b.outName, make([]sockaddr, n-len(b.outName))...)
	b.outSize = append(b.outSize, make([]int, n-len(b.outSize))...)
	b.oob = append(b.oob, make([][]byte, n-len(b.oob))...)
	for len(b.outIov) < n {
		b.outIov = append(b.outIov, nil)
	}
}

// appendIov appends an iovec for p to iov.
func appendIov(iov []unix.Iovec, p []byte) []unix.Iovec {
	var v unix.Iovec
	if len(p) > 0 {
		v.Base = &p[0]
	}
	v.SetLen(len(p))
	return append(iov, v)
}

// maxUDPPayload is the largest UDP payload over IPv4.
const maxUDPPayload = 65507

// segmentOOB returns message k's control message asking the kernel to cut
// it into datagrams of size bytes.
func (b *batchConn) segmentOOB(k, size int) []byte {
	if b.oob[k] == nil {
		b.oob[k] = make([]byte, unix.CmsgSpace(2))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b.oob[k][0]))
		h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
	}
	binary.NativeEndian.PutUint16(b.oob[k][unix.CmsgLen(0):], uint16(size))
	return b.oob[k]
}

// header fills message k's header for sendmmsg: its datagrams as one
// message when segment, else the first alone.
func (b *batchConn) header(k int, segment bool) {
	h := &b.out[k].hdr
	*h = unix.Msghdr{}
	iov := b.outIov[k]
	h.Iov = &iov[0]
	h.SetIovlen(1)
	if segment && len(iov) > 1 {
		h.SetIovlen(len(iov))
		oob := b.segmentOOB(k, b.outSize[k])
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
	if b.outName[k].n > 0 {
		h.Name = &b.outName[k].b[0]
		h.Namelen = b.outName[k].n
	}
}

// Flush sends the queued datagrams and empties the queue. A datagram the
// kernel refuses is counted in failed and skipped; err is the last such
// error. A GSO message the kernel refuses (a device that cannot cut it,
// for one) turns GSO off and goes again as single datagrams.
func (b *batchConn) Flush() (sent, failed int, err error) {
	for k := range b.nout {
		b.header(k, true)
	}
	for k := 0; k < b.nout; {
		n, werr := b.sendmmsg(b.out[k:b.nout])
		if n == 0 && werr == nil {
			werr = io.ErrNoProgress // the kernel never does this; never loop on it
		}
		for _, iov := range b.outIov[k : k+n] {
			sent += len(iov)
		}
		k += n
		if werr == nil || k == b.nout {
			continue
		}
		if len(b.outIov[k]) > 1 && !isRefused(werr) {
			b.gso = false
			s, f, e := b.sendEach(k)
			sent, failed = sent+s, failed+f
			if e != nil {
				err = e
			}
		} else {
			failed += len(b.outIov[k])
			err = werr
		}
		k++
	}
	b.nout = 0
	return sent, failed, err
}

// sendEach sends the datagrams of message k one by one.
func (b *batchConn) sendEach(k int) (sent, failed int, err error) {
	iov := b.outIov[k]
	for i := range iov {
		b.outIov[k] = iov[i : i+1]
		b.header(k, false)
		if _, e := b.sendmmsg(b.out[k : k+1]); e != nil {
			failed++
			err = e
		} else {
			sent++
		}
	}
	b.outIov[k] = iov
	return sent, failed, err
}

// sendmmsg sends ms, waiting while the socket's buffer is full, and
// returns how many messages went; err is why the next one did not.
func (b *batchConn) sendmmsg(ms []mmsghdr) (int, error) {
	var n int
	var errno syscall.Errno
	err := b.rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&ms[0])), uintptr(len(ms)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			case 0:
				n = int(r)
			default:
				errno = e
			}
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if n == 0 && errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", errno)
	}
	return n, nil
}

// maxGSOSegments is the most datagrams one UDP_SEGMENT send may carry
// (UDP_MAX_SEGMENTS in the kernel).
const maxGSOSegments = 64

// setGSO asks the kernel to cut every send on conn larger than size bytes
// into datagrams of size bytes (UDP_SEGMENT, Linux 4.18 and later): a
// batch of equal datagrams then costs one trip through the stack instead
// of one per datagram. It returns how many datagrams one send may carry,
// or 0 where the socket refuses the option.
func setGSO(conn *net.UDPConn, size int) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size)
	}); err != nil || serr != nil {
		return 0
	}
	return min(maxGSOSegments, 65507/size)
}

// clearGSO turns UDP_SEGMENT off again, after a send it made fail.
func clearGSO(conn *net.UDPConn) {
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, 0) })
	}
}

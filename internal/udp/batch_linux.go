package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Batched reports whether this system reads and writes datagrams in
// batches (recvmmsg and sendmmsg).
const Batched = true

// batchIO is what ipv4.PacketConn and ipv6.PacketConn share: recvmmsg and
// sendmmsg on Linux.
type batchIO interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchConn reads up to its capacity of datagrams with one recvmmsg and
// sends what was queued with one sendmmsg. Where the kernel offers UDP GSO,
// a run of queued datagrams of one size to one peer goes as one message
// that the kernel cuts into datagrams (a UDP_SEGMENT control message): an
// echo server answering a client's burst then sends it through the stack
// once. It belongs to one goroutine for reading and one for writing: the
// read and write sides share nothing.
type batchConn struct {
	io   batchIO
	in   []ipv4.Message // read side: one buffer each, Buffers[0]
	bufs [][]byte       // the read buffers, kept to reset in[i].Buffers
	out  []ipv4.Message // write side: queued messages, one datagram each or a GSO run
	outB [][][]byte     // out's Buffers slices, reused
	oob  [][]byte       // out's UDP_SEGMENT control messages, reused
	gso  bool           // queue joins runs into GSO messages
}

// newBatchConn reads and writes conn in batches of up to n datagrams of at
// most size bytes each: it holds n*size bytes of buffers.
func newBatchConn(conn *net.UDPConn, n, size int) *batchConn {
	var io batchIO = ipv4.NewPacketConn(conn)
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		io = ipv6.NewPacketConn(conn)
	}
	b := &batchConn{io: io, in: make([]ipv4.Message, n), bufs: make([][]byte, n), out: make([]ipv4.Message, 0, n),
		outB: make([][][]byte, n), oob: make([][]byte, n), gso: gsoOffered(conn)}
	for i := range b.in {
		b.bufs[i] = make([]byte, size)
		b.in[i].Buffers = [][]byte{b.bufs[i]}
	}
	runs := 1
	if b.gso {
		runs = maxGSOSegments
	}
	for i := range b.outB {
		b.outB[i] = make([][]byte, 0, runs)
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

// Read waits for at least one datagram and returns how many it read,
// up to the batch size.
func (b *batchConn) Read() (int, error) {
	for i := range b.in {
		b.in[i].Buffers[0] = b.bufs[i]
	}
	n, err := b.io.ReadBatch(b.in, 0)
	return max(n, 0), err
}

// Data is datagram i of the last Read.
func (b *batchConn) Data(i int) []byte { return b.bufs[i][:b.in[i].N] }

// Peer is the sender of datagram i of the last Read.
func (b *batchConn) Peer(i int) netip.AddrPort {
	a, ok := b.in[i].Addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Truncated reports whether datagram i of the last Read was cut short.
func (b *batchConn) Truncated(i int) bool { return b.in[i].Flags&unix.MSG_TRUNC != 0 }

// QueueReply queues datagram i of the last Read back to its sender.
func (b *batchConn) QueueReply(i int) { b.queue(b.Data(i), b.in[i].Addr) }

// Queue queues p to the connected peer; p must not change until Flush.
func (b *batchConn) Queue(p []byte) { b.queue(p, nil) }

func (b *batchConn) queue(p []byte, to net.Addr) {
	if k := len(b.out); b.gso && k > 0 && len(p) > 0 {
		m := &b.out[k-1]
		run := len(m.Buffers)
		// A GSO message is datagrams of one size to one peer.
		if run < maxGSOSegments && len(m.Buffers[0]) == len(p) && (run+1)*len(p) <= maxUDPPayload && sameAddr(m.Addr, to) {
			if run == 1 {
				m.OOB = b.segmentOOB(k-1, len(p))
			}
			m.Buffers = append(m.Buffers, p)
			b.outB[k-1] = m.Buffers
			return
		}
	}
	k := len(b.out)
	b.outB[k] = append(b.outB[k][:0], p)
	b.out = append(b.out, ipv4.Message{Buffers: b.outB[k], Addr: to})
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

// sameAddr reports whether a and b are the same peer; nil is the
// connected one.
func sameAddr(a, b net.Addr) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, ok1 := a.(*net.UDPAddr)
	y, ok2 := b.(*net.UDPAddr)
	return ok1 && ok2 && x.Port == y.Port && x.Zone == y.Zone && x.IP.Equal(y.IP)
}

// Flush sends the queued datagrams and empties the queue. A datagram the
// kernel refuses is counted in failed and skipped; err is the last such
// error. A GSO message the kernel refuses (a device that cannot cut it,
// for one) turns GSO off and goes again as single datagrams.
func (b *batchConn) Flush() (sent, failed int, err error) {
	q := b.out
	for len(q) > 0 {
		n, werr := b.io.WriteBatch(q, 0)
		n = max(n, 0) // -1 with an error
		for _, m := range q[:n] {
			sent += len(m.Buffers)
		}
		q = q[n:]
		if werr == nil || len(q) == 0 {
			continue
		}
		if run := q[0]; len(run.Buffers) > 1 && !isRefused(werr) {
			b.gso = false
			single := make([]ipv4.Message, 0, len(run.Buffers)+len(q)-1)
			for _, p := range run.Buffers {
				single = append(single, ipv4.Message{Buffers: [][]byte{p}, Addr: run.Addr})
			}
			q = append(single, q[1:]...)
			continue
		}
		failed += len(q[0].Buffers)
		err = werr
		q = q[1:]
	}
	for i := range b.out {
		b.out[i].OOB = nil
	}
	b.out = b.out[:0]
	return sent, failed, err
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

package udp

import (
	"net"
	"net/netip"

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
// sends what was queued with one sendmmsg. It belongs to one goroutine
// for reading and one for writing: the read and write sides share
// nothing.
type batchConn struct {
	io   batchIO
	in   []ipv4.Message // read side: one buffer each, Buffers[0]
	bufs [][]byte       // the read buffers, kept to reset in[i].Buffers
	out  []ipv4.Message // write side: queued datagrams
	outB [][1][]byte    // out's Buffers slices, reused
}

// newBatchConn reads and writes conn in batches of up to n datagrams of at
// most size bytes each: it holds n*size bytes of buffers.
func newBatchConn(conn *net.UDPConn, n, size int) *batchConn {
	var io batchIO = ipv4.NewPacketConn(conn)
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		io = ipv6.NewPacketConn(conn)
	}
	b := &batchConn{io: io, in: make([]ipv4.Message, n), bufs: make([][]byte, n), out: make([]ipv4.Message, 0, n), outB: make([][1][]byte, n)}
	for i := range b.in {
		b.bufs[i] = make([]byte, size)
		b.in[i].Buffers = [][]byte{b.bufs[i]}
	}
	return b
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
	k := len(b.out)
	b.outB[k][0] = p
	b.out = append(b.out, ipv4.Message{Buffers: b.outB[k][:], Addr: to})
}

// Flush sends the queued datagrams and empties the queue. A datagram the
// kernel refuses is counted in failed and skipped; err is the last such
// error.
func (b *batchConn) Flush() (sent, failed int, err error) {
	q := b.out
	for len(q) > 0 {
		n, werr := b.io.WriteBatch(q, 0)
		n = max(n, 0) // -1 with an error
		sent += n
		q = q[n:]
		if werr != nil && len(q) > 0 {
			failed++
			err = werr
			q = q[1:]
		}
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

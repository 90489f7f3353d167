//go:build !linux

package udp

import (
	"net"
	"net/netip"
)

// Batched reports whether this system reads and writes datagrams in
// batches (recvmmsg and sendmmsg). Elsewhere than Linux it does not:
// each datagram is one system call.
const Batched = false

// batchConn has batchConn's methods on Linux with one datagram per read
// and one system call per queued datagram.
type batchConn struct {
	conn      *net.UDPConn
	buf       []byte
	n         int
	peer      netip.AddrPort
	truncated bool
	out       [][]byte
	to        []netip.AddrPort // zero: the connected peer
}

// newBatchConn reads conn one datagram of at most size bytes at a time;
// Flush sends up to n queued datagrams.
func newBatchConn(conn *net.UDPConn, n, size int) *batchConn {
	return &batchConn{conn: conn, buf: make([]byte, size), out: make([][]byte, 0, n), to: make([]netip.AddrPort, 0, n)}
}

// Read waits for one datagram.
func (b *batchConn) Read() (int, error) {
	n, _, flags, peer, err := b.conn.ReadMsgUDPAddrPort(b.buf, nil)
	if err != nil {
		return 0, err
	}
	b.n, b.peer, b.truncated = n, netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()), flags&msgTrunc != 0
	return 1, nil
}

// ReadLoop reads datagrams until a read fails or f returns false,
// calling f with 1 for each (Data, Peer, Truncated and QueueReply hold
// for it until f returns); it returns the error that ended it, nil when f
// did.
func (b *batchConn) ReadLoop(f func(n int) bool) error {
	for {
		n, err := b.Read()
		if err != nil {
			return err
		}
		if !f(n) {
			return nil
		}
	}
}

// Data is the datagram of the last Read.
func (b *batchConn) Data(int) []byte { return b.buf[:b.n] }

// Peer is the sender of the datagram of the last Read.
func (b *batchConn) Peer(int) netip.AddrPort { return b.peer }

// Truncated reports whether the datagram of the last Read was cut short.
func (b *batchConn) Truncated(int) bool { return b.truncated }

// QueueReply queues the datagram of the last Read back to its sender.
func (b *batchConn) QueueReply(i int) {
	b.out = append(b.out, b.Data(i))
	b.to = append(b.to, b.peer)
}

// Queue queues p to the connected peer; p must not change until Flush.
func (b *batchConn) Queue(p []byte) {
	b.out = append(b.out, p)
	b.to = append(b.to, netip.AddrPort{})
}

// Flush sends the queued datagrams one by one and empties the queue.
func (b *batchConn) Flush() (sent, failed int, err error) {
	for i, p := range b.out {
		var werr error
		if b.to[i].IsValid() {
			_, werr = b.conn.WriteToUDPAddrPort(p, b.to[i])
		} else {
			_, werr = b.conn.Write(p)
		}
		if werr != nil {
			failed++
			err = werr
			continue
		}
		sent++
	}
	b.out, b.to = b.out[:0], b.to[:0]
	return sent, failed, err
}

// setGSO is Linux only: elsewhere every datagram is its own send.
func setGSO(*net.UDPConn, int) int { return 0 }

// clearGSO is Linux only.
func clearGSO(*net.UDPConn) {}

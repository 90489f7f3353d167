package udp

import (
	"net"
	"testing"
	"time"
)

// TestFlushSkipsFailures queues a datagram the kernel refuses (an IPv6
// destination on an IPv4 socket) between two good ones: Flush must count
// one failure and still send the others, in order.
func TestFlushSkipsFailures(t *testing.T) {
	srv := listen(t, "127.0.0.1")
	conn := listen(t, "127.0.0.1")
	bc := newBatchConn(conn, 4, 0)
	to := srv.LocalAddr()
	bc.queue([]byte("one"), to)
	bc.queue([]byte("bad"), &net.UDPAddr{IP: net.IPv6loopback, Port: 9})
	bc.queue([]byte("two"), to)
	sent, failed, err := bc.Flush()
	if sent != 2 || failed != 1 || err == nil {
		t.Fatalf("Flush = %d sent, %d failed, err %v; want 2, 1 and an error", sent, failed, err)
	}
	buf := make([]byte, 16)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"one", "two"} {
		n, err := srv.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	if len(bc.out) != 0 {
		t.Fatalf("queue holds %d after Flush, want 0", len(bc.out))
	}
}

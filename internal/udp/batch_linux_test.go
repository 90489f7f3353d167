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

// TestSenderGSO sends runs of bench datagrams through sender: with UDP
// GSO, one send of 10 must arrive as 10 datagrams of the size asked, in
// order, each with its sequence number; a GSO send the kernel refuses
// (here larger than any datagram) must turn GSO off and still deliver
// every datagram through the batch path.
func TestSenderGSO(t *testing.T) {
	tests := []struct {
		name    string
		size, n int
		force   int // datagrams per GSO send forced on the sender; 0 keeps setGSO's
		wantGSO bool
	}{
		{"gso", 64, 10, 0, true},
		{"gso, full run", 100, maxGSOSegments, 0, true},
		{"refused, falls back", 2000, 40, 40, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := listen(t, "127.0.0.1")
			conn := dialUDP(t, srv.LocalAddr().String())
			s := newSender(conn, tc.size)
			if s.gso == 0 {
				t.Skip("the kernel refuses UDP_SEGMENT")
			}
			if tc.force > 0 {
				s.gso, s.run = tc.force, make([]byte, tc.force*tc.size)
			}
			sent, failed, err := s.send(100, int64(tc.n), time.Millisecond)
			if sent != tc.n || failed != 0 || err != nil {
				t.Fatalf("send = %d sent, %d failed, %v; want %d, 0, nil", sent, failed, err, tc.n)
			}
			if got := s.gso > 0; got != tc.wantGSO {
				t.Fatalf("GSO on after the send: %v, want %v", got, tc.wantGSO)
			}
			buf := make([]byte, MaxDatagram)
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := range tc.n {
				n, err := srv.Read(buf)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				seq, rtt, ok := parseEcho(buf[:n], 1000, time.Second)
				if n != tc.size || !ok || seq != int64(100+i) || rtt != time.Second-time.Millisecond {
					t.Fatalf("datagram %d: %d bytes, seq %d, rtt %v, ok %v; want %d bytes, seq %d", i, n, seq, rtt, ok, tc.size, 100+i)
				}
			}
		})
	}
}

package udp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	if bc.nout != 0 {
		t.Fatalf("queue holds %d after Flush, want 0", bc.nout)
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

// TestFlushGSORuns queues replies as an echo server does: runs of equal
// datagrams to one peer go as GSO messages, a different size or peer
// starts a new message; every datagram must arrive whole and in order.
func TestFlushGSORuns(t *testing.T) {
	a, b := listen(t, "127.0.0.1"), listen(t, "127.0.0.1")
	conn := listen(t, "127.0.0.1")
	bc := newBatchConn(conn, 16, 0)
	if !bc.gso {
		t.Skip("the kernel does not offer UDP GSO")
	}
	type dgram struct {
		to   *net.UDPConn
		data string
	}
	tests := []struct {
		name     string
		plan     []dgram
		messages int
	}{
		{"runs", []dgram{{a, "a1"}, {a, "a2"}, {a, "a3"}, {a, "a-4"}, {b, "b1"}, {b, "b2"}, {a, "a5"}, {a, "a6"}}, 4}, // a1-a3, a-4, b1-b2, a5-a6
		{"interleaved peers", []dgram{{a, "a1"}, {b, "b1"}, {a, "a2"}, {b, "b2"}, {a, "a3"}}, 2},                      // a1-a3, b1-b2
		{"a size between", []dgram{{a, "a1"}, {b, "b1"}, {a, "a-2"}, {a, "a3"}}, 4},                                   // a1, b1, a-2, a3: a3 must not go before a-2
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range tc.plan {
				bc.queue([]byte(d.data), d.to.LocalAddr())
			}
			if got := bc.nout; got != tc.messages {
				t.Fatalf("%d messages queued, want %d", got, tc.messages)
			}
			sent, failed, err := bc.Flush()
			if sent != len(tc.plan) || failed != 0 || err != nil {
				t.Fatalf("Flush = %d sent, %d failed, %v; want %d, 0, nil", sent, failed, err, len(tc.plan))
			}
			buf := make([]byte, 64)
			for _, d := range tc.plan {
				d.to.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := d.to.Read(buf)
				if err != nil || string(buf[:n]) != d.data {
					t.Fatalf("read %q, %v; want %q", buf[:n], err, d.data)
				}
			}
		})
	}
}

// TestSockaddr encodes addresses as the kernel takes them and decodes them
// back, for IPv4 and IPv6 sockets.
func TestSockaddr(t *testing.T) {
	tests := []struct {
		in     string
		v6     bool
		family uint16
		out    string
	}{
		{"127.0.0.1:9", false, unix.AF_INET, "127.0.0.1:9"},
		{"127.0.0.1:9", true, unix.AF_INET6, "127.0.0.1:9"}, // IPv4-mapped on the wire, unmapped back
		{"[::1]:65535", true, unix.AF_INET6, "[::1]:65535"},
		{"[fe80::1%7]:53", true, unix.AF_INET6, "[fe80::1%7]:53"},
		{"[::1]:9", false, unix.AF_INET6, "[::1]:9"}, // the kernel refuses it on an IPv4 socket
	}
	for _, tc := range tests {
		var sa sockaddr
		sa.setAddrPort(netip.MustParseAddrPort(tc.in), tc.v6)
		if f := binary.NativeEndian.Uint16(sa.b[:2]); f != tc.family {
			t.Errorf("%s (v6 socket %v): family %d, want %d", tc.in, tc.v6, f, tc.family)
		}
		if got := sa.addrPort().String(); got != tc.out {
			t.Errorf("%s (v6 socket %v): decoded %s, want %s", tc.in, tc.v6, got, tc.out)
		}
	}
}

// TestServeDualStack echoes on an IPv6 socket bound to [::] to an IPv4
// client: the peer comes as an IPv4-mapped address, counts as the IPv4
// peer, and the echo reaches it.
func TestServeDualStack(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skipf("no dual-stack UDP socket here: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Stats, 1)
	go func() {
		st, _ := Serve(ctx, conn, ServeConfig{Mode: ModeEcho})
		done <- st
	}()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	c := dialUDP(t, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	for _, msg := range []string{"one", "two"} {
		if got := roundTrip(t, c, []byte(msg)); string(got) != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	cancel()
	st := <-done
	if st.Datagrams != 2 || st.Peers != 1 {
		t.Fatalf("stats %+v, want 2 datagrams from 1 peer", st)
	}
}

// TestFlushGSORefused queues a run the kernel refuses as a whole (IPv6
// destination on an IPv4 socket): GSO turns off, each datagram of the run
// is tried alone and counted failed, and the next datagram still goes.
func TestFlushGSORefused(t *testing.T) {
	srv := listen(t, "127.0.0.1")
	conn := listen(t, "127.0.0.1")
	bc := newBatchConn(conn, 8, 0)
	if !bc.gso {
		t.Skip("the kernel does not offer UDP GSO")
	}
	bad := &net.UDPAddr{IP: net.IPv6loopback, Port: 9}
	for range 3 {
		bc.queue([]byte("bad"), bad)
	}
	bc.queue([]byte("good"), srv.LocalAddr())
	sent, failed, err := bc.Flush()
	if sent != 1 || failed != 3 || err == nil || bc.gso {
		t.Fatalf("Flush = %d sent, %d failed, %v, GSO still on %v; want 1, 3, an error, off", sent, failed, err, bc.gso)
	}
	buf := make([]byte, 16)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "good" {
		t.Fatalf("read %q, %v; want good", buf[:n], err)
	}
}

// queue queues p to the peer to (nil: the connected one), as a test
// names peers.
func (b *batchConn) queue(p []byte, to net.Addr) {
	a, ok := to.(*net.UDPAddr)
	if !ok {
		b.queueTo(p, nil)
		return
	}
	var sa sockaddr
	sa.setAddrPort(a.AddrPort(), b.v6)
	b.queueTo(p, &sa)
}

// setAddrPort encodes ap for a socket of the family v6 says: an IPv4
// address on an IPv6 socket is IPv4-mapped; an IPv6 address on an IPv4
// socket stays a sockaddr_in6, which the kernel refuses.
func (a *sockaddr) setAddrPort(ap netip.AddrPort, v6 bool) {
	a.b = [unix.SizeofSockaddrInet6]byte{}
	addr := ap.Addr()
	binary.BigEndian.PutUint16(a.b[2:4], ap.Port())
	if !v6 && addr.Unmap().Is4() {
		binary.NativeEndian.PutUint16(a.b[:2], unix.AF_INET)
		*(*[4]byte)(a.b[4:8]) = addr.Unmap().As4()
		a.n = unix.SizeofSockaddrInet4
		return
	}
	binary.NativeEndian.PutUint16(a.b[:2], unix.AF_INET6)
	*(*[16]byte)(a.b[8:24]) = addr.As16()
	if z, err := strconv.ParseUint(addr.Zone(), 10, 32); err == nil {
		binary.NativeEndian.PutUint32(a.b[24:28], uint32(z))
	} else if addr.Zone() != "" {
		if ifi, err := net.InterfaceByName(addr.Zone()); err == nil {
			binary.NativeEndian.PutUint32(a.b[24:28], uint32(ifi.Index))
		}
	}
	a.n = unix.SizeofSockaddrInet6
}

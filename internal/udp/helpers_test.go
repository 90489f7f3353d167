package udp

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func parseAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// dialUDP returns a connected UDP socket to addr, closed when the test ends.
func dialUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// roundTrip sends msg on c and returns the reply, read under a deadline.
func roundTrip(t *testing.T, c *net.UDPConn, msg []byte) []byte {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, MaxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return buf[:n]
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// relayFaults is what a relay does wrong, deterministically, counting the
// datagrams from the client from 0.
type relayFaults struct {
	dropEvery int // drop datagram i when i%dropEvery == dropEvery-1
	dupEvery  int // send datagram i twice when i%dupEvery == 0
	swapEvery int // hold datagram i when i%swapEvery == 0 and send it after the next
}

// startRelay forwards datagrams from one client to target and the replies
// back, with faults, until the test ends. It returns its address.
func startRelay(t *testing.T, target string, f relayFaults) string {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := net.Dial("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	back := bc.(*net.UDPConn)
	_ = front.SetReadBuffer(4 << 20)
	_ = back.SetReadBuffer(4 << 20)
	var (
		mu     sync.Mutex
		client netip.AddrPort // guarded by mu
		wg     sync.WaitGroup
	)
	wg.Go(func() { // client -> target
		buf := make([]byte, MaxDatagram)
		var held []byte
		for i := 0; ; i++ {
			n, from, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			client = from
			mu.Unlock()
			if f.dropEvery > 0 && i%f.dropEvery == f.dropEvery-1 {
				continue
			}
			copies := 1
			if f.dupEvery > 0 && i%f.dupEvery == 0 {
				copies = 2
			}
			msg := bytes.Repeat(buf[:n], copies) // copies of a datagram, back to back
			if f.swapEvery > 0 && i%f.swapEvery == 0 {
				held = msg
				continue
			}
			for _, m := range [][]byte{msg, held} {
				for c := 0; c < len(m); c += n {
					back.Write(m[c : c+n])
				}
			}
			held = nil
		}
	})
	wg.Go(func() { // target -> client
		buf := make([]byte, MaxDatagram)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			to := client
			mu.Unlock()
			front.WriteToUDPAddrPort(buf[:n], to)
		}
	})
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return front.LocalAddr().String()
}

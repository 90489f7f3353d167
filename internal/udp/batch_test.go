package udp

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestServeBursts has several peers send bursts without waiting, so that
// the server reads several datagrams per system call where it batches, and
// checks that every echo goes back to its own sender intact.
func TestServeBursts(t *testing.T) {
	const peers, burst = 4, 200
	addr, stop, _ := serve(t, "127.0.0.1", ModeEcho)
	sent := make([]map[string]bool, peers) // per peer, echoes still due
	clients := make([]*net.UDPConn, peers)
	for p := range peers {
		clients[p] = dialUDP(t, addr)
		_ = clients[p].SetReadBuffer(socketBuffer)
		sent[p] = make(map[string]bool)
	}
	for i := range burst {
		for p, c := range clients {
			msg := fmt.Sprintf("peer %d datagram %d", p, i)
			sent[p][msg] = true
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, MaxDatagram)
	for p, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range burst {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("peer %d: %d echoes missing: %v", p, len(sent[p]), err)
			}
			if !sent[p][string(buf[:n])] {
				t.Fatalf("peer %d got %q, which it did not send or got twice", p, buf[:n])
			}
			delete(sent[p], string(buf[:n]))
		}
	}
	st := stop()
	if st.Datagrams != peers*burst || st.Peers != peers || st.Errors != 0 {
		t.Fatalf("stats = %+v, want %d datagrams from %d peers", st, peers*burst, peers)
	}
}

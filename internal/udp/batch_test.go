package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
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

// TestReadLoopStops fills a socket with more datagrams than one batch
// holds and has f stop after the first batch: ReadLoop must return nil at
// once, without waiting for the socket to empty or for another datagram.
func TestReadLoopStops(t *testing.T) {
	srv := listen(t, "127.0.0.1")
	_ = srv.SetReadBuffer(socketBuffer)
	c := dialUDP(t, srv.LocalAddr().String())
	const n = 200
	for i := range n {
		if _, err := c.Write([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	bc := newBatchConn(srv, 8, 64)
	calls, got := 0, 0
	err := bc.ReadLoop(func(k int) bool {
		calls++
		got += k
		return false
	})
	if err != nil || calls != 1 || got == 0 || got > 8 {
		t.Fatalf("ReadLoop = %v after %d calls, %d datagrams; want nil after 1 call of 1-8", err, calls, got)
	}
}

// TestReadLoopWakes reads one datagram, then sends the next only once the
// loop has handled the first: the loop, waiting on the poller after a
// short batch, must wake for it. Closing the socket ends a waiting loop
// with net.ErrClosed.
func TestReadLoopWakes(t *testing.T) {
	srv := listen(t, "127.0.0.1")
	c := dialUDP(t, srv.LocalAddr().String())
	bc := newBatchConn(srv, 8, 64)
	handled := make(chan string, 3)
	errc := make(chan error, 1)
	go func() {
		errc <- bc.ReadLoop(func(k int) bool {
			for i := range k {
				handled <- string(bc.Data(i))
			}
			return true
		})
	}()
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := <-handled; got != msg {
			t.Fatalf("handled %q, want %q", got, msg)
		}
	}
	srv.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadLoop after Close = %v, want net.ErrClosed", err)
	}
}

// slowWriter takes a millisecond per write, like a slow terminal, and
// closes first at its first write.
type slowWriter struct {
	first chan struct{}
	once  sync.Once
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.first) })
	time.Sleep(time.Millisecond)
	return len(p), nil
}

// TestServeStopsUnderFlood cancels a print server whose output is slower
// than its input, so that every read finds a full batch: Serve must still
// see the cancel after the batch in hand and return.
func TestServeStopsUnderFlood(t *testing.T) {
	conn := listen(t, "127.0.0.1")
	_ = conn.SetReadBuffer(socketBuffer)
	c := dialUDP(t, conn.LocalAddr().String())
	for i := range 2000 { // 2,000 ms of output queued
		if _, err := c.Write([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &slowWriter{first: make(chan struct{})}
	done := make(chan Stats, 1)
	go func() {
		st, _ := Serve(ctx, conn, ServeConfig{Mode: ModePrint, Out: out})
		done <- st
	}()
	<-out.first // Serve is printing its first batch
	cancel()
	select {
	case st := <-done:
		// The cancel came while the first batch was printed: nothing after it.
		if st.Datagrams == 0 || st.Datagrams > int64(serveBatch) {
			t.Fatalf("stats %+v: want the first batch only (1 to %d datagrams)", st, serveBatch)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return within 20 s of its cancel")
	}
}

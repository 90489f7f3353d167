package wsloop

import (
	"bytes"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestReadingPeerIsNotTimedOut: a peer that answers no ping but keeps
// reading a backlog is alive (its pong would be queued behind the data):
// it is not dropped by the dead-peer check while its TCP acknowledges more
// and more of what is sent. Issue 13: a fast sender must not cost a
// reading subscriber its connection.
func TestReadingPeerIsNotTimedOut(t *testing.T) {
	cfg := defaultConfig()
	cfg.PingInterval, cfg.PongTimeout = 50*time.Millisecond, 50*time.Millisecond
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		small := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
			return nil
		}}
		c := tl.dialVia(t, "/", small)
		const objects = 12000 // 12 MB, more than the kernel buffers hold, read at about 6 MB/s: many dead-peer windows
		obj := bytes.Repeat([]byte("r"), 1000)
		done := make(chan struct{})
		go func() { // the sender: keeps the connection's queue busy, slowed by its congestion
			defer close(done)
			for range objects {
				if c.srv.enqueue(obj) == Congested {
					select {
					case <-c.srv.drains:
					case <-c.srv.closed:
						return
					}
				}
			}
		}()
		for got := 0; got < objects; {
			op, p, err := c.readFrame()
			if err != nil {
				t.Fatalf("read after %d of %d objects: %v (dropped while reading)", got, objects, err)
			}
			if op == opText {
				if len(p) != len(obj) {
					t.Fatalf("object %d has %d bytes, want %d", got, len(p), len(obj))
				}
				got++
				if got%64 == 0 {
					time.Sleep(10 * time.Millisecond) // a slow reader, never a pong
				}
			}
		}
		<-done
		// Once it stops reading and nothing is in flight it is a dead peer.
		c.srv.waitClosed(t)
	})
}

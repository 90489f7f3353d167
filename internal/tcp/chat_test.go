package tcp

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// joinChat connects to a chat server and reads up to its welcome, so the
// server has registered it. rcvbuf, if > 0, shrinks the socket's receive
// buffer before it connects.
func joinChat(t *testing.T, addr string, rcvbuf int) (*net.TCPConn, *lineReader) {
	t.Helper()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := newLineReader(c)
	if _, err := r.until(10*time.Second, func(l string) bool { return strings.HasPrefix(l, "*** welcome, you are ") }); err != nil {
		t.Fatalf("waiting for the welcome: %v", err)
	}
	return c.(*net.TCPConn), r
}

func TestChatRelayNickEscape(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr := start(t, host, Config{Mode: ModeChat})
			a, ar := joinChat(t, addr, 0)
			b, br := joinChat(t, addr, 0)
			aName := a.LocalAddr().String()
			bName := b.LocalAddr().String()
			expect := func(r *lineReader, want string) {
				t.Helper()
				if _, err := r.until(5*time.Second, func(l string) bool { return l == want }); err != nil {
					t.Fatalf("waiting for %q: %v", want, err)
				}
			}
			expect(ar, "*** "+bName+" joined")
			fmt.Fprint(a, "hi \x1b[31mthere\r\n")
			expect(br, "<"+aName+`> hi \x1b[31mthere`)
			fmt.Fprint(b, "/nick bob\n")
			expect(br, "*** you are now bob")
			expect(ar, "*** "+bName+" is now known as bob")
			fmt.Fprint(b, "hello\n")
			expect(ar, "<bob> hello")
			b.Close()
			expect(ar, "*** bob left")
		})
	}
}

// TestChatSlowClient runs 50 clients, one of which never reads: the others
// get every line, and the stuck one is dropped instead of holding them up.
func TestChatSlowClient(t *testing.T) {
	const (
		clients = 50
		rounds  = 40
		perRnd  = 10
	)
	// Small socket buffers, so that the stuck client fills them quickly; a
	// queue of 128 still holds the burst of 48 join notices that every early
	// client gets while the others connect, so only the stuck one overflows.
	// The others keep up, as the sender waits for them each round.
	addr := start(t, "127.0.0.1", Config{Mode: ModeChat, ChatQueue: 128, SendBuffer: 4096})
	sender, senderR := joinChat(t, addr, 0)
	stuck, _ := joinChat(t, addr, 4096)
	stuckName := stuck.LocalAddr().String()
	leftLine := "*** " + stuckName + " left (dropped: too slow)"

	got := make(chan struct{}, clients*rounds*perRnd) // a token per line received
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	readers := []*lineReader{senderR}
	for range clients - 2 {
		_, r := joinChat(t, addr, 0)
		readers = append(readers, r)
	}
	for i, r := range readers {
		wg.Go(func() {
			lines, sawLeft := 0, i == 0 // the sender gets no lines of its own
			_, err := r.until(30*time.Second, func(l string) bool {
				switch {
				case strings.HasPrefix(l, "<") && strings.Contains(l, "> line "):
					lines++
					got <- struct{}{}
				case l == leftLine:
					sawLeft = true
				}
				return sawLeft && (i == 0 || lines == rounds*perRnd)
			})
			errs <- err
		})
	}
	pad := strings.Repeat("x", 1000)
	for rnd := range rounds {
		for i := range perRnd {
			fmt.Fprintf(sender, "line %d %s\n", rnd*perRnd+i, pad)
		}
		for range (clients - 2) * perRnd { // every reader but the sender, and not stuck
			select {
			case <-got:
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: the readers stopped getting lines", rnd)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a reader: %v (a client other than the stuck one was dropped, or the stuck one was not)", err)
		}
	}
}

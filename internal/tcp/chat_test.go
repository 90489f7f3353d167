package tcp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// joinChat connects to a chat server and reads up to its welcome, so the
// server has registered it. rcvbuf, if > 0, shrinks the socket's receive
// buffer before it connects; paced makes the returned reader a slow but
// steady one.
func joinChat(t testing.TB, addr string, rcvbuf int, paced bool) (*net.TCPConn, *lineReader) {
	t.Helper()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = setRcvbuf(fd, rcvbuf)
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
	if paced {
		r = newLineReader(pacedConn{c})
	}
	if _, err := r.until(10*time.Second, func(l string) bool { return strings.HasPrefix(l, "*** welcome, you are ") }); err != nil {
		t.Fatalf("waiting for the welcome: %v", err)
	}
	return c.(*net.TCPConn), r
}

func TestChatRelayNickEscape(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr := start(t, host, Config{Mode: ModeChat})
			a, ar := joinChat(t, addr, 0, false)
			b, br := joinChat(t, addr, 0, false)
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

// pacedConn is a reader that keeps reading, but slowly: at most 4 KiB a
// read and a pause after each. The pause paces the reader; no test waits
// on it.
type pacedConn struct{ net.Conn }

func (p pacedConn) Read(b []byte) (int, error) {
	if len(b) > 4096 {
		b = b[:4096]
	}
	n, err := p.Conn.Read(b)
	time.Sleep(200 * time.Microsecond)
	return n, err
}

// TestChatFlowControl has one client paste 4 MB of lines to slow but
// steady readers, with or without one more client that never reads. Every
// reader gets every line in order and none is dropped: the sender is slowed
// to what they take. The stuck client alone is dropped, for not reading
// (not for overflowing its queue: the sender was held back), and the
// sender is still there at the end.
func TestChatFlowControl(t *testing.T) {
	const (
		readers = 8
		lines   = 4000
	)
	pad := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name  string
		stuck bool
		stall time.Duration // long enough that a reader that reads is never dropped, even on a busy machine
	}{
		{name: "steady readers", stall: DefaultChatStallTimeout},
		{name: "one stuck reader", stuck: true, stall: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := start(t, "127.0.0.1", Config{
				Mode:             ModeChat,
				ChatSoftLimit:    16 << 10,
				ChatStallTimeout: tc.stall,
				SendBuffer:       4096, // so that a stuck client's queue fills at once
			})
			sender, senderR := joinChat(t, addr, 0, false)
			fmt.Fprint(sender, "/nick sender\n")
			if _, err := senderR.until(10*time.Second, func(l string) bool { return l == "*** you are now sender" }); err != nil {
				t.Fatalf("waiting for the new name: %v", err)
			}
			leftLine := ""
			if tc.stuck {
				stuck, _ := joinChat(t, addr, 4096, false)
				leftLine = fmt.Sprintf("*** %s left (dropped: too slow, not reading for %v)", stuck.LocalAddr(), tc.stall)
			}
			var rs []*lineReader
			for range readers {
				_, r := joinChat(t, addr, 4096, true)
				rs = append(rs, r)
			}

			errs := make(chan error, readers+1)
			var wg sync.WaitGroup
			for _, r := range rs {
				wg.Go(func() { errs <- readPaste(r, lines, leftLine) })
			}
			var paste strings.Builder
			for i := range lines {
				fmt.Fprintf(&paste, "line %05d %s\n", i, pad)
			}
			wg.Go(func() {
				if _, err := io.WriteString(sender, paste.String()); err != nil {
					errs <- fmt.Errorf("sender: %w", err)
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}

			// The sender was slowed, not dropped: it is still in the room,
			// and the stuck client is not.
			fmt.Fprint(sender, "/who\n")
			who, err := senderR.until(10*time.Second, func(l string) bool { return strings.HasPrefix(l, "*** ") && strings.Contains(l, " in the room: ") })
			if err != nil {
				t.Fatalf("waiting for the answer to /who: %v", err)
			}
			if want := fmt.Sprintf("*** %d in the room: ", readers+1); !strings.HasPrefix(who, want) || !strings.Contains(who, "sender (you)") {
				t.Errorf("/who = %q, want %q... with sender (you)", who, want)
			}
		})
	}
}

// readPaste reads the sender's lines until it has all n, in order, and,
// if leftLine is not empty, that line too.
func readPaste(r *lineReader, n int, leftLine string) error {
	got, sawLeft := 0, leftLine == ""
	_, err := r.until(2*time.Minute, func(l string) bool {
		switch {
		case strings.HasPrefix(l, "<sender> line "):
			if want := fmt.Sprintf("<sender> line %05d ", got); !strings.HasPrefix(l, want) {
				got = -1 << 30 // out of order: never reaches n
			}
			got++
		case l == leftLine:
			sawLeft = true
		case strings.Contains(l, " left (dropped"):
			got = -1 << 30
		}
		return got == n && sawLeft
	})
	if err != nil {
		return fmt.Errorf("a reader got %d of %d lines (saw the stuck one leave: %v): %w", max(got, 0), n, sawLeft, err)
	}
	return nil
}

func TestChatHelpWho(t *testing.T) {
	addr := start(t, "127.0.0.1", Config{Mode: ModeChat})
	a, ar := joinChat(t, addr, 0, false)
	b, br := joinChat(t, addr, 0, false)
	expect := func(r *lineReader, want string) {
		t.Helper()
		if _, err := r.until(5*time.Second, func(l string) bool { return l == want }); err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
	}
	fmt.Fprint(b, "/nick bob\n")
	expect(ar, "*** "+b.LocalAddr().String()+" is now known as bob")
	fmt.Fprint(a, "/help\n")
	expect(ar, "*** /nick NAME  change your name (no spaces, < or >)")
	expect(ar, "*** /who        list who is in the room")
	expect(ar, "*** /help       show these commands")
	fmt.Fprint(a, "/who\n")
	expect(ar, "*** 2 in the room: "+a.LocalAddr().String()+" (you), bob")
	fmt.Fprint(a, "/nick\n")
	expect(ar, "*** /nick NAME: want a name without spaces, < or >")
	// Commands are answered to the asker only: b sees the next line a
	// sends, and nothing of /help or /who before it.
	fmt.Fprint(a, "done\n")
	line, err := br.until(5*time.Second, func(l string) bool { return !strings.HasPrefix(l, "*** you are now") })
	if err != nil {
		t.Fatal(err)
	}
	if want := "<" + a.LocalAddr().String() + "> done"; line != want {
		t.Errorf("b got %q, want %q (commands must not be broadcast)", line, want)
	}
}

// TestChatHardLimit has 16 clients send a 15 KiB line each, one after
// the other, to a client that never reads. Each sender stops after its
// line, waiting for the stuck client's queue, but together they pass its
// hard limit: it is dropped at once, without waiting for the stall
// timeout. Every other client reads each line before the next is sent, so
// that no queue but the stuck one's holds more than one line.
func TestChatHardLimit(t *testing.T) {
	const senders = 16
	addr := start(t, "127.0.0.1", Config{
		Mode:          ModeChat,
		ChatSoftLimit: 1 << 10,
		ChatHardLimit: 64 << 10,
		SendBuffer:    4096,
	})
	stuck, _ := joinChat(t, addr, 4096, false)
	leftLine := fmt.Sprintf("*** %s left (dropped: too slow, queue over 64KiB)", stuck.LocalAddr())
	_, watcher := joinChat(t, addr, 0, false)
	var conns []net.Conn
	var readers []*lineReader
	for range senders {
		c, r := joinChat(t, addr, 0, false)
		conns = append(conns, c)
		readers = append(readers, r)
	}
	// Each sender reads the others' lines, a token each on got, until its
	// connection closes at the end of the test.
	got := make(chan struct{}, senders*senders)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i, r := range readers {
		t.Cleanup(func() { conns[i].Close() })
		wg.Go(func() {
			r.until(time.Hour, func(l string) bool {
				if strings.HasPrefix(l, "<") {
					got <- struct{}{}
				}
				return false
			})
		})
	}
	line := strings.Repeat("y", 15<<10) + "\n"
	sawLeft := false
	for _, c := range conns {
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
		from := "<" + c.LocalAddr().String() + "> yyy"
		if _, err := watcher.until(time.Minute, func(l string) bool {
			sawLeft = sawLeft || l == leftLine
			return strings.HasPrefix(l, from)
		}); err != nil {
			t.Fatalf("waiting for the line of %s: %v", c.LocalAddr(), err)
		}
		for range senders - 1 {
			select {
			case <-got:
			case <-time.After(time.Minute):
				t.Fatalf("the senders stopped getting the line of %s", c.LocalAddr())
			}
		}
	}
	if !sawLeft {
		if _, err := watcher.until(time.Minute, func(l string) bool { return l == leftLine }); err != nil {
			t.Fatalf("waiting for %q: %v", leftLine, err)
		}
	}
}

// BenchmarkChatPaste pastes 1,000 lines of 1 KiB per iteration to 8
// clients reading as fast as they can, and waits until each has every
// line: the relay's throughput with flow control. Bytes are the paste's.
func BenchmarkChatPaste(b *testing.B) {
	const (
		readers = 8
		lines   = 1000
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { NewServer(Config{Mode: ModeChat}).Serve(ctx, ln) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	addr := ln.Addr().String()

	sender, senderR := joinChat(b, addr, 0, false)
	fmt.Fprint(sender, "/nick s\n")
	if _, err := senderR.until(10*time.Second, func(l string) bool { return l == "*** you are now s" }); err != nil {
		b.Fatal(err)
	}
	got := make(chan int, readers)
	for range readers {
		c, r := joinChat(b, addr, 0, false)
		c.SetReadDeadline(time.Time{})
		wg.Go(func() {
			n := 0
			for {
				line, err := r.br.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.HasPrefix(line, []byte("<s> ")) {
					if n++; n == lines {
						got <- n
						n = 0
					}
				}
			}
		})
		b.Cleanup(func() { c.Close() })
	}
	var paste bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&paste, "%04d %s\n", i, strings.Repeat("x", 1018))
	}
	b.SetBytes(int64(paste.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sender.Write(paste.Bytes()); err != nil {
			b.Fatal(err)
		}
		for range readers {
			<-got
		}
	}
}

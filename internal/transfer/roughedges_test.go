package transfer

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClassicTrailingNewline: printf 'name\n' | nc works; one "\n" or
// "\r\n" is dropped from the name.
func TestClassicTrailingNewline(t *testing.T) {
	dst := t.TempDir()
	r := startReceiver(t, RecvConfig{Dir: dst, Classic: true})
	for i, name := range []string{"unix.txt\n", "dos.txt\r\n"} {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte(name))
		var ok [2]byte
		if _, err := io.ReadFull(conn, ok[:]); err != nil || string(ok[:]) != "ok" {
			t.Fatalf("%q: reply %q, %v; want ok", name, ok, err)
		}
		conn.Write([]byte("data"))
		conn.Close()
		r.connEnded(t, i+1)
		want := strings.TrimRight(name, "\r\n")
		if got, err := os.ReadFile(filepath.Join(dst, want)); err != nil || string(got) != "data" {
			t.Errorf("%s: %q, %v", want, got, err)
		}
	}
}

// TestClassicWaitsForOk: a classic sender whose receiver says nothing
// says what it waits for.
func TestClassicWaitsForOk(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	path := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())
	log := newEventLog()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, SendConfig{Addr: ln.Addr().String(), Paths: []string{path}, Classic: true, Events: log.add})
		done <- err
	}()
	ev := log.wait(t, 10*time.Second, EventWaiting, 1, nil)
	if !strings.Contains(ev.Reason, "waiting for the receiver's ok") {
		t.Errorf("waiting event %q", ev.Reason)
	}
	cancel()
	<-done
	(<-accepted).Close()
}

// TestInterruptedSendReportsBytes: a send stopped midway reports the
// bytes the receiver confirmed, not 0, and its progress came from the
// receiver.
func TestInterruptedSendReportsBytes(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f.bin")
	writeFile(t, path, randomBytes(5, 8<<20), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst})
	// Forward the first 3 MiB, then hold the rest back.
	relay := startRelay(t, r.addr, func(p []byte, off int64) ([]byte, bool) {
		if off >= 3<<20 {
			return nil, false
		}
		return p[:min(int64(len(p)), 3<<20-off)], false
	})
	log := newEventLog()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Summary, 1)
	go func() {
		sum, _ := Send(ctx, SendConfig{Addr: relay.addr, Paths: []string{path}, Code: testCode, Events: log.add})
		done <- sum
	}()
	log.wait(t, 10*time.Second, EventProgress, 1, func(e Event) bool { return e.Done > 0 })
	cancel()
	sum := <-done
	if sum.Bytes <= 0 || sum.Bytes > 3<<20 {
		t.Errorf("summary bytes %d after an interrupted send, want what the receiver confirmed (0 < n <= 3 MiB)", sum.Bytes)
	}
	ev := log.wait(t, time.Second, EventSummary, 1, nil)
	if ev.Bytes != sum.Bytes {
		t.Errorf("summary event bytes %d, want %d", ev.Bytes, sum.Bytes)
	}
}

// TestUserErrors: what a new user sees when the receiver is not there, a
// path is missing, or a file exists.
func TestUserErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, path, []byte("new"), 0o644, time.Now())

	_, err, _ = send2(t, closed, SendConfig{Paths: []string{path}})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to "+closed+": connection refused; is netkit recv running there") {
		t.Errorf("send to nobody: %v", err)
	}
	_, err, _ = send2(t, closed, SendConfig{Paths: []string{path + ".missing"}})
	if err == nil || strings.Contains(err.Error(), "lstat") || !strings.Contains(err.Error(), "cannot send "+path+".missing: no such file or directory") {
		t.Errorf("send of a missing path: %v", err)
	}

	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "f.txt"), []byte("old"), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst})
	_, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	rej := log.all(EventReject)
	if len(rej) != 1 || !strings.Contains(rej[0].Reason, "needs --overwrite on the receiving side (netkit recv --overwrite)") {
		t.Errorf("sender's rejection %+v, want it to say who must do what", rej)
	}
}

// TestListeningEvent: the first event says where files go and the
// addresses a sender can use.
func TestListeningEvent(t *testing.T) {
	dst := t.TempDir()
	r := startReceiver(t, RecvConfig{Dir: dst})
	ev := r.log.wait(t, time.Second, EventListening, 1, nil)
	if ev.Dir != dst || ev.Code != testCode || len(ev.Addrs) != 1 || ev.Addrs[0] != r.addr {
		t.Errorf("listening event %+v, want dir %s, the code, and %s", ev, dst, r.addr)
	}
}

// TestConfirm: the receiver's Confirm sees the offer after the code; a
// no ends the transfer with a reason the sender shows, a yes goes on.
func TestConfirm(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "f.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())
	for _, yes := range []bool{false, true} {
		dst := t.TempDir()
		offers := make(chan Offer, 1)
		r := startReceiver(t, RecvConfig{Dir: dst, Confirm: func(o Offer) bool { offers <- o; return yes }})
		sum, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}})
		o := <-offers
		if o.Files != 1 || o.Bytes != 1 || len(o.Names) != 1 || o.Names[0].Name != "f.txt" {
			t.Errorf("offer %+v", o)
		}
		switch {
		case !yes && (err == nil || !strings.Contains(err.Error(), "declined by the receiver")):
			t.Errorf("declined: %v, want the receiver's reason", err)
		case yes && (err != nil || sum.Verified != 1):
			t.Errorf("accepted: %+v, %v", sum, err)
		}
	}
}

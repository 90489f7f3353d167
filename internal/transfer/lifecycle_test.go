package transfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReceiveStopsGoroutines cancels Receive while one connection is
// silent, one is stalled in the middle of a file and one has finished:
// Receive returns, and every goroutine it started is gone.
func TestReceiveStopsGoroutines(t *testing.T) {
	checkGoroutines(t)
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f.txt")
	writeFile(t, path, []byte("done"), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst})
	if _, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}}); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s := dialRaw(t, r.addr)
	s.manifest([]entry{{Kind: kindFile, Name: "stalled.bin", Mode: 0o644, Size: 10 << 20}})
	s.frame(fData, appendDataHdr(nil, 0, 0))
	s.write(randomBytes(1, 100_000))
	r.log.wait(t, 5*time.Second, EventStart, 2, nil)

	if err := r.stop(); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	// The stalled file keeps its partial for resume.
	if _, err := os.Stat(filepath.Join(dst, partialDirName, "stalled.bin.part")); err != nil {
		t.Errorf("partial file after the stop: %v", err)
	}
}

// TestReceiveOnce returns after the first transfer, closing the listener.
func TestReceiveOnce(t *testing.T) {
	checkGoroutines(t)
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f.txt")
	writeFile(t, path, []byte("once"), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst, Once: true})
	// A connection that is not a transfer does not count.
	if c, err := net.Dial("tcp", r.addr); err == nil {
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.Close()
	}
	if _, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}}); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(5 * time.Second); err != nil {
		t.Fatalf("Receive with Once: %v", err)
	}
	if c, err := net.Dial("tcp", r.addr); err == nil {
		c.Close()
		t.Errorf("the listener still accepts after Once")
	}
}

// TestConcurrentSenders: several senders at once all arrive; a name
// being received is refused to a second sender meanwhile.
func TestConcurrentSenders(t *testing.T) {
	checkGoroutines(t)
	src, dst := t.TempDir(), t.TempDir()
	r := startReceiver(t, RecvConfig{Dir: dst})

	first := dialRaw(t, r.addr)
	e := entry{Kind: kindFile, Name: "shared.bin", Mode: 0o644, Size: 10}
	if a := first.manifest([]entry{e}); a[0].Verdict != vSend {
		t.Fatalf("first claim: %+v", a[0])
	}
	second := dialRaw(t, r.addr)
	if a := second.manifest([]entry{e}); a[0].Verdict != vReject || !strings.HasPrefix(a[0].Reason, "being received from another sender") {
		t.Errorf("second claim: %+v, want rejected as being received", a[0])
	}

	const n = 4
	errs := make(chan error, n)
	for i := range n {
		dir := filepath.Join(src, "s"+string(rune('a'+i)))
		writeFile(t, filepath.Join(dir, "data.bin"), randomBytes(uint64(i), 1<<20+i), 0o644, time.Now())
		go func() {
			sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{dir}})
			if err == nil && sum.Verified != 1 {
				err = fmt.Errorf("summary %+v; events: %s", sum, log.dump())
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("send: %v", err)
		}
	}
	r.connEnded(t, n)
	compareTreesIn(t, src, dst, []string{"sa", "sb", "sc", "sd"})
}

func compareTreesIn(t *testing.T, a, b string, names []string) {
	t.Helper()
	for _, n := range names {
		compareTrees(t, filepath.Join(a, n), filepath.Join(b, n))
	}
}

// TestWrongProtocolPeers: a classic sender at a netkit receiver, and a
// netkit sender at a classic receiver, both get a clear error.
func TestWrongProtocolPeers(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "f.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())

	netkit := startReceiver(t, RecvConfig{Dir: t.TempDir()})
	_, err, _ := send2(t, netkit.addr, SendConfig{Paths: []string{path}, Classic: true, IdleTimeout: 2 * time.Second})
	if err == nil {
		t.Errorf("classic send to a netkit receiver succeeded")
	}
	ev := netkit.log.wait(t, 5*time.Second, EventError, 1, nil)
	if !strings.Contains(ev.Reason, "not a netkit sender") || !strings.Contains(ev.Reason, "--classic") {
		t.Errorf("receiver's error %q, want it to name the classic protocol", ev.Reason)
	}

	classic := startReceiver(t, RecvConfig{Dir: t.TempDir(), Classic: true})
	_, err, _ = send2(t, classic.addr, SendConfig{Paths: []string{path}})
	if err == nil || !strings.Contains(err.Error(), "not a netkit receiver") || !strings.Contains(err.Error(), "--classic") {
		t.Errorf("netkit send to a classic receiver: %v, want it to name the classic protocol", err)
	}
}

// TestSendCancel stops a send from its context: Send returns promptly
// with the context's error.
func TestSendCancel(t *testing.T) {
	checkGoroutines(t)
	r := startReceiver(t, RecvConfig{Dir: t.TempDir()})
	s := t.TempDir()
	path := filepath.Join(s, "f.bin")
	writeFile(t, path, randomBytes(1, 1<<20), 0o644, time.Now())
	// A relay that forwards only the first bytes holds the transfer open.
	relay := startRelay(t, r.addr, func(p []byte, off int64) ([]byte, bool) {
		if off > 4096 {
			return nil, false
		}
		return p, false
	})
	ctx, cancel := context.WithCancel(context.Background())
	log := newEventLog()
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, SendConfig{Addr: relay.addr, Paths: []string{path}, Code: testCode, Events: log.add})
		done <- err
	}()
	log.wait(t, 5*time.Second, EventManifest, 1, nil)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
}

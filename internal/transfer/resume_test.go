package transfer

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResumeAfterCut cuts the connection after a random number of the
// sender's bytes (fixed seeds), then sends again straight to the
// receiver: the second send resumes from the partial file, moves fewer
// bytes, and the file arrives whole and verified.
func TestResumeAfterCut(t *testing.T) {
	checkGoroutines(t)
	const size = 6<<20 + 123
	data := randomBytes(42, size)
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run("seed"+string(rune('0'+seed)), func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			path := filepath.Join(src, "big.bin")
			writeFile(t, path, data, 0o640, time.Unix(1700000000, 5))
			r := startReceiver(t, RecvConfig{Dir: dst})
			// Past the hello and manifest, short of the end.
			cut := 1024 + rand.New(rand.NewPCG(seed, 7)).Int64N(size-2048)
			relay := startRelay(t, r.addr, cutAfter(cut))

			_, err, _ := send2(t, relay.addr, SendConfig{Paths: []string{path}})
			if err == nil {
				t.Fatalf("first send through a relay cutting at %d succeeded", cut)
			}
			r.connEnded(t, 1)
			part := filepath.Join(dst, partialDirName, "big.bin.part")
			fi, err := os.Stat(part)
			if err != nil {
				t.Fatalf("partial file after the cut: %v", err)
			}
			if fi.Size() == 0 || fi.Size() > cut {
				t.Fatalf("partial file has %d bytes after a cut at %d", fi.Size(), cut)
			}

			sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
			if err != nil {
				t.Fatalf("second send: %v", err)
			}
			start := log.wait(t, time.Second, EventStart, 1, nil)
			if start.Offset != fi.Size() {
				t.Errorf("resumed at %d, want %d", start.Offset, fi.Size())
			}
			if sum.Bytes != size-fi.Size() || sum.Verified != 1 {
				t.Errorf("second send moved %d bytes, verified %d; want %d, 1", sum.Bytes, sum.Verified, size-fi.Size())
			}
			r.connEnded(t, 2)
			if got := mustRead(t, filepath.Join(dst, "big.bin")); !bytes.Equal(got, data) {
				t.Errorf("received file differs from the sent one")
			}
			if _, err := os.Stat(filepath.Join(dst, partialDirName)); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", partialDirName, err)
			}
		})
	}
}

// TestResumeCorruptPartial damages the partial file: its prefix no
// longer matches the sender's, so the file restarts from zero.
func TestResumeCorruptPartial(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(9, 3<<20)
	path := filepath.Join(src, "f.bin")
	writeFile(t, path, data, 0o644, time.Unix(1600000000, 0))
	part := filepath.Join(dst, partialDirName, "f.bin.part")
	bad := bytes.Clone(data[:1<<20])
	bad[1000] ^= 1
	writeFile(t, part, bad, 0o600, time.Now())

	r := startReceiver(t, RecvConfig{Dir: dst})
	sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if start := log.wait(t, time.Second, EventStart, 1, nil); start.Offset != 0 {
		t.Errorf("started at %d, want 0 after a corrupt partial file", start.Offset)
	}
	if sum.Bytes != int64(len(data)) {
		t.Errorf("moved %d bytes, want %d", sum.Bytes, len(data))
	}
	r.connEnded(t, 1)
	if got := mustRead(t, filepath.Join(dst, "f.bin")); !bytes.Equal(got, data) {
		t.Errorf("received file differs from the sent one")
	}
}

// TestIdleSenderKeepsPartial stalls a hand-driven sender in the middle of
// a file: the receiver drops it after IdleTimeout, keeps what arrived,
// and a real send resumes from there.
func TestIdleSenderKeepsPartial(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(5, 2<<20)
	path := filepath.Join(src, "slow.bin")
	mtime := time.Unix(1650000000, 0)
	writeFile(t, path, data, 0o644, mtime)
	r := startReceiver(t, RecvConfig{Dir: dst, IdleTimeout: 300 * time.Millisecond})

	s := dialRaw(t, r.addr)
	e := entry{Kind: kindFile, Name: "slow.bin", Mode: 0o644, MTime: mtime.UnixNano(), Size: int64(len(data))}
	if a := s.manifest([]entry{e}); a[0].Verdict != vSend {
		t.Fatalf("answer %+v, want send", a[0])
	}
	s.frame(fData, appendDataHdr(nil, 0, 0))
	s.write(data[:700_000])
	// Now stall: the receiver must give up on its own.
	ev := r.log.wait(t, 5*time.Second, EventError, 1, nil)
	if !strings.Contains(ev.Reason, "idle") {
		t.Errorf("error %q, want it to say the sender was idle", ev.Reason)
	}
	r.connEnded(t, 1)
	fi, err := os.Stat(filepath.Join(dst, partialDirName, "slow.bin.part"))
	if err != nil || fi.Size() != 700_000 {
		t.Fatalf("partial file after the stall: %v, %v; want 700000 bytes", fi, err)
	}

	sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if start := log.wait(t, time.Second, EventStart, 1, nil); start.Offset != 700_000 {
		t.Errorf("resumed at %d, want 700000", start.Offset)
	}
	if sum.Verified != 1 {
		t.Errorf("summary %+v, want 1 verified", sum)
	}
	r.connEnded(t, 2)
	if got := mustRead(t, filepath.Join(dst, "slow.bin")); !bytes.Equal(got, data) {
		t.Errorf("received file differs from the sent one")
	}
}

// TestFlippedByteRejected flips one byte of file data in flight: the
// receiver refuses the file, publishes nothing and says why; the sender
// hears it.
func TestFlippedByteRejected(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(11, 5<<20)
	path := filepath.Join(src, "f.bin")
	writeFile(t, path, data, 0o644, time.Now())
	srcs, err := walkPaths([]string{path}, false, func(string, string) {})
	if err != nil {
		t.Fatal(err)
	}
	// Stream: hello, manifest frame, data frame, then the file's bytes.
	at := int64(helloLen+frameHdrLen+len(encodeManifest([]entry{srcs[0].entry}))+frameHdrLen+dataHdrLen) + int64(len(data))/2
	// Open: in the clear, so that the flip reaches the hash check (sealed,
	// it fails the record instead: TestTamperingRelay).
	r := startReceiver(t, RecvConfig{Dir: dst, Open: true})
	relay := startRelay(t, r.addr, flipAt(at))

	sum, err, log := send2(t, relay.addr, SendConfig{Paths: []string{path}, Open: true})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if sum.Failed != 1 || sum.Verified != 0 {
		t.Errorf("summary %+v, want 1 failed", sum)
	}
	ev := log.wait(t, time.Second, EventError, 1, nil)
	if !strings.Contains(ev.Reason, "checksum mismatch") {
		t.Errorf("sender's error %q, want a checksum mismatch", ev.Reason)
	}
	r.connEnded(t, 1)
	rev := r.log.wait(t, time.Second, EventError, 1, nil)
	if rev.File != "f.bin" || !strings.Contains(rev.Reason, "checksum mismatch") {
		t.Errorf("receiver's error %+v, want a checksum mismatch for f.bin", rev)
	}
	if got := listDir(t, dst); len(got) != 0 {
		t.Errorf("--dir holds %q after a corrupted transfer, want nothing", got)
	}
}

package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// editRecords returns an editFunc for the sender's side of a transfer
// with the code: it forwards the hello and the sender's two exchange
// frames as they are, then hands op each whole sealed record (its 4-byte
// length and body), numbered from 0, and forwards what op returns.
func editRecords(op func(i int, rec []byte) []byte) editFunc {
	var buf []byte
	clear := -1 // bytes before the first record still to forward; -1 until known
	next := 0
	return func(p []byte, _ int64) ([]byte, bool) {
		buf = append(buf, p...)
		var out []byte
		for {
			switch {
			case clear < 0:
				if len(buf) < helloLen+frameHdrLen {
					return out, false
				}
				pake := int(binary.BigEndian.Uint32(buf[helloLen+1:]))
				clear = helloLen + frameHdrLen + pake + frameHdrLen + confirmLen
			case clear > 0:
				k := min(clear, len(buf))
				out, buf, clear = append(out, buf[:k]...), buf[k:], clear-k
				if clear > 0 {
					return out, false
				}
			default:
				if len(buf) < 4 {
					return out, false
				}
				n := 4 + int(binary.BigEndian.Uint32(buf))
				if len(buf) < n {
					return out, false
				}
				out = append(out, op(next, bytes.Clone(buf[:n]))...)
				buf = buf[n:]
				next++
			}
		}
	}
}

// TestSealedRecordsEdited: a man in the middle of a transfer with the code
// changes, swaps, drops, replays or cuts a record of file data. The
// receiver does not hash what it receives on this path: the records'
// authentication alone must fail the transfer on both ends with a clear
// error, and publish nothing.
func TestSealedRecordsEdited(t *testing.T) {
	// Records 0 and 1 are the manifest and the DATA frame; a 2 MiB file
	// is records 2 to 9 (256 KiB each), so 3 and 4 are file data.
	const a, b = 3, 4
	var held []byte
	tests := []struct {
		name string
		op   func(i int, rec []byte) []byte
	}{
		{"a byte changed", func(i int, rec []byte) []byte {
			if i == a {
				rec[len(rec)/2] ^= 1
			}
			return rec
		}},
		{"two records swapped", func(i int, rec []byte) []byte {
			switch i {
			case a:
				held = rec
				return nil
			case b:
				return append(rec, held...)
			}
			return rec
		}},
		{"a record dropped", func(i int, rec []byte) []byte {
			if i == a {
				return nil
			}
			return rec
		}},
		{"a record replayed", func(i int, rec []byte) []byte {
			if i == a {
				return append(rec, rec...)
			}
			return rec
		}},
		{"a record cut short", func(i int, rec []byte) []byte {
			if i == a {
				rec = rec[:len(rec)-1]
				binary.BigEndian.PutUint32(rec, uint32(len(rec)-4))
			}
			return rec
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			path := filepath.Join(src, "f.bin")
			writeFile(t, path, randomBytes(3, 2<<20), 0o644, time.Now())
			r := startReceiver(t, RecvConfig{Dir: dst})
			proxy := startRelay(t, r.addr, editRecords(tc.op))
			sum, err, _ := send2(t, proxy.addr, SendConfig{Paths: []string{path}})
			if err == nil || !strings.Contains(err.Error(), "changed on the way") {
				t.Errorf("Send: %v, want the receiver's report that the stream was changed", err)
			}
			if sum.Files != 0 || sum.Verified != 0 {
				t.Errorf("sender's summary %+v, want nothing sent", sum)
			}
			r.connEnded(t, 1)
			ev := r.log.wait(t, time.Second, EventError, 1, nil)
			if !strings.Contains(ev.Reason, "changed on the way (a record failed authentication)") {
				t.Errorf("receiver's error %q, want a record that failed authentication", ev.Reason)
			}
			if got := r.log.all(EventDone); len(got) != 0 {
				t.Errorf("receiver reported %+v done", got)
			}
			// What opened before the bad record may stay as a partial file
			// for resume; nothing is under the final name.
			if _, err := os.Stat(filepath.Join(dst, "f.bin")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("f.bin published after a tampered transfer: %v", err)
			}
		})
	}
}

// TestShrinkWhileSending: a file that gets shorter while it is sent (cut
// right after its first piece went out) is padded with zeros to stay in
// step and reported changed: both ends say so, the receiver publishes
// nothing and keeps no partial file, and the next file of the same
// transfer arrives. Both of the sender's buffered loops: one goroutine
// (under 4 MiB), and the hash piped to a second (4 MiB and more, with
// GOMAXPROCS > 1).
func TestShrinkWhileSending(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		cutTo  int64
		method string
	}{
		{"one goroutine", 3 << 20, 1<<20 + 5, ""},
		{"hash piped", 9 << 20, 3<<20 + 5, ""},
		{"one goroutine, --tls", 3 << 20, 1<<20 + 5, "tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			root := filepath.Join(src, "tree")
			path := filepath.Join(root, "a.bin")
			writeFile(t, path, randomBytes(4, tc.size), 0o644, time.Now())
			next := randomBytes(5, 100<<10)
			writeFile(t, filepath.Join(root, "b.bin"), next, 0o644, time.Now())
			rcfg, scfg := RecvConfig{Dir: dst}, SendConfig{Paths: []string{root}}
			if tc.method == "tls" {
				rcfg.TLS = true
				scfg.TLS = true
			}
			r := startReceiver(t, rcfg)
			if tc.method == "tls" {
				scfg.Code = r.log.wait(t, time.Second, EventListening, 1, nil).Code
			}
			var recvLines, sendLines bytes.Buffer
			rprog := NewProgress(ProgressConfig{Style: ProgressLines, Err: &recvLines, Receiver: true})
			cut := false
			scfg.afterPiece = func(pos int64) {
				if !cut {
					cut = true
					if err := os.Truncate(path, tc.cutTo); err != nil {
						t.Errorf("truncate: %v", err)
					}
				}
			}
			sprog := NewProgress(ProgressConfig{Style: ProgressLines, Err: &sendLines})
			log := newEventLog()
			scfg.Events = func(e Event) { log.add(e); sprog.Event(e) }
			sum, err := sendWith(t, r.addr, scfg)
			if err != nil {
				t.Fatalf("Send: %v\n%s", err, log.dump())
			}
			r.connEnded(t, 1)
			for _, e := range r.log.all("") {
				rprog.Event(e)
			}
			sprog.Close()
			rprog.Close()
			if !cut {
				t.Fatal("the file was never cut")
			}
			if sum.Files != 1 || sum.Failed != 1 || sum.Verified != 1 {
				t.Errorf("sender's summary %+v, want b.bin sent and verified, a.bin failed", sum)
			}
			const why = "file changed while being sent: file shrank while being read"
			// What each end shows: the file, why, and that nothing of it
			// was kept; the summaries count b.bin alone.
			for _, out := range []struct {
				who   string
				lines string
				want  []string
			}{
				{"send", sendLines.String(), []string{
					"\nerror: tree/a.bin: " + why + "; the receiver discarded it\n",
					"\nsent 1 file, 100.0 KiB in ", ", 1 verified, 1 failed\n"}},
				{"recv", recvLines.String(), []string{
					": error: tree/a.bin: sender: " + why + "; discarded\n",
					"\nreceived 1 file, 100.0 KiB in ", ", 1 verified, 1 failed from "}},
			} {
				for _, want := range out.want {
					if !strings.Contains(out.lines, want) {
						t.Errorf("%s shows:\n%s\nwant %q in it", out.who, out.lines, want)
					}
				}
			}
			if got := listDir(t, dst); strings.Join(got, ",") != "tree,tree/b.bin" {
				t.Errorf("--dir holds %q, want only tree/b.bin (no a.bin, no partial file)", got)
			}
			if got := mustRead(t, filepath.Join(dst, "tree", "b.bin")); !bytes.Equal(got, next) {
				t.Errorf("b.bin differs from the file sent")
			}
		})
	}
}

// sendWith runs Send to addr with cfg as it is (the code, hooks and
// events set by the caller).
func sendWith(t *testing.T, addr string, cfg SendConfig) (Summary, error) {
	t.Helper()
	if !cfg.TLS && cfg.Code == "" {
		cfg.Code = testCode
	}
	cfg.Addr, cfg.IdleTimeout = addr, 10*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return Send(ctx, cfg)
}

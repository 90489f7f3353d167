package transfer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestRoundTripTree sends a tree with empty files, nested and empty
// directories, non-ASCII names, odd modes and a large sparse file, and
// checks that content, modes and mtimes arrive exactly.
func TestRoundTripTree(t *testing.T) {
	checkGoroutines(t)
	src, dst := t.TempDir(), t.TempDir()
	top := filepath.Join(src, "tree")
	base := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	writeFile(t, filepath.Join(top, "empty"), nil, 0o600, base)
	writeFile(t, filepath.Join(top, "café/naïve 日本.txt"), []byte("bonjour\n"), 0o644, base.Add(time.Hour))
	writeFile(t, filepath.Join(top, "a/b/c/deep.bin"), randomBytes(1, 3<<20+17), 0o755, base.Add(2*time.Hour))
	writeFile(t, filepath.Join(top, "a/b/empty too"), nil, 0o400, base.Add(3*time.Hour))
	if err := os.MkdirAll(filepath.Join(top, "empty dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	sparseSize := int64(1 << 30)
	if raceOn {
		sparseSize = 256 << 20
	}
	sparse := filepath.Join(top, "sparse.img")
	makeSparse(t, sparse, sparseSize, []int64{0, sparseSize / 3, sparseSize - 4096})
	for i, d := range []string{"a/b/c", "a/b", "a", "café", "empty dir", ""} {
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(filepath.Join(top, d), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(top, "a/b"), 0o711)

	r := startReceiver(t, RecvConfig{Dir: dst})
	sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{top}})
	if err != nil {
		t.Fatalf("Send: %v; events: %s", err, log.dump())
	}
	r.connEnded(t, 1)
	if sum.Files != 5 || sum.Verified != 5 || sum.Rejected != 0 || sum.Failed != 0 {
		t.Errorf("summary = %+v, want 5 files verified", sum)
	}
	if got := len(log.all(EventDone)); got != 5 {
		t.Errorf("%d done events, want 5", got)
	}
	for _, ev := range log.all(EventDone) {
		if len(ev.Hash) != 64 {
			t.Errorf("done %s: hash %q, want 64 hex digits", ev.File, ev.Hash)
		}
	}
	compareTrees(t, src, dst)
	if _, err := os.Stat(filepath.Join(dst, partialDirName)); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", partialDirName, err)
	}
}

// makeSparse makes a file of size bytes with 4 KiB of data at each offset
// and holes elsewhere.
func makeSparse(t *testing.T, path string, size int64, at []int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, off := range at {
		if _, err := f.WriteAt(randomBytes(uint64(100+i), 4096), off); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRoundTripCores sends a file large enough for the pipelined data
// paths with one core (one goroutine reads, hashes and writes in turn)
// and with two (the hash on a goroutine of its own, on both ends), sealed
// and open, and checks it arrives whole and verified.
func TestRoundTripCores(t *testing.T) {
	data := randomBytes(9, 3*chunkSize+pipeMinSize+12345)
	for _, procs := range []int{1, 2} {
		for _, open := range []bool{false, true} {
			t.Run(fmt.Sprintf("GOMAXPROCS=%d open=%v", procs, open), func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				checkGoroutines(t)
				src, dst := t.TempDir(), t.TempDir()
				writeFile(t, filepath.Join(src, "big.bin"), data, 0o644, time.Now())
				r := startReceiver(t, RecvConfig{Dir: dst, Open: open})
				sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{filepath.Join(src, "big.bin")}, Open: open})
				if err != nil {
					t.Fatalf("Send: %v; events: %s", err, log.dump())
				}
				r.connEnded(t, 1)
				if sum.Verified != 1 {
					t.Errorf("summary = %+v, want 1 file verified", sum)
				}
				compareTrees(t, src, dst)
			})
		}
	}
}

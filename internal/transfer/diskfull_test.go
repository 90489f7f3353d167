//go:build linux

package transfer

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTiny mounts a 1 MiB tmpfs for the test, or skips the test when it
// cannot (not root, no mount permission), unless NETKIT_DISKFULL=required.
func mountTiny(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		if os.Getenv("NETKIT_DISKFULL") == "required" {
			t.Fatalf("mount a 1 MiB tmpfs: %v (NETKIT_DISKFULL=required)", err)
		}
		t.Skipf("cannot mount a 1 MiB tmpfs (%v); run as root, or set NETKIT_DISKFULL=required to make this a failure", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestNotEnoughSpace: the free-space check refuses a file that cannot fit
// before a byte is written.
func TestNotEnoughSpace(t *testing.T) {
	dst := mountTiny(t)
	src := t.TempDir()
	path := filepath.Join(src, "big.bin")
	writeFile(t, path, randomBytes(1, 2<<20), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst})
	sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	ev := log.wait(t, time.Second, EventReject, 1, nil)
	if !strings.HasPrefix(ev.Reason, "not enough space: need 2.0 MiB, have ") {
		t.Errorf("reject reason %q, want \"not enough space: need 2.0 MiB, have ...\"", ev.Reason)
	}
	if sum.Rejected != 1 {
		t.Errorf("summary %+v, want 1 rejected", sum)
	}
	r.connEnded(t, 1)
	if got := listDir(t, dst); len(got) != 0 {
		t.Errorf("--dir holds %q, want nothing", got)
	}
}

// TestDiskFull fills a 1 MiB tmpfs for real (the free-space check is told
// there is room): both ends report "disk full writing NAME", the partial
// file is removed and nothing is published.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		procs int // GOMAXPROCS for the test, 0 for as it is
	}{
		{"serial path", 2 << 20, 0},
		{"spliced path", 6 << 20, 0},
		{"serial path, one P (raw writes)", 2 << 20, 1},
		{"spliced path, one P (raw splices)", 6 << 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tc.procs))
			}
			dst := mountTiny(t)
			src := t.TempDir()
			path := filepath.Join(src, "big.bin")
			writeFile(t, path, randomBytes(2, tc.size), 0o644, time.Now())
			lots := func() (int64, error) { return 1 << 40, nil }
			r := startReceiver(t, RecvConfig{Dir: dst, freeSpace: lots})
			_, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}})
			if err == nil || !strings.Contains(err.Error(), "disk full writing big.bin") {
				t.Fatalf("send: %v, want \"disk full writing big.bin\"", err)
			}
			r.connEnded(t, 1)
			ev := r.log.wait(t, time.Second, EventError, 1, nil)
			if !strings.Contains(ev.Reason, "disk full writing big.bin") {
				t.Errorf("receiver's error %q, want \"disk full writing big.bin\"", ev.Reason)
			}
			if got := listDir(t, dst); len(got) != 0 {
				t.Errorf("--dir holds %q after a full disk, want nothing (partial removed)", got)
			}
		})
	}
}

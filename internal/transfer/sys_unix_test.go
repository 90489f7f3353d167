//go:build unix

package transfer

import (
	"errors"
	"os"
	"testing"
)

func TestFsSpace(t *testing.T) {
	avail, total, err := fsSpace(t.TempDir())
	if err != nil || total <= 0 || avail < 0 || avail > total {
		t.Fatalf("fsSpace = %d available of %d, %v; want 0 <= available <= total, total > 0", avail, total, err)
	}
}

func TestDirID(t *testing.T) {
	dir := t.TempDir()
	a, errA := os.Stat(dir)
	b, errB := os.Stat(dir + "/.")
	other, errC := os.Stat(t.TempDir())
	if err := errors.Join(errA, errB, errC); err != nil {
		t.Fatal(err)
	}
	ida, oka := dirID(a)
	idb, okb := dirID(b)
	idc, okc := dirID(other)
	if !oka || !okb || !okc || ida != idb || ida == idc {
		t.Fatalf("dirID: %v %v, %v %v, %v %v; want the same directory equal, another different", ida, oka, idb, okb, idc, okc)
	}
}

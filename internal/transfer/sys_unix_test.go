//go:build unix

package transfer

import (
	"errors"
	"os"
	"testing"
)

func TestDiskSpace(t *testing.T) {
	avail, total, err := diskSpace(t.TempDir())
	if err != nil || total <= 0 || avail < 0 || avail > total {
		t.Fatalf("diskSpace = %d available of %d, %v; want 0 <= available <= total, total > 0", avail, total, err)
	}
}

func TestFileID(t *testing.T) {
	dir := t.TempDir()
	a, errA := os.Stat(dir)
	b, errB := os.Stat(dir + "/.")
	other, errC := os.Stat(t.TempDir())
	if err := errors.Join(errA, errB, errC); err != nil {
		t.Fatal(err)
	}
	ida, oka := fileID(a)
	idb, okb := fileID(b)
	idc, okc := fileID(other)
	if !oka || !okb || !okc || ida != idb || ida == idc {
		t.Fatalf("fileID: %v %v, %v %v, %v %v; want the same directory equal, another different", ida, oka, idb, okb, idc, okc)
	}
}

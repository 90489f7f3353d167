package transfer

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows"
)

// diskSpace returns the bytes available to this user and the size of the
// volume holding dir.
func diskSpace(dir string) (avail, total int64, err error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("transfer: free space: %w", err)
	}
	var free, size, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &size, &totalFree); err != nil {
		return 0, 0, fmt.Errorf("transfer: free space: %w", err)
	}
	return int64(free), int64(size), nil
}

// fileID is not available on Windows from a FileInfo (it carries no file
// index), so ok is false: the walker cannot tell a symlink loop by
// identity there, and with --follow a loop ends only when the path grows
// too long for the system.
func fileID(fs.FileInfo) (id [2]uint64, ok bool) { return id, false }

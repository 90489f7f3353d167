//go:build unix

package transfer

import (
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// The system-dependent pieces of the receiver and the walker; Windows
// has its own (sys_windows.go).

// diskSpace returns the bytes available to this user and the size of the
// file system holding dir.
func diskSpace(dir string) (avail, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("transfer: free space: %w", err)
	}
	// The fields' types differ between systems: int64 holds them all.
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}

// fileID identifies a directory by device and inode, to detect symlink
// loops; ok is false where the system does not say.
func fileID(fi fs.FileInfo) (id [2]uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return id, false
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}, true
}

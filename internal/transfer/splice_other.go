//go:build !linux

package transfer

import (
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// canSplice reports whether receiveSpliced is available: splice(2) is
// Linux only.
const canSplice = false

func (rc *recvConn) receiveSpliced(*net.TCPConn, *os.File, entry, int64, *hasher) (int64, error) {
	return 0, errors.ErrUnsupported
}

// splicePipe is never made where splice(2) is missing.
type splicePipe struct{}

func (*splicePipe) close() {}

// canSendfile is false: sendfile(2)'s semantics differ across systems,
// so the sender copies through a buffer (copyBody) here.
const canSendfile = false

func (s *sender) sendfile(_ *os.File, _ source, off int64) (int64, error) {
	return off, errors.ErrUnsupported
}

// diskSpace returns the bytes available to this user and the size of
// the file system holding dir.
func diskSpace(dir string) (avail, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}

// fileID returns a file's device and inode, to recognise a directory
// reached twice.
func fileID(fi os.FileInfo) ([2]uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, false
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}, true
}

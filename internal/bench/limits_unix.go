//go:build unix

package bench

import "syscall"

// raiseFileLimit raises this process's soft limit on open files to its hard
// limit and returns the limit now in force and whether it changed. Go
// (since 1.19) already does this at start, so usually nothing changes.
func raiseFileLimit() (limit uint64, raised bool, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false, err
	}
	// Rlimit's fields are uint64 on Linux and macOS, int64 on FreeBSD.
	if rl.Cur >= rl.Max {
		return uint64(rl.Cur), false, nil
	}
	want := rl
	want.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return uint64(rl.Cur), false, err
	}
	return uint64(want.Cur), true, nil
}

// setRcvBuf sets a socket's SO_RCVBUF.
func setRcvBuf(fd uintptr, n int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

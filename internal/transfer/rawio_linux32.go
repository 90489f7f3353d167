//go:build linux && !(amd64 || arm64)

package transfer

import "golang.org/x/sys/unix"

// sendfileFD is sendfile(2); raw system calls are for 64-bit Linux only
// (rawio_linux.go).
func sendfileFD(_ bool, out, in int, off *int64, count int) (int, error) {
	return unix.Sendfile(out, in, off, count)
}

// spliceFD is splice(2); raw system calls are for 64-bit Linux only.
func spliceFD(_ bool, rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error) {
	m, err := unix.Splice(rfd, roff, wfd, woff, n, flags)
	return int(m), err
}

//go:build !unix

package bench

import "errors"

// raiseFileLimit is not implemented outside Unix; the limit is reported
// as 0 (unknown).
func raiseFileLimit() (limit uint64, raised bool, err error) {
	return 0, false, errors.New("file descriptor limit: not implemented on this system")
}

// setRcvBuf leaves the receive buffer alone outside Unix: a stuck
// subscriber then takes longer to fill.
func setRcvBuf(fd uintptr, n int) error { return nil }

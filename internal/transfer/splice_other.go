//go:build !linux

package transfer

import (
	"errors"
	"net"
	"os"
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

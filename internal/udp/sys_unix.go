//go:build unix

package udp

import (
	"errors"
	"syscall"
)

// msgTrunc is the receive flag that says a datagram was cut short.
const msgTrunc = syscall.MSG_TRUNC

// isRefused reports whether err is the kernel passing on an ICMP port
// unreachable for an earlier datagram.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

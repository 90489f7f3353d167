package udp

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// msgTrunc is the receive flag that says a datagram was cut short. Windows
// reports that as an error (WSAEMSGSIZE) instead, and no datagram over IPv4
// or IPv6 without jumbograms is larger than MaxDatagram.
const msgTrunc = 0

// isRefused reports whether err is the system passing on an ICMP port
// unreachable for an earlier datagram: WSAECONNRESET on a UDP socket.
func isRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

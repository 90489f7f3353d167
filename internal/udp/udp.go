// Package udp is netkit's UDP toolbox: a server that echoes, prints or
// discards datagrams from any number of peers on one socket, a client that
// sends lines or test datagrams and prints the replies, and a load
// generator that measures loss, reordering, duplicates, jitter and round
// trip against an echo server.
package udp

import (
	"errors"
)

// MaxDatagram is the size of every read buffer: larger than any UDP
// payload over IPv4 or IPv6 without jumbograms, so nothing is cut short.
const MaxDatagram = 64 << 10

// socketBuffer is the size of the socket buffers Serve and Bench ask for.
const socketBuffer = 4 << 20

// ErrRefused means the peer's host answered that nothing listens on the
// port (an ICMP port unreachable). It has no "udp:" prefix of its own:
// every error of this package that wraps it has one.
var ErrRefused = errors.New("nothing listening at the address (ICMP port unreachable)")

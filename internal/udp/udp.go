// Package udp is netkit's UDP toolbox: a server that echoes, prints or
// discards datagrams from any number of peers on one socket, a client that
// sends lines or test datagrams and prints the replies, and a load
// generator that measures loss, reordering, duplicates, jitter and round
// trip against an echo server.
package udp

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDatagram is the size of every read buffer: larger than any UDP
// payload over IPv4 or IPv6 without jumbograms, so nothing is cut short.
const MaxDatagram = 64 << 10

// ErrRefused means the peer's host answered that nothing listens on the
// port (an ICMP port unreachable).
var ErrRefused = errors.New("udp: nothing listening at the address (ICMP port unreachable)")

// Escape returns b as text safe for a terminal: printable UTF-8 is kept,
// control characters and invalid bytes are escaped like Go's %q does
// (\n, \x1b, \u200b).
func Escape(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1:
			sb.WriteString(`\x`)
			sb.WriteString(strconv.FormatUint(uint64(b[0])|0x100, 16)[1:])
		case r == '\\':
			sb.WriteString(`\\`)
		case strconv.IsPrint(r):
			sb.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			sb.WriteString(q[1 : len(q)-1])
		}
		b = b[n:]
	}
	return sb.String()
}

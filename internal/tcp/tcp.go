// Package tcp is netkit's TCP toolbox: a server that echoes, prints,
// discards or relays lines between clients (chat), with connection limits,
// idle timeouts, address filters and TLS; and a client that joins stdin and
// stdout to a connection and half-closes it at the end of stdin.
package tcp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrServerClosed is returned by Serve once ctx has ended.
var ErrServerClosed = errors.New("tcp: server closed")

// Mode is what a server does with what a client sends.
type Mode string

// The server modes.
const (
	ModeEcho    Mode = "echo"    // send it back
	ModePrint   Mode = "print"   // write each line, escaped, to Out
	ModeDiscard Mode = "discard" // read and drop it
	ModeChat    Mode = "chat"    // relay each line to every other client
)

// ParseMode returns the Mode named s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeEcho, ModePrint, ModeDiscard, ModeChat:
		return m, nil
	}
	return "", fmt.Errorf("tcp: mode %q: want echo, print, discard or chat", s)
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes or bare
// addresses ("10.0.0.0/8,::1").
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("tcp: %q: want an address or CIDR like 10.0.0.0/8", f))
				continue
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("tcp: %q: want an address or CIDR like 10.0.0.0/8", f))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

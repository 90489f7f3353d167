package transfer

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Config is the [transfer] section of a netkit configuration file (and
// the NETKIT_TRANSFER_* environment variables): what send and recv use
// when their flags say nothing. No relay is built in: Relay is empty
// unless the user sets it.
type Config struct {
	Relay string `koanf:"relay" help:"relay (host or host:port) that send and recv use when --relay is not given; empty for none"`
}

// DefaultConfig returns the built-in settings: no default relay.
func DefaultConfig() Config { return Config{} }

// Validate checks that Relay, when set, is HOST or HOST:PORT.
func (c *Config) Validate() error {
	if c.Relay == "" {
		return nil
	}
	if err := checkRelayAddr(c.Relay); err != nil {
		return fmt.Errorf("transfer.relay: %w", err)
	}
	return nil
}

// checkRelayAddr checks a relay address: HOST or HOST:PORT.
func checkRelayAddr(addr string) error {
	host, port := addr, ""
	if h, p, err := net.SplitHostPort(addr); err == nil {
		host, port = h, p
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.ContainsAny(host, " \t/:") && net.ParseIP(host) == nil {
		return fmt.Errorf(`want a host or host:port like "relay.example.org" or "relay.example.org:%d", got %q`, DefaultRelayPort, addr)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want a number from 1 to 65535, got %q", port, addr)
		}
	}
	return nil
}

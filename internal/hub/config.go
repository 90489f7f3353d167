package hub

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config configures a hub. Field tags: koanf is the key under [hub], help is
// the one-line description shown by --help and --print-config, and
// unit:"size" marks byte sizes written like "64KiB".
type Config struct {
	Listen           string        `koanf:"listen" help:"address to listen on (host:port; port 0 picks a free port)"`
	WSPath           string        `koanf:"ws_path" help:"HTTP path of the WebSocket endpoint"`
	APIKey           string        `koanf:"api_key" help:"bearer key for the HTTP API; empty generates one at start and logs it once"`
	NodeID           string        `koanf:"node_id" help:"name of this node in welcome pushes and /api/info; empty picks a random one"`
	JoinLeave        bool          `koanf:"join_leave" help:"send join and leave pushes to channel subscribers"`
	MaxMessageSize   int64         `koanf:"max_message_size" unit:"size" help:"largest inbound WebSocket message; larger ones disconnect with too_large (close 1009)"`
	QueueMessages    int           `koanf:"queue_messages" help:"outbound queue limit per connection, in messages; overflow disconnects with slow_consumer"`
	QueueBytes       int64         `koanf:"queue_bytes" unit:"size" help:"outbound queue limit per connection, in bytes; overflow disconnects with slow_consumer"`
	MaxSubscriptions int           `koanf:"max_subscriptions" help:"channels one connection may subscribe to at once"`
	MaxConnections   int           `koanf:"max_connections" help:"connections the hub accepts at once; 0 means no limit"`
	PingInterval     time.Duration `koanf:"ping_interval" help:"how often the hub pings each connection"`
	PongTimeout      time.Duration `koanf:"pong_timeout" help:"how long after a ping a silent connection is dropped"`
	WriteTimeout     time.Duration `koanf:"write_timeout" help:"deadline for one write to a connection; a peer that cannot take it is dropped"`
	ShutdownGrace    time.Duration `koanf:"shutdown_grace" help:"on SIGINT/SIGTERM, how long to wait for connections to close before exiting"`
	Transport        string        `koanf:"transport" help:"connection layer: epoll (an event loop, Linux), goroutine (one per connection), or auto (epoll for plain TCP where available, goroutine for TLS)"`
	WriteDelay       time.Duration `koanf:"write_delay" help:"gather what is due for a connection for up to this long before writing; 0s writes at once"`
	TLSCert          string        `koanf:"tls_cert" help:"PEM certificate (chain) file: serve wss:// and https://; needs tls_key"`
	TLSKey           string        `koanf:"tls_key" help:"PEM private key file of tls_cert"`
}

// Transports of Config.Transport.
const (
	TransportAuto      = "auto"
	TransportEpoll     = "epoll"
	TransportGoroutine = "goroutine"
)

// DefaultConfig returns the embedded defaults: the hub that
// `netkit hub` runs with no file, flag or environment variable.
func DefaultConfig() Config {
	return Config{
		Listen:           ":9999",
		WSPath:           "/ws",
		JoinLeave:        true,
		MaxMessageSize:   64 << 10,
		QueueMessages:    1024,
		QueueBytes:       1 << 20,
		MaxSubscriptions: 1000,
		MaxConnections:   100000,
		PingInterval:     25 * time.Second,
		PongTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		ShutdownGrace:    10 * time.Second,
		Transport:        TransportAuto,
	}
}

// Validate checks every field and reports all problems at once, each naming
// its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("hub.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Listen == "" {
		bad("listen", `want an address like ":9999" or "127.0.0.1:9999", got ""`)
	}
	if !strings.HasPrefix(c.WSPath, "/") || strings.HasPrefix(c.WSPath, "/api/") || c.WSPath == "/api" {
		bad("ws_path", `want a path like "/ws" that starts with "/" and is not under /api, got %q`, c.WSPath)
	}
	if c.MaxMessageSize < 256 {
		bad("max_message_size", "want at least 256B, got %dB", c.MaxMessageSize)
	}
	if c.QueueMessages < 1 {
		bad("queue_messages", "want at least 1, got %d", c.QueueMessages)
	}
	if c.QueueBytes < 1024 {
		bad("queue_bytes", "want at least 1KiB, got %dB", c.QueueBytes)
	}
	if c.MaxSubscriptions < 1 {
		bad("max_subscriptions", "want at least 1, got %d", c.MaxSubscriptions)
	}
	if c.MaxConnections < 0 {
		bad("max_connections", "want 0 (no limit) or more, got %d", c.MaxConnections)
	}
	switch c.Transport {
	case TransportAuto, TransportEpoll, TransportGoroutine:
	default:
		bad("transport", `want "auto", "epoll" or "goroutine", got %q`, c.Transport)
	}
	if c.WriteDelay < 0 {
		bad("write_delay", `want 0s or a positive duration like "2ms", got %s`, c.WriteDelay)
	}
	c.validateTLS(bad)
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"ping_interval", c.PingInterval}, {"pong_timeout", c.PongTimeout}, {"write_timeout", c.WriteTimeout}, {"shutdown_grace", c.ShutdownGrace}} {
		if d.v <= 0 {
			bad(d.key, `want a positive duration like "10s", got %s`, d.v)
		}
	}
	return errors.Join(errs...)
}

// validateTLS checks that tls_cert and tls_key are set together and name
// readable files.
func (c *Config) validateTLS(bad func(key, format string, args ...any)) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "want tls_cert and tls_key both set (to serve TLS) or both empty, got only one")
		return
	}
	for _, f := range []struct{ key, path string }{{"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey}} {
		if f.path == "" {
			continue
		}
		if b, err := os.ReadFile(f.path); err != nil {
			bad(f.key, "want a readable PEM file: %v", err)
		} else if len(b) == 0 {
			bad(f.key, "want a PEM file, got an empty file %s", f.path)
		}
	}
}

package hub

import (
	"errors"
	"fmt"
	"net"
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
	Publish          string        `koanf:"publish" help:"who may publish to channels without a namespace: subscribers (of the channel), clients (any client) or api (only the HTTP API)"`
	Presence         bool          `koanf:"presence" help:"keep the presence (who is subscribed) of channels without a namespace; off also turns off their join and leave pushes"`
	JoinLeave        bool          `koanf:"join_leave" help:"send join and leave pushes to the subscribers of channels without a namespace (each join reaches every subscriber: n joins cost n*n/2 pushes)"`
	HistorySize      int           `koanf:"history_size" help:"messages each channel without a namespace keeps for history and recovery; 0 keeps none"`
	HistoryTTL       time.Duration `koanf:"history_ttl" help:"how long a channel without a namespace keeps a message for history and recovery"`
	HistoryMaxBytes  int64         `koanf:"history_max_bytes" unit:"size" help:"memory for the history of all channels together, their offsets and epochs included; over it the oldest messages go first, and a recovery that needed them answers recovered:false"`
	AllowAnonymous   bool          `koanf:"allow_anonymous" help:"accept clients without a token; false answers their upgrade with 401"`
	JWTSecret        string        `koanf:"jwt_secret" help:"secret of HS256 client tokens (?token= or Authorization: Bearer at upgrade); empty: no HS256 tokens"`
	JWTPublicKey     string        `koanf:"jwt_public_key" help:"PEM file of the RSA or ECDSA P-256 public key of RS256/ES256 client tokens; empty: none"`
	AllowedOrigins   []string      `koanf:"allowed_origins" help:"browser origins accepted besides the hub's own, as glob patterns like http://localhost:* (comma-separated in flags)"`
	CommandRate      int           `koanf:"command_rate" help:"commands per second one connection may send, sustained; more get too_many_requests; 0 means no limit"`
	CommandBurst     int           `koanf:"command_burst" help:"commands a connection may send at once above command_rate"`
	ConnectRate      int           `koanf:"connect_rate" help:"new connections per second one client address may open (IPv6: per /64; loopback exempt); more get 429; 0 means no limit"`
	ConnectBurst     int           `koanf:"connect_burst" help:"connections an address may open at once above connect_rate"`
	Namespaces       []Namespace   `koanf:"namespaces" help:"channel namespaces: the channels named NAME:rest take the options of the namespace NAME; a channel in no listed namespace is not_found"`
	MaxMessageSize   int64         `koanf:"max_message_size" unit:"size" help:"largest inbound WebSocket message; larger ones disconnect with too_large (close 1009)"`
	QueueMessages    int           `koanf:"queue_messages" help:"outbound queue limit per connection, in messages: over it, publishers to the connection's channels are slowed; over it for write_timeout, or over twice it, disconnects with slow_consumer"`
	QueueBytes       int64         `koanf:"queue_bytes" unit:"size" help:"outbound queue limit per connection, in bytes: over it, publishers to the connection's channels are slowed; over it for write_timeout, or over twice it, disconnects with slow_consumer"`
	MaxQueuedBytes   int64         `koanf:"max_queued_bytes" unit:"size" help:"outbound queues of all connections together; over it, publishers are slowed until queues drain (a message queued for N clients counts N times)"`
	MaxSubscriptions int           `koanf:"max_subscriptions" help:"channels one connection may subscribe to at once"`
	MaxConnections   int           `koanf:"max_connections" help:"connections the hub accepts at once; 0 means no limit"`
	PingInterval     time.Duration `koanf:"ping_interval" help:"how often the hub pings each connection"`
	PongTimeout      time.Duration `koanf:"pong_timeout" help:"how long after a ping a silent connection is dropped"`
	WriteTimeout     time.Duration `koanf:"write_timeout" help:"how long a connection may leave written bytes untaken, or stay over its queue limit, before it is dropped; also how long an API publish waits for congested subscribers"`
	ShutdownGrace    time.Duration `koanf:"shutdown_grace" help:"on SIGINT/SIGTERM, how long to wait for connections to close before exiting"`
	DrainDelay       time.Duration `koanf:"drain_delay" help:"on SIGINT/SIGTERM, how long /readyz answers 503 before the listener closes, so a load balancer stops sending; 0s closes at once"`
	HTTPTimeout      time.Duration `koanf:"http_timeout" help:"time a client gets to send its request headers (the WebSocket upgrade included); API requests get twice that for headers and body"`
	Transport        string        `koanf:"transport" help:"connection layer: epoll (an event loop, Linux), goroutine (one per connection), or auto (epoll for plain TCP where available, goroutine for TLS)"`
	WriteDelay       time.Duration `koanf:"write_delay" help:"gather what is due for a connection for up to this long before writing; 0s writes at once"`
	TLSCert          string        `koanf:"tls_cert" help:"PEM certificate (chain) file: serve wss:// and https://; needs tls_key"`
	TLSKey           string        `koanf:"tls_key" help:"PEM private key file of tls_cert"`
	Broker           string        `koanf:"broker" help:"how nodes share channels: memory (one node), nats (hub nodes connected through the NATS servers of hub.nats.url) or nats-embedded (run a NATS server with JetStream in this process, storing in hub.nats.embedded_dir; other nodes connect to it)"`
	// NATS configures the connection to NATS: the table [hub.nats].
	NATS NATSConfig `koanf:"nats"`
}

// NATSConfig is the table [hub.nats]: how a node of hub.broker = "nats"
// reaches NATS, and the embedded server of "nats-embedded". Its keys are
// hub.nats.url and so on in the file, NETKIT_HUB_NATS_URL in the
// environment and --nats-url on the command line.
type NATSConfig struct {
	URL            []string      `koanf:"url" help:"NATS server URLs for hub.broker = nats, like nats://10.0.0.5:4222 (comma-separated in flags; several are one cluster's seeds)"`
	User           string        `koanf:"user" help:"user name for NATS; needs hub.nats.password"`
	Password       string        `koanf:"password" help:"password of hub.nats.user"`
	Token          string        `koanf:"token" help:"token for NATS, instead of a user and password"`
	Creds          string        `koanf:"creds" help:"NATS credentials file (JWT and seed), instead of a user or token"`
	TLSCA          string        `koanf:"tls_ca" help:"PEM file of the CA that signed the NATS servers' certificates (makes the connection TLS)"`
	TLSCert        string        `koanf:"tls_cert" help:"PEM client certificate for NATS, when the servers ask for one; needs hub.nats.tls_key"`
	TLSKey         string        `koanf:"tls_key" help:"PEM private key file of hub.nats.tls_cert"`
	EmbeddedDir    string        `koanf:"embedded_dir" help:"directory where hub.broker = nats-embedded stores JetStream's files (history, presence); kept across restarts"`
	EmbeddedListen string        `koanf:"embedded_listen" help:"address where the embedded NATS server listens for other hub nodes (host:port; 0.0.0.0:4222 for other machines)"`
	PresenceTTL    time.Duration `koanf:"presence_ttl" help:"cluster presence entries live this long without their node refreshing them: a node that dies leaves presence within it"`
}

// Brokers of Config.Broker.
const (
	BrokerMemory       = "memory"
	BrokerNATS         = "nats"
	BrokerNATSEmbedded = "nats-embedded"
)

func validNamespaceName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
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
		Publish:          PublishClients,
		Presence:         true,
		JoinLeave:        true,
		HistorySize:      100,
		HistoryTTL:       10 * time.Minute,
		HistoryMaxBytes:  64 << 20,
		AllowAnonymous:   true,
		AllowedOrigins:   []string{},
		CommandRate:      100000,
		CommandBurst:     100000,
		ConnectRate:      100,
		ConnectBurst:     1000,
		Namespaces:       []Namespace{},
		MaxMessageSize:   64 << 10,
		QueueMessages:    1024,
		QueueBytes:       1 << 20,
		MaxQueuedBytes:   1 << 30,
		MaxSubscriptions: 1000,
		MaxConnections:   100000,
		PingInterval:     25 * time.Second,
		PongTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		ShutdownGrace:    10 * time.Second,
		HTTPTimeout:      10 * time.Second,
		Transport:        TransportAuto,
		Broker:           BrokerMemory,
		NATS: NATSConfig{
			URL:            []string{},
			EmbeddedDir:    "netkit-nats",
			EmbeddedListen: "127.0.0.1:4222",
			PresenceTTL:    30 * time.Second,
		},
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
	if c.MaxQueuedBytes < c.QueueBytes {
		bad("max_queued_bytes", "want at least hub.queue_bytes (%dB), got %dB", c.QueueBytes, c.MaxQueuedBytes)
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
	c.validateBroker(bad)
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"ping_interval", c.PingInterval}, {"pong_timeout", c.PongTimeout}, {"write_timeout", c.WriteTimeout}, {"shutdown_grace", c.ShutdownGrace}, {"http_timeout", c.HTTPTimeout}} {
		if d.v <= 0 {
			bad(d.key, `want a positive duration like "10s", got %s`, d.v)
		}
	}
	seen := make(map[string]bool)
	def := c.defaultNamespace()
	errs = append(errs, def.validate("hub.")...)
	for i := range c.Namespaces {
		ns := &c.Namespaces[i]
		key := fmt.Sprintf("hub.namespaces[%d].", i)
		if !validNamespaceName(ns.Name) {
			bad(fmt.Sprintf("namespaces[%d].name", i), "want 1-64 of a-z A-Z 0-9 _ . - (the part of a channel name before \":\"), got %q", ns.Name)
		}
		if seen[ns.Name] {
			bad(fmt.Sprintf("namespaces[%d].name", i), "namespace %q is defined twice", ns.Name)
		}
		seen[ns.Name] = true
		errs = append(errs, ns.validate(key)...)
	}
	if c.HistoryMaxBytes < 64<<10 {
		bad("history_max_bytes", "want at least 64KiB, got %dB", c.HistoryMaxBytes)
	}
	if c.JWTSecret != "" && c.JWTPublicKey != "" {
		bad("jwt_secret", "hub.jwt_secret and hub.jwt_public_key are both set: set one")
	}
	if !c.AllowAnonymous && c.JWTSecret == "" && c.JWTPublicKey == "" {
		bad("allow_anonymous", "false needs hub.jwt_secret or hub.jwt_public_key, or no client could connect")
	}
	for _, r := range []struct {
		key  string
		v    int
		zero bool
	}{{"command_rate", c.CommandRate, true}, {"command_burst", c.CommandBurst, c.CommandRate == 0}, {"connect_rate", c.ConnectRate, true}, {"connect_burst", c.ConnectBurst, c.ConnectRate == 0}} {
		if r.v < 0 || r.v == 0 && !r.zero {
			bad(r.key, "want at least 1, got %d", r.v)
		}
	}
	if c.DrainDelay < 0 {
		bad("drain_delay", `want a duration like "5s", or "0s" for none, got %s`, c.DrainDelay)
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

// validateBroker checks the broker keys.
func (c *Config) validateBroker(bad func(key, format string, args ...any)) {
	n := &c.NATS
	switch c.Broker {
	case BrokerMemory:
	case BrokerNATS:
		if len(n.URL) == 0 {
			bad("nats.url", `hub.broker = "nats" needs at least one URL like "nats://127.0.0.1:4222"`)
		}
	case BrokerNATSEmbedded:
		if n.EmbeddedDir == "" {
			bad("nats.embedded_dir", `hub.broker = "nats-embedded" needs a directory, got ""`)
		}
		if _, _, err := net.SplitHostPort(n.EmbeddedListen); err != nil {
			bad("nats.embedded_listen", `want an address like "127.0.0.1:4222", got %q`, n.EmbeddedListen)
		}
	default:
		bad("broker", `want "memory", "nats" or "nats-embedded", got %q`, c.Broker)
	}
	if (n.User == "") != (n.Password == "") {
		bad("nats.user", "want hub.nats.user and hub.nats.password both set or both empty")
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		bad("nats.tls_cert", "want hub.nats.tls_cert and hub.nats.tls_key both set or both empty")
	}
	if n.PresenceTTL < time.Second {
		bad("nats.presence_ttl", `want at least "1s", got %s`, n.PresenceTTL)
	}
}

package natsbroker

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures a NATS server run inside the hub process.
type EmbeddedConfig struct {
	// Listen is the host:port other hub nodes connect to; port 0 picks a
	// free one.
	Listen string
	// Dir stores JetStream's files; it survives restarts.
	Dir string
	// Name names the server; empty lets NATS pick one.
	Name string
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it takes connections. The caller stops it with Shutdown and
// WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: embedded listen %q: %w", cfg.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: embedded listen %q: %w", cfg.Listen, err)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("natsbroker: embedded: no storage directory")
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       p,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbroker: embedded: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsbroker: embedded: not ready after 10s on %s", cfg.Listen)
	}
	return srv, nil
}

// StopWith makes Run shut srv down when it ends: the broker owns the
// embedded server it connects to.
func (b *Broker) StopWith(srv *server.Server) {
	b.onStop = append(b.onStop, func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
}

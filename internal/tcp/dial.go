package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// DialConfig is where Dial connects and how.
type DialConfig struct {
	Addr    string        // HOST:PORT
	TLS     *tls.Config   // if not nil, speak TLS
	Timeout time.Duration // to connect, TLS handshake included; 0 means 10s
}

// Dial connects to cfg.Addr and copies stdin to the connection and the
// connection to stdout. At the end of stdin it closes its sending half
// (TCP FIN, or TLS close_notify) and keeps printing what the server sends;
// it returns when the server closes the connection or ctx ends.
//
// A Read of stdin in progress cannot be interrupted; if the server closes
// first, Dial returns without waiting for it (the program then exits).
func Dial(ctx context.Context, cfg DialConfig, stdin io.Reader, stdout io.Writer) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	conn, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	sent := make(chan error, 1) // buffered: the copier never blocks on it
	go func() {
		_, err := io.Copy(conn, stdin)
		if err == nil {
			err = conn.(interface{ CloseWrite() error }).CloseWrite()
		}
		sent <- err
	}()
	_, err = io.Copy(stdout, conn)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("tcp: receive: %w", err)
	}
	select {
	case err := <-sent:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("tcp: send: %w", err)
		}
	default: // stdin still open: the server closed first
	}
	return nil
}

// connect dials cfg.Addr and does the TLS handshake.
func connect(ctx context.Context, cfg DialConfig) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	if cfg.TLS == nil {
		return c, nil
	}
	tc := cfg.TLS.Clone()
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		tc.ServerName = host
	}
	conn := tls.Client(c, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tcp: tls: %w", err)
	}
	return conn, nil
}

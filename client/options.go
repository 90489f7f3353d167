package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"
)

// Option configures a Client; pass them to Dial.
type Option func(*options)

type options struct {
	token            string
	refresh          func(ctx context.Context) (string, error)
	netDial          func(ctx context.Context, network, addr string) (net.Conn, error)
	tls              *tls.Config
	reconnect        ReconnectPolicy
	log              *slog.Logger
	handshakeTimeout time.Duration
	readTimeout      time.Duration
	onDisconnect     func(error)
	onConnect        func()
	onDirect         func(Direct)
}

// WithToken sends token (a JWT) to the hub as "Authorization: Bearer" when
// connecting.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTokenRefresh sets a function that returns a fresh token. The client
// calls it before each reconnect and, for a JWT with an "exp" claim, shortly
// before it expires, then renews the connection's credentials with the
// hub's refresh command. An error from it is logged; the old token stays.
func WithTokenRefresh(f func(ctx context.Context) (string, error)) Option {
	return func(o *options) { o.refresh = f }
}

// WithNetDialer sets the function that opens the TCP connection (for a
// proxy, a chosen source address or a test's listener).
func WithNetDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.netDial = dial }
}

// WithTLSConfig sets the TLS configuration of wss:// connections.
func WithTLSConfig(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithReconnect sets the reconnect policy; see ReconnectPolicy.
func WithReconnect(p ReconnectPolicy) Option { return func(o *options) { o.reconnect = p } }

// WithLogger sets the logger of connection events; nil discards them (the
// default).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithHandshakeTimeout bounds the WebSocket upgrade and the wait for the
// hub's welcome (default 10s).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) { o.handshakeTimeout = d }
}

// WithReadTimeout sets how long the client waits for anything from the hub
// (its pings included) before it takes the connection for dead and
// reconnects. The default, 60s, suits the hub's default ping interval of
// 25s; 0 waits forever.
func WithReadTimeout(d time.Duration) Option { return func(o *options) { o.readTimeout = d } }

// OnDisconnect sets a function called with the cause each time a
// connection ends other than by Close: a *DisconnectError when the hub
// said why, else the network error. It runs on the client's own goroutine
// and must not call Close.
func OnDisconnect(f func(err error)) Option { return func(o *options) { o.onDisconnect = f } }

// OnConnect sets a function called after each reconnect, once every
// subscription has been renewed. It runs on the client's own goroutine and
// must not call Close.
func OnConnect(f func()) Option { return func(o *options) { o.onConnect = f } }

// OnDirect sets a function that gets the hub's direct messages (Send) to
// this client's user. It runs on the connection's reader and must return
// quickly without calling the client.
func OnDirect(f func(Direct)) Option { return func(o *options) { o.onDirect = f } }

// ReconnectPolicy says how the client reconnects after a connection ends.
// The zero value reconnects for ever with the defaults below.
type ReconnectPolicy struct {
	// Disabled stops the client when its connection ends.
	Disabled bool
	// MinDelay is the wait before the first retry (default 100ms). Each
	// failed attempt doubles it, up to MaxDelay (default 10s); every wait is
	// drawn at random between half and all of it (jitter), so that clients
	// cut off together do not return together.
	MinDelay, MaxDelay time.Duration
	// GiveUpAfter stops the client when no connection succeeded for this
	// long since the last one ended; 0 never gives up.
	GiveUpAfter time.Duration
}

// delay returns the wait before attempt n (0 for the first retry).
func (p ReconnectPolicy) delay(n int) time.Duration {
	lo, hi := p.MinDelay, p.MaxDelay
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

func defaultOptions() options {
	return options{
		handshakeTimeout: 10 * time.Second,
		readTimeout:      60 * time.Second,
	}
}

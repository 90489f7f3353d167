// Package hub is the WebSocket message hub: connections, the client map,
// protocol v1 commands, and the HTTP API for backends. Fan-out between
// nodes goes through a broker.Broker.
package hub

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// ErrServerClosed is returned by Serve when it is called on a server that
// has already served.
var ErrServerClosed = errors.New("hub: server closed")

// channelIdleTTL is how long the memory broker keeps the sequence of a
// channel that has no subscribers and no messages.
const channelIdleTTL = 10 * time.Minute

// Options carries what a Server needs besides its Config.
type Options struct {
	Logger  *slog.Logger // nil discards logs
	Version string       // reported in welcome pushes and /api/info
	// Broker, when not nil, makes the broker that connects this node to
	// the others; it gets the hub as its Handler. Nil means the
	// single-node memory broker.
	Broker func(h broker.Handler) (broker.Broker, error)
	// Pollers is the number of event-loop goroutines; 0 means GOMAXPROCS.
	Pollers int
	// Registry gets the hub's metrics, served at GET /metrics. Nil turns
	// metrics off (and /metrics answers 404). Give each hub of a process
	// its own registry: prometheus.NewRegistry().
	Registry *prometheus.Registry
}

// Server is one hub node. Create it with New and run it with Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	version  string
	nodeID   string
	apiKey   string
	started  time.Time
	broker   broker.Broker
	reg      *registry
	handler  http.Handler
	layer    *wsloop.Layer // the WebSocket connection layer
	closings map[wsloop.Reason]wsloop.Closing
	tls      *tls.Config          // nil: plain TCP
	registry *prometheus.Registry // nil: no metrics
	metrics  *metrics             // nil: no metrics (metrics.go)

	inline bool       // the broker never blocks: commands may run on the event loop
	ns     namespaces // channel options by namespace
	access access     // origins, tokens, rate limits

	served   atomic.Bool
	notReady atomic.Bool   // /readyz answers 503: set when shutdown starts
	draining atomic.Bool   // set once, under connsMu, when the listener closes
	stop     chan struct{} // closed by the first Shutdown
	stopOnce sync.Once
	cut      chan struct{} // closed when Shutdown's ctx ends: drop everything
	cutOnce  sync.Once
	done     chan struct{} // closed when Serve has finished

	connsMu sync.Mutex
	conns   sync.WaitGroup // one count per WebSocket connection goroutine
}

// New validates cfg and returns a server ready to Serve. Without an API key
// in cfg it generates one and logs it once.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		version: opts.Version,
		nodeID:  cfg.NodeID,
		apiKey:  cfg.APIKey,
		started: time.Now(),
		reg:     newRegistry(cfg.MaxConnections),
	}
	if s.version == "" {
		s.version = "dev"
	}
	if s.nodeID == "" {
		s.nodeID = "node-" + randomHex(4)
	}
	if s.apiKey == "" {
		s.apiKey = randomHex(16)
		log.Warn("no API key configured; generated one for this run (set hub.api_key to keep it)", "api_key", s.apiKey)
	}
	s.stop = make(chan struct{})
	s.cut = make(chan struct{})
	s.done = make(chan struct{})
	s.ns = newNamespaces(&s.cfg)
	acc, err := newAccess(&s.cfg)
	if err != nil {
		return nil, err
	}
	s.access = acc
	if opts.Broker != nil {
		b, err := opts.Broker(s)
		if err != nil {
			return nil, fmt.Errorf("hub: broker: %w", err)
		}
		s.broker = b
	} else if cfg.Broker == BrokerNATS || cfg.Broker == BrokerNATSEmbedded {
		b, err := s.newNATSBroker(s)
		if err != nil {
			return nil, fmt.Errorf("hub: broker: %w", err)
		}
		s.broker = b
	} else {
		store := history.NewMemory(history.MemoryConfig{
			MaxBytes: cfg.HistoryMaxBytes,
			Limits:   s.ns.limits,
			IdleTTL:  channelIdleTTL,
		})
		s.broker = broker.NewMemory(store, s)
	}
	s.inline = s.broker.NonBlocking()
	s.registry = opts.Registry
	if opts.Registry != nil {
		if s.metrics, err = newMetrics(opts.Registry, s); err != nil {
			return nil, err
		}
	}
	if err := s.newLayer(opts.Pollers); err != nil {
		return nil, err
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("hub.tls_cert, hub.tls_key: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s.handler = s.routes()
	return s, nil
}

// APIKey returns the key the HTTP API accepts.
func (s *Server) APIKey() string { return s.apiKey }

// NodeID returns the node's name.
func (s *Server) NodeID() string { return s.nodeID }

// Handler returns the hub's HTTP handler: the WebSocket endpoint, the API
// and the health probes.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on ln until ctx ends or Shutdown is called,
// then shuts down as Shutdown describes, with hub.shutdown_grace as the
// grace period when ctx ended. It returns nil after a shutdown, or an
// error if the listener or the broker failed. A Server serves once; a
// second call returns ErrServerClosed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.served.Swap(true) {
		return ErrServerClosed
	}
	defer close(s.done)
	bctx, stopBackground := context.WithCancel(context.Background())
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- s.broker.Run(bctx) }()
	loopDone := make(chan error, 1)
	go func() { loopDone <- s.layer.Run(bctx) }()
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}

	timeout := s.cfg.HTTPTimeout
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: timeout,
		ReadTimeout:       2 * timeout, // headers and body of API requests; upgrades clear it
		WriteTimeout:      2*timeout + s.cfg.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- hs.Serve(ln) }()

	var serveErr error
	graceful := true
	select {
	case <-ctx.Done():
		s.stopOnce.Do(func() { close(s.stop) })
	case <-s.stop:
	case serveErr = <-serveDone:
		serveErr = fmt.Errorf("hub: serve: %w", serveErr)
		graceful = false
	}
	err := s.shutdown(hs, graceful)
	if serveErr == nil {
		<-serveDone // http.ErrServerClosed after Shutdown
	}
	stopBackground()
	if berr := <-brokerDone; berr != nil {
		err = errors.Join(err, fmt.Errorf("hub: broker: %w", berr))
	}
	if lerr := <-loopDone; lerr != nil {
		err = errors.Join(err, fmt.Errorf("hub: %w", lerr))
	}
	return errors.Join(serveErr, err)
}

// HTTP limits of the hub's server.
const (
	idleTimeout    = 2 * time.Minute // keep-alive connections between API requests
	maxHeaderBytes = 64 << 10        // request line and headers; larger get 431
)

// Shutdown stops the hub the way net/http's Server.Shutdown does, for
// WebSocket clients too: /readyz answers 503 at once; after
// hub.drain_delay the listener closes and every client gets the shutdown
// disconnect (close 1001). Shutdown waits until Serve has finished. When
// ctx ends first, the remaining connections are cut off and Shutdown
// returns ctx's error. Calling it before Serve returns at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	if !s.served.Load() {
		return nil // a later Serve sees stop and shuts down at once
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cutOff()
		<-s.done
		return ctx.Err()
	}
}

// shutdown stops hs and disconnects every client within the grace
// period. graceful false skips the drain delay (the listener failed).
func (s *Server) shutdown(hs *http.Server, graceful bool) error {
	s.notReady.Store(true)
	if graceful && s.cfg.DrainDelay > 0 {
		s.log.Info("draining: /readyz answers 503 until the listener closes", "drain_delay", s.cfg.DrainDelay)
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case <-s.cut:
		}
		t.Stop()
	}
	s.connsMu.Lock()
	s.draining.Store(true)
	s.connsMu.Unlock()
	grace, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Shutdown(grace) }()

	clients := s.reg.closeAll()
	s.log.Info("shutting down", "clients", len(clients), "grace", s.cfg.ShutdownGrace)
	for _, c := range clients {
		c.conn.Close(closingFor(protocol.DisconnectShutdown))
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-grace.Done():
		s.log.Warn("grace period ended; cutting off the remaining connections", "grace", s.cfg.ShutdownGrace)
		s.abortAll(clients, hs)
		<-done
	case <-s.cut:
		s.abortAll(clients, hs)
		<-done
	}
	<-httpDone // a deadline here means API requests were cut off: not a failure of the shutdown
	return nil
}

// cutOff makes a running shutdown drop what is left at once.
func (s *Server) cutOff() { s.cutOnce.Do(func() { close(s.cut) }) }

func (s *Server) abortAll(clients []*client, hs *http.Server) {
	hs.Close()
	for _, c := range clients {
		c.conn.Abort()
	}
}

// serveWS upgrades an HTTP request and hands the connection to the
// connection layer. The query parameter frames=joined asks for several
// objects due at once in one "\n"-joined frame. The client is registered
// before the 101 response is written, and its welcome leaves with the 101
// in one write(2): a client that has read its welcome can be reached. A
// client the hub has no room for gets the 101 response alone and then its
// disconnect.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		writeError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeInternal, "hub is shutting down"))
		return
	}
	claims, ok := s.admit(w, r)
	if !ok {
		s.conns.Done()
		return // admit has answered
	}
	room := s.reg.reserve()
	joined := strings.Contains(r.URL.RawQuery, "frames=") && r.URL.Query().Get("frames") == "joined" // parse the query (a long token) only if it may say so
	pending, err := s.layer.Hijack(w, r, wsloop.Options{Joined: joined})
	if err != nil {
		if room == nil {
			s.reg.release()
		}
		s.conns.Done()
		return // upgradeError has answered
	}
	user := "anon-" + randomHex(4)
	if claims != nil {
		user = claims.User
	}
	c := &client{
		srv:  s,
		conn: pending.Conn(),
		info: protocol.ClientInfo{Client: randomHex(8), User: user},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.startSession(claims)
	var greeting [][]byte
	if s.startClient(c, room) {
		greeting = [][]byte{protocol.AppendWelcome(nil, protocol.Welcome{Client: c.info.Client, User: c.info.User, Node: s.nodeID, Version: s.version})}
	}
	pending.Accept(greeting) // on failure Start ends the connection at once
	c.conn.Start(c)
}

// track counts a new connection, unless the server is shutting down.
func (s *Server) track() bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.conns.Add(1)
	return true
}

// startClient registers c in the place reserved for it (room is what
// reserve returned) and reports whether it did; when the hub is full or
// shutting down it closes c instead. c's transport then runs it and calls
// OnClose at the end.
func (s *Server) startClient(c *client, room error) bool {
	err := room
	if err == nil {
		err = s.reg.addReserved(c)
	}
	switch {
	case errors.Is(err, errTooManyClients):
		s.log.Warn("connection refused: limit reached", "remote", c.conn.RemoteAddr(), "max_connections", s.cfg.MaxConnections)
		c.conn.Close(closingFor(protocol.Disconnect{Code: "policy", Reason: "connection limit reached; try again later", CloseStatus: 1013}))
		return false
	case err != nil:
		c.conn.Close(closingFor(protocol.DisconnectShutdown))
		return false
	}
	s.metrics.connected()
	s.log.Debug("client connected", "client", c.info.Client, "user", c.info.User, "remote", c.conn.RemoteAddr(), "path", c.conn.Path())
	return true
}

func (s *Server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	code := protocol.CodeBadRequest
	for c, st := range statusOf {
		if st == status {
			code = c
		}
	}
	writeError(w, status, protocol.Errorf(code, "websocket upgrade failed: %v", reason))
}

// HandlePublication implements broker.Handler: encode once, share the bytes.
func (s *Server) HandlePublication(p broker.Publication) {
	s.metrics.sent(outPublication, s.reg.fanOut(p.Channel, p.Push, ""), len(p.Push))
}

// HandleJoinLeave implements broker.Handler. The subject client gets no
// push about itself.
func (s *Server) HandleJoinLeave(channel string, join bool, c protocol.ClientInfo) {
	push := protocol.AppendJoinLeave(nil, join, channel, c)
	s.metrics.sent(outJoinLeave, s.reg.fanOut(channel, push, c.Client), len(push))
}

// HandleDirect implements broker.Handler.
func (s *Server) HandleDirect(user string, push []byte) int {
	n := 0
	for _, c := range s.reg.userClients(user) {
		if c.conn.Enqueue(push) != wsloop.Dropped {
			n++
		}
	}
	s.metrics.sent(outDirect, n, len(push))
	return n
}

// HandleDisconnectUser implements broker.Handler.
func (s *Server) HandleDisconnectUser(user string) int {
	clients := s.reg.userClients(user)
	for _, c := range clients {
		c.conn.Close(closingFor(protocol.DisconnectKicked))
	}
	return len(clients)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

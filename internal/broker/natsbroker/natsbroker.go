// Package natsbroker is the cluster broker: hub nodes that share one NATS
// server (or cluster) behave as one hub. Channel messages, their offsets
// and history live in one JetStream stream; presence and the channels'
// epochs in JetStream key-value buckets; join/leave events, direct sends
// and user disconnects travel as core NATS messages. It is the only user
// of nats.go in netkit.
package natsbroker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// ErrUnavailable is the cause of every call that failed because NATS
// cannot be reached; clients see it as the unavailable error code.
var ErrUnavailable = protocol.Errorf(protocol.CodeUnavailable, "the hub cannot reach its message broker (NATS); nothing was done, retry later")

// Names of the JetStream assets; several hubs on one NATS share them.
const (
	streamName    = "NETKIT_CHANNELS"
	epochBucket   = "netkit_epochs"
	presenceBkt   = "netkit_presence"
	nodesBucket   = "netkit_nodes"
	subjChannel   = "netkit.ch."   // + encoded channel: channel messages (the stream)
	subjStored    = "netkit.rp."   // + encoded channel: the stream republishes what it stored
	subjJoinLeave = "netkit.jl."   // + encoded channel: join and leave events
	subjUser      = "netkit.user." // + "send" or "disconnect": direct pushes and disconnects
)

// Headers of a channel message in the stream.
const (
	hdrOffset = "Netkit-Offset"
	hdrEpoch  = "Netkit-Epoch"
	hdrFrom   = "Netkit-From"
	hdrNode   = "Netkit-Node"
	hdrPrev   = "Netkit-Prev"  // stream sequence of the channel's message before
	hdrCount  = "Netkit-Count" // publications in a batch (message.go)
)

// Config configures a Broker.
type Config struct {
	// URLs of the NATS servers; several are the seeds of one cluster.
	URLs []string
	// User and Password, or Token, or CredsFile authenticate to NATS; all
	// empty connects without credentials.
	User, Password, Token, CredsFile string
	// TLSCA is a PEM file of the CA that signed the servers' certificates;
	// TLSCert and TLSKey are a client certificate, when the server asks.
	TLSCA, TLSCert, TLSKey string
	// NodeID names this node in presence and in its answers.
	NodeID string
	// Limits gives a channel's history limits (its namespace's); nil is
	// history.DefaultLimits for every channel.
	Limits func(channel string) history.Limits
	// MaxHistorySize and MaxHistoryTTL bound every channel's limits: the
	// stream keeps MaxHistorySize messages per channel (at least 1, so the
	// offset of the last message survives) for MaxHistoryTTL; 0 is the
	// default limits'.
	MaxHistorySize int
	MaxHistoryTTL  time.Duration
	// MaxBytes caps the stream's storage; over it the oldest messages go
	// first. 0 means no cap.
	MaxBytes int64
	// PresenceTTL is how long a presence entry lives without its node
	// refreshing it: a node that dies leaves presence within it. 0 is 30s.
	PresenceTTL time.Duration
	// Logger gets connection events; nil discards them.
	Logger *slog.Logger
}

// Broker is a broker.Broker over NATS JetStream. Create it with New and
// run it with Run; every method may block on the network.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	handler broker.Handler
	nc      *nats.Conn
	js      jetstream.JetStream
	onStop  []func() // run by Run when it ends (an embedded server's shutdown)

	setupMu  sync.Mutex
	assets   *assets            // guarded by setupMu; nil until set up on the current connection
	usersSub *nats.Subscription // guarded by setupMu; kept across reconnects
	ready    atomic.Bool        // connected and set up
	reconnCh chan struct{}

	mu       sync.Mutex
	channels map[string]*chanState // channels with local subscribers; guarded by mu
	pubs     map[string]*pubState  // per-channel publish sequencing; guarded by mu
	closed   bool                  // Run ended: publishes fail; guarded by mu
	senders  sync.WaitGroup        // publishing goroutines (publish.go), one per channel at most
	joined   map[string][]byte     // presence keys this node holds -> value; guarded by mu
}

// assets are the JetStream handles made by setup.
type assets struct {
	stream   jetstream.Stream
	epochs   jetstream.KeyValue
	presence jetstream.KeyValue
	nodes    jetstream.KeyValue
}

// New connects to NATS and returns a broker that delivers to h. A server
// that cannot be reached yet is not an error: the broker keeps trying in
// the background and fails calls with ErrUnavailable meanwhile.
func New(cfg Config, h broker.Handler) (*Broker, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("natsbroker: no NATS URL")
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 30 * time.Second
	}
	if cfg.MaxHistorySize <= 0 {
		cfg.MaxHistorySize = history.DefaultLimits.Size
	}
	if cfg.MaxHistoryTTL <= 0 {
		cfg.MaxHistoryTTL = history.DefaultLimits.TTL
	}
	if cfg.Limits == nil {
		cfg.Limits = func(string) history.Limits { return history.DefaultLimits }
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-" + history.NewEpoch()
	}
	b := &Broker{
		cfg:      cfg,
		log:      cfg.Logger,
		handler:  h,
		reconnCh: make(chan struct{}, 1),
		channels: make(map[string]*chanState),
		pubs:     make(map[string]*pubState),
		joined:   make(map[string][]byte),
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	nc, err := nats.Connect(joinURLs(cfg.URLs), b.options()...)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: connect %v: %w", cfg.URLs, err)
	}
	b.nc = nc
	// An async publish whose acknowledgement is lost (NATS restarted)
	// fails after publishTimeout, which also frees its place in nats.go.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbroker: jetstream: %w", err)
	}
	b.js = js
	return b, nil
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// options are the nats.go options: credentials, TLS, and reconnecting
// forever with backoff (no buffering while disconnected, so a publish
// fails at once rather than waiting for a server that may not return).
func (b *Broker) options() []nats.Option {
	c := b.cfg
	opts := []nats.Option{
		nats.Name("netkit hub " + c.NodeID),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.CustomReconnectDelay(backoff),
		// Keep trying after refused credentials too: a server may refuse
		// them for a while (its accounts reloading), and the default gives
		// up for good after two refusals in a row.
		nats.IgnoreAuthErrorAbort(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("nats error", "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.ready.Store(false)
			if err == nil { // closed by this node, at shutdown
				b.log.Info("nats connection closed")
				return
			}
			b.log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			b.kick()
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
			b.kick()
		}),
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts
}

// backoff is the wait before reconnect attempt n: 50ms doubling to 2s.
func backoff(attempts int) time.Duration {
	d := 50 * time.Millisecond
	for i := 1; i < attempts && d < 2*time.Second; i++ {
		d *= 2
	}
	return min(d, 2*time.Second)
}

func (b *Broker) kick() {
	select {
	case b.reconnCh <- struct{}{}:
	default:
	}
}

// NonBlocking implements broker.Broker: every call may wait on NATS.
func (b *Broker) NonBlocking() bool { return false }

// Ready reports why the broker cannot serve now, or nil: /readyz answers
// 503 while it is not nil.
func (b *Broker) Ready() error {
	if !b.nc.IsConnected() {
		if err := b.nc.LastError(); err != nil {
			return fmt.Errorf("natsbroker: not connected to NATS (%s): %w", b.nc.Status(), err)
		}
		return fmt.Errorf("natsbroker: not connected to NATS (%s)", b.nc.Status())
	}
	if !b.ready.Load() {
		return errors.New("natsbroker: JetStream stream and buckets not set up yet")
	}
	return nil
}

// Run refreshes this node's presence entries, sets JetStream up after
// every (re)connect and catches subscribed channels up with what was
// published meanwhile, until ctx ends; then it closes the connection.
func (b *Broker) Run(ctx context.Context) error {
	defer func() {
		b.nc.Close()
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.senders.Wait()
		for _, f := range b.onStop {
			f()
		}
	}()
	b.kick()
	tick := time.NewTicker(b.cfg.PresenceTTL / 3)
	defer tick.Stop()
	// setUpFor is the connection (counted by its reconnects) that the last
	// setup served: the kick of Run's start and that of the connect handler
	// name the same connection, which is set up once, so that /readyz does
	// not flip to 503 for a second setup right after the first.
	setUpFor := uint64(math.MaxUint64)
	for {
		select {
		case <-ctx.Done():
			b.removeNode()
			return nil
		case <-b.reconnCh:
			conn := b.nc.Stats().Reconnects
			if b.ready.Load() && conn == setUpFor {
				continue
			}
			b.setupMu.Lock()
			b.assets = nil
			b.setupMu.Unlock()
			b.ready.Store(false)
			if _, err := b.setup(ctx); err != nil {
				b.log.Warn("nats setup failed; retrying", "err", err, "nats_status", b.nc.Status().String(), "nats_last_error", b.nc.LastError())
				continue
			}
			setUpFor = conn
			b.log.Info("nats ready: stream and buckets set up", "stream", streamName, "reconnects", conn)
			b.refresh(ctx)
			b.catchUpAll(ctx)
		case <-tick.C:
			if !b.ready.Load() && b.nc.IsConnected() {
				b.kick()
			}
			b.refresh(ctx)
		}
	}
}

// setup creates or updates the stream and the buckets once per connection.
func (b *Broker) setup(ctx context.Context) (*assets, error) {
	b.setupMu.Lock()
	defer b.setupMu.Unlock()
	if b.assets != nil {
		return b.assets, nil
	}
	if !b.nc.IsConnected() {
		return nil, ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a := &assets{}
	var err error
	a.stream, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              streamName,
		Description:       "netkit hub channel messages: one subject per channel, the offset is in a header",
		Subjects:          []string{subjChannel + ">"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: int64(max(b.cfg.MaxHistorySize, 1)),
		MaxAge:            b.cfg.MaxHistoryTTL,
		MaxBytes:          orUnlimited(b.cfg.MaxBytes),
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
		// Nodes get a channel's messages from the stream's republish,
		// which carries only what the stream stored, in its order: a
		// publish that lost its compare-and-set race reaches nobody.
		RePublish: &jetstream.RePublish{Source: subjChannel + ">", Destination: subjStored + ">"},
	})
	if err != nil {
		return nil, fmt.Errorf("natsbroker: stream %s: %w", streamName, err)
	}
	if a.epochs, err = b.bucket(ctx, epochBucket, 0); err != nil {
		return nil, err
	}
	if a.presence, err = b.bucket(ctx, presenceBkt, b.cfg.PresenceTTL); err != nil {
		return nil, err
	}
	if a.nodes, err = b.bucket(ctx, nodesBucket, b.cfg.PresenceTTL); err != nil {
		return nil, err
	}
	if b.usersSub == nil {
		if b.usersSub, err = b.subscribeUsers(); err != nil {
			return nil, fmt.Errorf("natsbroker: subscribe %s: %w", subjUser+"*", err)
		}
	}
	b.assets = a
	b.ready.Store(true)
	return a, nil
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

func (b *Broker) bucket(ctx context.Context, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, TTL: ttl, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("natsbroker: bucket %s: %w", name, err)
	}
	return kv, nil
}

// ready returns the JetStream handles, setting them up if needed, or
// ErrUnavailable.
func (b *Broker) get(ctx context.Context) (*assets, error) {
	if !b.nc.IsConnected() {
		return nil, ErrUnavailable
	}
	a, err := b.setup(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return a, nil
}

// unavailable maps a failure to reach NATS to ErrUnavailable.
func unavailable(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnavailable),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrReconnectBufExceeded):
		return fmt.Errorf("%w (%v)", ErrUnavailable, err)
	}
	return err
}

// enc makes a channel name or a client id one NATS subject token.
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

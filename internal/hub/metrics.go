package hub

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// Metrics. Every counter is a prometheus child resolved once in
// newMetrics and kept in a read-only map, so a hook costs a map lookup and
// an atomic add: no lock, no allocation. Fan-out counts once per
// publication (deliveries = subscribers), never per delivery. Gauges of
// the registry (connections, channels, subscriptions) are read at scrape
// time. A nil *metrics (Options.Registry nil) makes every hook a no-op.

// Label values outside the known sets are counted under "other".
const otherLabel = "other"

// metricOps are the label values of messages in by op: the protocol's
// commands, and "invalid" for a command that did not decode.
var metricOps = []string{
	protocol.OpSubscribe, protocol.OpUnsubscribe, protocol.OpPublish, protocol.OpSend,
	protocol.OpPresence, protocol.OpPing, protocol.OpHistory, protocol.OpRefresh, "invalid",
}

// Kinds of outbound objects: label values of messages out by op.
const (
	outPublication = "publication" // a channel message to a subscriber
	outJoinLeave   = "join_leave"  // a join or leave push
	outDirect      = "direct"      // a direct message from send
	outReply       = "reply"       // a reply, error or recovered message for the client itself
)

// Kinds of backpressure events.
const (
	bpGateHold   = "gate_hold"   // a subscriber over its soft limit closed its channel's gate
	bpReadPause  = "read_pause"  // a connection's reading paused while its commands waited
	bpAPIWait    = "api_wait"    // an API publish waited for a closed gate
	bpReplyQueue = "reply_queue" // a client's own replies put its queue over its soft limit
)

// disconnectCodes are the label values of disconnects by code; "peer" is a
// connection the client closed or lost.
var disconnectCodes = []string{"shutdown", "slow_consumer", "too_large", "policy", "token_expired", "bad_request", "peer"}

var errorCodes = []protocol.Code{
	protocol.CodeBadRequest, protocol.CodeForbidden, protocol.CodeNotFound, protocol.CodeTooLarge,
	protocol.CodeTooManyRequests, protocol.CodeInternal, protocol.CodeUnavailable,
	protocol.CodeUnauthorized, protocol.CodeMethodNotAllowed,
}

type metrics struct {
	connects       prometheus.Counter
	disconnects    map[string]prometheus.Counter
	in             map[string]prometheus.Counter
	out            map[string]prometheus.Counter
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
	errors         map[protocol.Code]prometheus.Counter
	latency        map[string]prometheus.Observer
	publishLatency prometheus.Observer
	backpressure   map[string]prometheus.Counter
}

// newMetrics registers the hub's metrics with reg; nil reg gives nil.
func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	const ns, sub = "netkit", "hub"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	vec := func(name, help, label string, values []string, other bool) (*prometheus.CounterVec, map[string]prometheus.Counter) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, []string{label})
		m := make(map[string]prometheus.Counter, len(values)+1)
		if other {
			values = append(values[:len(values):len(values)], otherLabel)
		}
		for _, lv := range values {
			m[lv] = v.WithLabelValues(lv)
		}
		return v, m
	}
	m := &metrics{
		connects: counter("connections_total", "WebSocket connections accepted."),
		bytesIn:  counter("received_bytes_total", "Bytes of WebSocket messages received from clients (payloads)."),
		bytesOut: counter("sent_bytes_total", "Bytes of server objects queued for clients (payloads, each subscriber counted)."),
	}
	disc, dm := vec("disconnects_total", "Connections ended, by disconnect code; peer: the client closed or went away.", "code", disconnectCodes, true)
	in, im := vec("messages_in_total", "Commands received, by op; invalid: a command that did not decode.", "op", metricOps, false)
	out, om := vec("messages_out_total", "Server objects queued for clients, by kind.", "op", []string{outPublication, outJoinLeave, outDirect, outReply}, false)
	codes := make([]string, len(errorCodes))
	for i, c := range errorCodes {
		codes[i] = string(c)
	}
	errs, em := vec("errors_total", "Errors answered to WebSocket commands and API requests, by code.", "code", codes, true)
	bp, bm := vec("backpressure_events_total", "Flow-control events: gate_hold (a slow subscriber held its channel's publishers), read_pause (a connection stopped being read while its commands waited), api_wait (an API publish waited for a gate), reply_queue (a client's replies filled its own queue).", "kind", []string{bpGateHold, bpReadPause, bpAPIWait, bpReplyQueue}, false)
	m.disconnects, m.in, m.out, m.backpressure = dm, im, om, bm
	m.errors = make(map[protocol.Code]prometheus.Counter, len(em))
	for k, c := range em {
		m.errors[protocol.Code(k)] = c
	}
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "command_duration_seconds",
		Help:    "Time from a command's start to its reply being queued, by op (waits in the connection's queue not included).",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10µs .. 2.6s
	}, []string{"op"})
	m.latency = make(map[string]prometheus.Observer, len(metricOps))
	for _, op := range metricOps {
		m.latency[op] = lat.WithLabelValues(op)
	}
	pub := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "broker_publish_duration_seconds",
		Help:    "Time the broker took to accept a publication (WebSocket and API).",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
	})
	m.publishLatency = pub
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		m.connects, m.bytesIn, m.bytesOut, disc, in, out, errs, bp, lat, pub,
		gauge("connections", "WebSocket connections open now.", func() float64 { n, _, _ := s.reg.stats(); return float64(n) }),
		gauge("channels", "Channels with local subscribers now.", func() float64 { _, n, _ := s.reg.stats(); return float64(n) }),
		gauge("subscriptions", "Subscriptions of local clients now.", func() float64 { _, _, n := s.reg.stats(); return float64(n) }),
		gauge("queue_high_water_messages", "The most server objects any open connection's outbound queue has held at once since it connected (hub.queue_messages is the soft limit, twice it drops the connection).", func() float64 { return float64(s.reg.queuePeak()) }),
		gauge("gates_closed", "Channels whose publishers are held now because a subscriber is over its soft limit.", func() float64 { return float64(s.reg.closedGates()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("hub: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) connected() {
	if m != nil {
		m.connects.Inc()
	}
}

func (m *metrics) disconnected(code string) {
	if m == nil {
		return
	}
	c, ok := m.disconnects[code]
	if !ok {
		c = m.disconnects[otherLabel]
	}
	c.Inc()
}

// received counts one inbound message of n bytes.
func (m *metrics) received(n int) {
	if m != nil {
		m.bytesIn.Add(float64(n))
	}
}

// command counts one inbound command.
func (m *metrics) command(op string, valid bool) {
	if m == nil {
		return
	}
	c, ok := m.in[op]
	if !ok || !valid {
		c = m.in["invalid"]
	}
	c.Inc()
}

// sent counts objects of kind, n copies of size bytes each.
func (m *metrics) sent(kind string, n, size int) {
	if m == nil || n == 0 {
		return
	}
	m.out[kind].Add(float64(n))
	m.bytesOut.Add(float64(n * size))
}

func (m *metrics) failed(code protocol.Code) {
	if m == nil {
		return
	}
	c, ok := m.errors[code]
	if !ok {
		c = m.errors[otherLabel]
	}
	c.Inc()
}

// start returns the time to pass to ran; zero when metrics are off.
func (m *metrics) start() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

func (m *metrics) ran(op string, start time.Time) {
	if m == nil {
		return
	}
	if o, ok := m.latency[op]; ok {
		o.Observe(time.Since(start).Seconds())
	}
}

func (m *metrics) published(start time.Time) {
	if m != nil {
		m.publishLatency.Observe(time.Since(start).Seconds())
	}
}

func (m *metrics) backpressured(kind string) {
	if m != nil {
		m.backpressure[kind].Inc()
	}
}

// closedGates counts the channels whose gate is closed now.
func (r *registry) closedGates() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, ch := range r.channels {
		if !ch.flow.open() {
			n++
		}
	}
	return n
}

// queuePeak returns the highest outbound queue high-water mark of the
// clients connected now. It copies the client list under the lock and asks
// each queue outside it.
func (r *registry) queuePeak() int {
	r.mu.RLock()
	conns := make([]wsloop.Conn, 0, len(r.clients))
	for c := range r.clients {
		conns = append(conns, c.conn)
	}
	r.mu.RUnlock()
	peak := 0
	for _, c := range conns {
		peak = max(peak, c.QueuePeak())
	}
	return peak
}

// serveMetrics answers GET /metrics from the registry of Options.Registry,
// or 404 when the hub has none.
func (s *Server) serveMetrics() http.Handler {
	if s.registry == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "this hub has no metrics registry"))
		})
	}
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}, Registry: s.registry})
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics: " + fmt.Sprint(v...)) }

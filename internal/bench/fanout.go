package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// FanoutConfig is the fanout scenario: Subscribers connections on one
// channel, Publishers connections publishing to it for Duration. Every
// subscriber checks every message for loss, duplicates and order; every
// delivery's latency is recorded.
type FanoutConfig struct {
	Subscribers int
	Publishers  int
	Size        int     // bytes of each message's data value
	Rate        float64 // messages per second, all publishers together; 0 means as fast as Window allows
	Window      int     // unacknowledged publishes per publisher
	Duration    time.Duration
	// Drain bounds the wait, after publishing stops, for acknowledgements
	// and deliveries still in flight. What has not arrived then is lost.
	Drain   time.Duration
	Channel string
	// PublishURL, when set, is where the publishers connect instead of
	// Config.URL: another node of a cluster, so that every message crosses
	// the nodes' broker.
	PublishURL string
}

// DefaultFanout returns 1000 subscribers, one publisher, 100-byte messages
// as fast as a window of 100 allows, for 10 seconds.
func DefaultFanout() FanoutConfig {
	return FanoutConfig{
		Subscribers: 1000,
		Publishers:  1,
		Size:        100,
		Window:      100,
		Duration:    10 * time.Second,
		Drain:       10 * time.Second,
		Channel:     "bench",
	}
}

// Name returns "fanout".
func (c *FanoutConfig) Name() string { return "fanout" }

func (c *FanoutConfig) connections() int { return c.Subscribers + c.Publishers }

func (c *FanoutConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Subscribers < 1 {
		bad("subscribers: want at least 1, got %d", c.Subscribers)
	}
	if c.Publishers < 1 || c.Publishers > 9999 {
		bad("publishers: want 1 to 9999, got %d", c.Publishers)
	}
	if c.Size < MinSize || c.Size > MaxSize {
		bad("size: want %d to %d bytes, got %d", MinSize, MaxSize, c.Size)
	}
	if c.Rate < 0 {
		bad("rate: want 0 (as fast as the window allows) or more messages per second, got %g", c.Rate)
	}
	if c.Window < 1 {
		bad("window: want at least 1, got %d", c.Window)
	}
	if c.Duration <= 0 {
		bad("duration: want a positive duration, got %v", c.Duration)
	}
	if c.Drain < 0 {
		bad("drain: want 0 or a positive duration, got %v", c.Drain)
	}
	if !validChannel(c.Channel) {
		bad("channel: want 1-255 printable ASCII characters without quotes or backslashes, got %q", c.Channel)
	}
	return errors.Join(errs...)
}

func (c *FanoutConfig) settings() map[string]any {
	return map[string]any{
		"subscribers":      c.Subscribers,
		"publishers":       c.Publishers,
		"size_bytes":       c.Size,
		"rate":             c.Rate,
		"window":           c.Window,
		"duration_seconds": c.Duration.Seconds(),
		"drain_seconds":    c.Drain.Seconds(),
		"channel":          c.Channel,
	}
}

// fanout is one run of the fanout scenario, or of a scenario built on it
// (backpressure).
type fanout struct {
	cfg   *FanoutConfig
	r     *runner
	label string // the scenario's name in progress lines
	limit uint64 // messages each publisher sends at most; 0 means no limit

	subs []*subscriber // index i set by the goroutine that opened it; nil if it failed
	pubs []*publisher

	latency   histogram
	published atomic.Uint64
	delivered atomic.Uint64
	frames    atomic.Uint64 // frames read by subscribers, for settle
	foreign   atomic.Uint64
	dropped   atomic.Int64
	closing   atomic.Bool // connections are being closed on purpose
	readers   sync.WaitGroup

	// stuck are subscribers that never read (backpressure), set before
	// publishing; stuckIDs maps their client ids to their index, for the
	// leave pushes that the readers see.
	stuck    []*stuckSub
	stuckIDs atomic.Pointer[map[string]int]
}

// stuckSub is a subscriber that never reads while the scenario runs.
type stuckSub struct {
	c    *conn
	left atomic.Int64 // Unix ns of the first leave push about it a reader saw; 0 if none
}

// subscriber is one subscribed connection.
type subscriber struct {
	c      *conn
	seqs   []seqTracker  // by publisher id - 1; owned by the reader until it returns
	unique atomic.Uint64 // distinct messages received, for the drain
	alive  atomic.Bool

	// Owned by the reader until it returns: why and when the server ended
	// the connection, if it did while the scenario ran, and the read error
	// that ended it.
	dropCode string
	dropErr  string
	dropped  time.Time
}

// publisher is one publishing connection.
type publisher struct {
	id     int // from 1
	c      *conn
	window chan struct{} // a token per unacknowledged publish
	sent   atomic.Uint64 // the last sequence number sent
	acked  atomic.Uint64
	errors atomic.Uint64
	dead   chan struct{} // closed when its reader returns

	mu      sync.Mutex
	refused []uint64 // sequence numbers the server answered with an error; guarded by mu
	lastErr string   // guarded by mu

	// Owned by the reader until it returns: why and when the server ended
	// the connection, if it did while the scenario ran.
	dropCode string
	dropped  time.Time
}

func (c *FanoutConfig) run(ctx context.Context, r *runner) error {
	f := &fanout{cfg: c, r: r, label: "fanout"}
	defer f.readers.Wait()
	if err := f.connect(ctx); err != nil {
		f.closeAll()
		return err
	}
	f.settle(ctx)
	r.windowStart()
	t0 := time.Now()
	f.publishFor(ctx, t0)
	t1 := time.Now()
	// Finish even when interrupted: the deliveries in flight decide loss.
	drainCtx := context.WithoutCancel(ctx)
	f.drain(drainCtx, t1.Add(c.Drain))
	t2 := time.Now()
	r.windowEnd(drainCtx, f.delivered.Load(), f.opened())
	f.closeAll()
	f.readers.Wait()
	f.report(t1.Sub(t0), t2.Sub(t1))
	if ctx.Err() != nil {
		r.report.warn("interrupted after %.1fs of publishing", t1.Sub(t0).Seconds())
	}
	return nil
}

// connect opens the subscribers and then the publishers, starting each
// one's reader as soon as it is open.
func (f *fanout) connect(ctx context.Context) error {
	c, r := f.cfg, f.r
	var st connectStats
	f.subs = make([]*subscriber, c.Subscribers)
	f.pubs = make([]*publisher, c.Publishers)
	r.setStatus(func() string {
		return fmt.Sprintf("%s: %s of %s connections open, %s errors", f.label,
			count(uint64(st.opened.Load())), count(uint64(c.connections())), count(uint64(st.failed.Load())))
	})
	start := time.Now()
	dialMany(ctx, c.Subscribers, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		conn, err := r.dialer.dialSubscribed(ctx, c.Channel)
		if err != nil {
			return err
		}
		s := &subscriber{c: conn, seqs: make([]seqTracker, c.Publishers)}
		s.alive.Store(true)
		f.subs[i] = s
		f.readers.Go(func() { f.readSubscriber(s) })
		return nil
	}, &st)
	subsOpened := int(st.opened.Load())
	pd := r.dialer
	if c.PublishURL != "" {
		d := *r.dialer
		d.url = c.PublishURL
		pd = &d
	}
	dialMany(ctx, c.Publishers, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		conn, err := pd.dial(ctx)
		if err != nil {
			return err
		}
		p := &publisher{id: i + 1, c: conn, window: make(chan struct{}, c.Window), dead: make(chan struct{})}
		f.pubs[i] = p
		f.readers.Go(func() { f.readReplies(p) })
		return nil
	}, &st)
	r.report.Connect = ConnectReport{
		Attempted:  c.connections(),
		Opened:     int(st.opened.Load()),
		Errors:     int(st.failed.Load()),
		FirstError: st.firstError(),
		Seconds:    time.Since(start).Seconds(),
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case subsOpened == 0:
		return fmt.Errorf("no subscriber could connect: %s", st.firstError())
	case int(st.opened.Load())-subsOpened < c.Publishers:
		return fmt.Errorf("%d of %d publishers could not connect: %s",
			c.Publishers-(int(st.opened.Load())-subsOpened), c.Publishers, st.firstError())
	}
	return nil
}

// settle waits until subscribers have read nothing for a while (at most
// settleMax), so that what subscribing caused (join pushes, with netkit's
// defaults: one per subscriber pair) is not measured with the messages.
func (f *fanout) settle(ctx context.Context) {
	f.r.setStatus(func() string { return f.label + ": waiting for the server to settle" })
	deadline := time.Now().Add(settleMax)
	last, quiet := f.frames.Load(), 0
	for quiet < 2 && time.Now().Before(deadline) && sleepCtx(ctx, settleQuiet/2) {
		n := f.frames.Load()
		if n == last {
			quiet++
		} else {
			last, quiet = n, 0
		}
	}
}

// Settling: no frame for settleQuiet, waiting at most settleMax.
const (
	settleQuiet = 200 * time.Millisecond
	settleMax   = 10 * time.Second
)

// readSubscriber reads one subscriber's messages until its connection
// ends.
func (f *fanout) readSubscriber(s *subscriber) {
	defer s.alive.Store(false)
	for {
		evs, err := s.c.readEvents()
		if err != nil {
			if !f.closing.Load() {
				f.dropped.Add(1)
				s.dropped = time.Now()
				s.dropErr = err.Error()
				if s.dropCode == "" {
					s.dropCode = closeCode(err)
				}
			}
			return
		}
		f.frames.Add(1)
		now := time.Now().UnixNano() // one clock read for the whole frame
		var n, uniq uint64
		for _, ev := range evs {
			switch ev.Kind {
			case EventPublication:
			case EventDisconnect:
				if s.dropCode == "" {
					s.dropCode = disconnectCode(ev.Text)
				}
				continue
			case EventLeave:
				f.sawLeave(ev.Client, now)
				continue
			default:
				continue
			}
			p, seq, ts, ok := parsePayload(ev.Data)
			if !ok || p < 1 || p > len(s.seqs) {
				f.foreign.Add(1)
				continue
			}
			t := &s.seqs[p-1]
			before := t.unique
			t.add(seq)
			uniq += t.unique - before
			f.latency.Record(time.Duration(now - ts))
			n++
		}
		if n > 0 {
			f.delivered.Add(n)
			s.unique.Add(uniq)
		}
	}
}

// sawLeave notes the first leave push about a stuck subscriber.
func (f *fanout) sawLeave(client []byte, now int64) {
	ids := f.stuckIDs.Load()
	if ids == nil || len(client) == 0 {
		return
	}
	if i, ok := (*ids)[string(client)]; ok {
		f.stuck[i].left.CompareAndSwap(0, now)
	}
}

// closeCode names how a connection ended: "close 1008" for a close frame
// with a status, else "connection error".
func closeCode(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d", ce.Code)
	}
	return "connection error"
}

// readReplies reads a publisher's replies, freeing a window slot for each.
func (f *fanout) readReplies(p *publisher) {
	defer close(p.dead)
	for {
		evs, err := p.c.readEvents()
		if err != nil {
			if !f.closing.Load() {
				f.dropped.Add(1)
				p.mu.Lock()
				p.lastErr = err.Error()
				p.mu.Unlock()
				p.dropped = time.Now()
				if p.dropCode == "" {
					p.dropCode = closeCode(err)
				}
			}
			return
		}
		for _, ev := range evs {
			if ev.Kind == EventDisconnect && p.dropCode == "" {
				p.dropCode = disconnectCode(ev.Text)
			}
			if ev.ID < firstPublishID || (ev.Kind != EventReply && ev.Kind != EventError) {
				continue
			}
			if ev.Kind == EventReply {
				p.acked.Add(1)
			} else {
				p.errors.Add(1)
				p.mu.Lock()
				p.refused = append(p.refused, ev.ID-firstPublishID+1)
				p.lastErr = string(ev.Text)
				p.mu.Unlock()
			}
			select {
			case <-p.window:
			default: // a reply to nothing outstanding: ignore
			}
		}
	}
}

// publishFor runs every publisher for the configured duration, or until
// ctx ends.
func (f *fanout) publishFor(ctx context.Context, start time.Time) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Duration)
	defer cancel()
	var prev uint64
	prevDelivered, prevT := uint64(0), start
	f.r.setStatus(func() string {
		now, pub, del := time.Now(), f.published.Load(), f.delivered.Load()
		dt := now.Sub(prevT).Seconds()
		s := fmt.Sprintf("%s %.0fs: %s published (%s/s), %s delivered (%s/s)",
			f.label, now.Sub(start).Seconds(), count(pub), count(uint64(float64(pub-prev)/dt)),
			count(del), count(uint64(float64(del-prevDelivered)/dt)))
		prev, prevDelivered, prevT = pub, del, now
		return s
	})
	rate := f.cfg.Rate / float64(f.cfg.Publishers)
	var wg sync.WaitGroup
	for _, p := range f.pubs {
		wg.Go(func() {
			if err := f.publish(ctx, p, rate, start); err != nil && !f.closing.Load() {
				p.mu.Lock()
				p.lastErr = err.Error()
				p.mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	var watchdog sync.WaitGroup
	watchdog.Go(func() { f.unblockWrites(ctx, done) })
	wg.Wait()
	close(done)
	watchdog.Wait()
}

// unblockWrites ends the publishers' writes that are still blocked the
// connection timeout after ctx ended (a server that stopped reading them,
// as one with backpressure may), so that publishing ends; the failed write
// is reported. It returns when done is closed.
func (f *fanout) unblockWrites(ctx context.Context, done <-chan struct{}) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(f.r.cfg.Timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		for _, p := range f.pubs {
			p.c.ws.NetConn().SetWriteDeadline(time.Now())
		}
	}
}

// pacingSlack is how early a rate-limited publisher may send rather than
// sleep: shorter sleeps are not precise anyway.
const pacingSlack = 200 * time.Microsecond

// publish sends numbered messages until ctx ends or the connection fails,
// at rate messages per second (0: whenever the window has room).
func (f *fanout) publish(ctx context.Context, p *publisher, rate float64, start time.Time) error {
	var data, cmd []byte
	var interval float64
	if rate > 0 {
		interval = float64(time.Second) / rate
	}
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		if f.limit > 0 && seq > f.limit {
			return nil
		}
		if interval > 0 {
			due := start.Add(time.Duration(float64(seq-1) * interval))
			if wait := time.Until(due); wait > pacingSlack && !sleepCtx(ctx, wait) {
				return nil
			}
		}
		select {
		case p.window <- struct{}{}:
		case <-p.dead:
			return nil
		case <-ctx.Done():
			return nil
		}
		data = appendPayload(data[:0], p.id, seq, time.Now().UnixNano(), f.cfg.Size)
		cmd = f.r.cfg.Dialect.Publish(cmd[:0], firstPublishID+seq-1, f.cfg.Channel, data)
		if err := p.c.write(cmd); err != nil {
			return err // reported as "publisher N: ..."
		}
		p.sent.Store(seq)
		f.published.Add(1)
	}
	return nil
}

// drain waits until every publish is answered and every live subscriber
// has every message, or until the deadline.
func (f *fanout) drain(ctx context.Context, deadline time.Time) {
	f.r.setStatus(func() string {
		return fmt.Sprintf("%s: draining, %s delivered", f.label, count(f.delivered.Load()))
	})
	const poll = 5 * time.Millisecond
	for !f.answered() {
		if time.Now().After(deadline) || !sleepCtx(ctx, poll) {
			return
		}
	}
	var acked uint64
	for _, p := range f.pubs {
		acked += p.acked.Load()
	}
	for !f.allReceived(acked) {
		if time.Now().After(deadline) || !sleepCtx(ctx, poll) {
			return
		}
	}
}

// answered reports whether every live publisher has its replies.
func (f *fanout) answered() bool {
	for _, p := range f.pubs {
		select {
		case <-p.dead:
		default:
			if len(p.window) > 0 {
				return false
			}
		}
	}
	return true
}

// allReceived reports whether every live subscriber has received n
// distinct messages.
func (f *fanout) allReceived(n uint64) bool {
	for _, s := range f.subs {
		if s != nil && s.alive.Load() && s.unique.Load() < n {
			return false
		}
	}
	return true
}

func (f *fanout) opened() int {
	n := 0
	for _, s := range f.subs {
		if s != nil {
			n++
		}
	}
	for _, p := range f.pubs {
		if p != nil {
			n++
		}
	}
	return n
}

// closeAll closes every connection; their readers then return.
func (f *fanout) closeAll() {
	f.closing.Store(true)
	conns := make([]*conn, 0, len(f.subs)+len(f.pubs))
	for _, s := range f.subs {
		if s != nil {
			conns = append(conns, s.c)
		}
	}
	for _, p := range f.pubs {
		if p != nil {
			conns = append(conns, p.c)
		}
	}
	for _, s := range f.stuck {
		conns = append(conns, s.c)
	}
	closeConns(conns, f.r.cfg.Concurrency)
}

// report fills the run's report once every reader has returned.
func (f *fanout) report(publishing, drain time.Duration) {
	rep := f.r.report
	rep.Elapsed = publishing.Seconds()
	rep.Drain = drain.Seconds()
	rep.Published = f.published.Load()
	rep.Delivered = f.delivered.Load()
	if s := publishing.Seconds(); s > 0 {
		rep.PublishedPerSec = float64(rep.Published) / s
	}
	if s := (publishing + drain).Seconds(); s > 0 {
		rep.DeliveredPerSec = float64(rep.Delivered) / s
	}
	rep.Connect.Dropped = int(f.dropped.Load())
	loss := &LossReport{Foreign: f.foreign.Load()}
	for _, p := range f.pubs {
		rep.PublishErrors += p.errors.Load()
		if p.lastErr != "" {
			rep.warn("publisher %d: %s", p.id, p.lastErr)
		}
	}
	for _, s := range f.subs {
		if s == nil {
			continue
		}
		var lost, dup, reord uint64
		for i, p := range f.pubs {
			t := &s.seqs[i]
			lost += t.lost(p.sent.Load(), p.refused)
			dup += t.duplicates
			reord += t.reordered
		}
		loss.Lost += lost
		loss.Duplicates += dup
		loss.Reordered += reord
		loss.SubscribersWithLoss += btoi(lost > 0)
		loss.SubscribersWithDuplicates += btoi(dup > 0)
		loss.SubscribersReordered += btoi(reord > 0)
		loss.Expected += rep.Published - rep.PublishErrors
	}
	rep.Loss = loss
	rep.Latency = latencyReport(&f.latency)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// closeConns closes conns, at most concurrency at a time.
func closeConns(conns []*conn, concurrency int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.close()
		})
	}
	wg.Wait()
}

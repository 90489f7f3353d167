package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"time"
)

// BackpressureConfig is the backpressure scenario: one publisher pipelines
// publishes to Channel (it sends without waiting for replies) to
// Subscribers connections that read as fast as they can, and Stuck more
// that subscribe and then never read. It shows what a server does when a
// publisher is faster than its readers: whether it slows the publisher
// (backpressure) or drops readers that are reading, and whether it drops
// the stuck ones, and when.
type BackpressureConfig struct {
	Subscribers int
	Stuck       int           // subscribers that never read
	Size        int           // bytes of each message's data value
	Count       int           // messages to publish; 0 means as many as fit in Duration
	Duration    time.Duration // publishing stops after this long, even before Count
	// Drain bounds the wait, after publishing stops, for replies and
	// deliveries still in flight. What has not arrived then is lost.
	Drain   time.Duration
	Channel string
}

// DefaultBackpressure returns 100 reading subscribers, no stuck one,
// 100-byte messages pipelined for 10 seconds.
func DefaultBackpressure() BackpressureConfig {
	return BackpressureConfig{
		Subscribers: 100,
		Size:        100,
		Duration:    10 * time.Second,
		Drain:       10 * time.Second,
		Channel:     "backpressure",
	}
}

// stuckRcvBuf is the receive buffer a stuck subscriber asks for, so that
// its kernel stops taking messages soon, as a busy or hung client's does.
const stuckRcvBuf = 4096

// Name returns "backpressure".
func (c *BackpressureConfig) Name() string { return "backpressure" }

func (c *BackpressureConfig) connections() int { return c.Subscribers + c.Stuck + 1 }

func (c *BackpressureConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Subscribers < 1 {
		bad("subscribers: want at least 1, got %d", c.Subscribers)
	}
	if c.Stuck < 0 {
		bad("stuck: want 0 or more, got %d", c.Stuck)
	}
	if c.Size < MinSize || c.Size > MaxSize {
		bad("size: want %d to %d bytes, got %d", MinSize, MaxSize, c.Size)
	}
	if c.Count < 0 {
		bad("count: want 0 (as many as fit in the duration) or more, got %d", c.Count)
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

func (c *BackpressureConfig) settings() map[string]any {
	return map[string]any{
		"subscribers":      c.Subscribers,
		"stuck":            c.Stuck,
		"size_bytes":       c.Size,
		"count":            c.Count,
		"duration_seconds": c.Duration.Seconds(),
		"drain_seconds":    c.Drain.Seconds(),
		"channel":          c.Channel,
	}
}

// fanout returns the fanout that the scenario runs: one publisher whose
// window never fills, so that it never waits for a reply.
func (c *BackpressureConfig) fanout() *FanoutConfig {
	return &FanoutConfig{
		Subscribers: c.Subscribers,
		Publishers:  1,
		Size:        c.Size,
		Window:      math.MaxInt32, // a channel of empty structs: no memory
		Duration:    c.Duration,
		Drain:       c.Drain,
		Channel:     c.Channel,
	}
}

func (c *BackpressureConfig) run(ctx context.Context, r *runner) error {
	f := &fanout{cfg: c.fanout(), r: r, label: "backpressure", limit: uint64(c.Count)}
	defer f.readers.Wait()
	err := f.connect(ctx)
	if err == nil {
		err = f.connectStuck(ctx, c.Stuck)
	}
	if err != nil {
		f.closeAll()
		return err
	}
	f.settle(ctx)
	r.windowStart()
	t0 := time.Now()
	f.publishFor(ctx, t0)
	t1 := time.Now()
	drainCtx := context.WithoutCancel(ctx)
	f.drain(drainCtx, t1.Add(c.Drain))
	t2 := time.Now()
	r.windowEnd(drainCtx, f.delivered.Load(), f.opened()+len(f.stuck))
	stuck := f.readStuck(drainCtx, t0)
	f.closeAll()
	f.readers.Wait()
	f.report(t1.Sub(t0), t2.Sub(t1))
	f.backpressureReport(t0, stuck)
	if ctx.Err() != nil {
		r.report.warn("interrupted after %.1fs of publishing", t1.Sub(t0).Seconds())
	}
	return nil
}

// connectStuck opens n subscribers that will not be read, after the
// readers, so that the readers see them leave.
func (f *fanout) connectStuck(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	var st connectStats
	stuck := make([]*stuckSub, n)
	d := newDialer(&f.r.cfg, stuckRcvBuf)
	dialMany(ctx, n, f.r.cfg.Concurrency, func(ctx context.Context, i int) error {
		c, err := d.dialSubscribed(ctx, f.cfg.Channel)
		if err != nil {
			return err
		}
		stuck[i] = &stuckSub{c: c}
		return nil
	}, &st)
	ids := make(map[string]int, n)
	for _, s := range stuck {
		if s == nil {
			continue
		}
		if s.c.client != "" {
			ids[s.c.client] = len(f.stuck)
		}
		f.stuck = append(f.stuck, s)
	}
	f.stuckIDs.Store(&ids)
	rep := &f.r.report.Connect
	rep.Attempted += n
	rep.Opened += int(st.opened.Load())
	rep.Errors += int(st.failed.Load())
	if rep.FirstError == "" {
		rep.FirstError = st.firstError()
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case len(f.stuck) < n:
		return fmt.Errorf("%d of %d stuck subscribers could not connect: %s", n-len(f.stuck), n, st.firstError())
	}
	return nil
}

// stuckEnd is how a stuck subscriber's connection ended, read after the
// run.
type stuckEnd struct {
	dropped bool
	code    string
	after   float64 // seconds from the start of publishing to its leave push; 0 if none was seen
}

// stuckIdle is how long the end of a stuck subscriber's stream may take to
// arrive before it is taken to be still open.
const stuckIdle = time.Second

// readStuck reads what each stuck subscriber's socket still holds, to see
// whether the server ended it: its disconnect push, a close frame or a
// closed connection. One still open yields nothing for stuckIdle.
func (f *fanout) readStuck(ctx context.Context, t0 time.Time) []stuckEnd {
	ends := make([]stuckEnd, len(f.stuck))
	for i, s := range f.stuck {
		e := &ends[i]
		if ns := s.left.Load(); ns != 0 {
			e.after = time.Unix(0, ns).Sub(t0).Seconds()
		}
		for ctx.Err() == nil {
			s.c.ws.SetReadDeadline(time.Now().Add(stuckIdle))
			evs, err := s.c.readEvents()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // still open
				}
				e.dropped = true
				if e.code == "" {
					e.code = closeCode(err)
				}
				break
			}
			for _, ev := range evs {
				if ev.Kind == EventDisconnect && e.code == "" {
					e.dropped, e.code = true, disconnectCode(ev.Text)
				}
			}
		}
	}
	return ends
}

// backpressureReport adds what the backpressure scenario reports to the
// fanout's report, once every reader has returned.
func (f *fanout) backpressureReport(t0 time.Time, stuck []stuckEnd) {
	rep := f.r.report
	p := f.pubs[0]
	expected := p.sent.Load() - p.errors.Load()
	b := &BackpressureReport{Acknowledged: p.acked.Load(), Expected: expected, DropCodes: map[string]int{}}
	if !p.dropped.IsZero() {
		b.PublisherDropped = cmp.Or(p.dropCode, "connection error")
		b.PublisherDroppedAfter = p.dropped.Sub(t0).Seconds()
	}
	var delivered []uint64
	for _, s := range f.subs {
		if s == nil {
			continue
		}
		r := ReaderReport{Delivered: s.unique.Load(), Lost: s.seqs[0].lost(p.sent.Load(), p.refused)}
		if !s.dropped.IsZero() {
			r.Dropped = cmp.Or(s.dropCode, "connection error")
			r.DroppedAfter = s.dropped.Sub(t0).Seconds()
			r.DropError = s.dropErr
			b.Dropped++
			b.DropCodes[r.Dropped]++
			if b.FirstDropAfter == 0 || r.DroppedAfter < b.FirstDropAfter {
				b.FirstDropAfter = r.DroppedAfter
			}
		}
		b.Readers = append(b.Readers, r)
		delivered = append(delivered, r.Delivered)
	}
	if n := len(delivered); n > 0 {
		slices.Sort(delivered)
		b.DeliveredMin, b.DeliveredMedian, b.DeliveredMax = delivered[0], delivered[(n-1)/2], delivered[n-1]
	}
	b.StuckDropCodes = map[string]int{}
	for _, e := range stuck {
		b.Stuck++
		if e.dropped {
			b.StuckDropped++
			b.StuckDropCodes[e.code]++
		}
		if e.after > 0 && (b.StuckDroppedAfter == 0 || e.after < b.StuckDroppedAfter) {
			b.StuckDroppedAfter = e.after
		}
	}
	rep.Backpressure = b
}

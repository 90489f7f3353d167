package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// EchoConfig is the echo scenario: one connection, subscribed to Channel,
// publishes a message and waits until the server has delivered it back and
// acknowledged it, then publishes the next: the round trip of one message
// through an idle server.
type EchoConfig struct {
	Count    int           // round trips; 0 means as many as fit in Duration
	Duration time.Duration // used when Count is 0
	Size     int           // bytes of each message's data value
	Channel  string
}

// DefaultEcho returns round trips of 100-byte messages for 10 seconds.
func DefaultEcho() EchoConfig {
	return EchoConfig{Duration: 10 * time.Second, Size: 100, Channel: "echo"}
}

// Name returns "echo".
func (c *EchoConfig) Name() string { return "echo" }

func (c *EchoConfig) connections() int { return 1 }

func (c *EchoConfig) validate() error {
	var errs []error
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("count: want 0 (use the duration) or more, got %d", c.Count))
	}
	if c.Count == 0 && c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration: want a positive duration when count is 0, got %v", c.Duration))
	}
	if c.Size < MinSize || c.Size > MaxSize {
		errs = append(errs, fmt.Errorf("size: want %d to %d bytes, got %d", MinSize, MaxSize, c.Size))
	}
	if !validChannel(c.Channel) {
		errs = append(errs, fmt.Errorf("channel: want 1-255 printable ASCII characters without quotes or backslashes, got %q", c.Channel))
	}
	return errors.Join(errs...)
}

func (c *EchoConfig) settings() map[string]any {
	return map[string]any{
		"count":            c.Count,
		"duration_seconds": c.Duration.Seconds(),
		"size_bytes":       c.Size,
		"channel":          c.Channel,
	}
}

func (c *EchoConfig) run(ctx context.Context, r *runner) error {
	rep := &r.report.Connect
	rep.Attempted = 1
	start := time.Now()
	conn, err := r.dialer.dialSubscribed(ctx, c.Channel)
	rep.Seconds = time.Since(start).Seconds()
	if err != nil {
		rep.Errors, rep.FirstError = 1, err.Error()
		return err
	}
	rep.Opened = 1
	defer conn.close()
	// Unblock a read when interrupted.
	stop := context.AfterFunc(ctx, func() { conn.ws.SetReadDeadline(time.Now()) })
	defer stop()

	e := &echo{cfg: c, r: r, conn: conn}
	r.setStatus(func() string {
		return fmt.Sprintf("echo: %s round trips", count(e.done.Load()))
	})
	r.windowStart()
	t0 := time.Now()
	err = e.loop(ctx, t0)
	elapsed := time.Since(t0)
	r.windowEnd(context.WithoutCancel(ctx), e.done.Load(), 1)

	out := r.report
	out.Elapsed = elapsed.Seconds()
	out.Published = e.published
	out.PublishErrors = e.errors
	out.Delivered = e.done.Load()
	if s := elapsed.Seconds(); s > 0 {
		out.PublishedPerSec = float64(out.Published) / s
		out.DeliveredPerSec = float64(out.Delivered) / s
	}
	out.Loss = &LossReport{Expected: e.published - e.errors, Lost: e.published - e.errors - e.done.Load(),
		Duplicates: e.duplicates, Foreign: e.foreign}
	out.Loss.SubscribersWithLoss = btoi(out.Loss.Lost > 0)
	out.Loss.SubscribersWithDuplicates = btoi(e.duplicates > 0)
	out.Latency = latencyReport(&e.rtt)
	if ctx.Err() != nil {
		out.warn("interrupted after %s round trips", count(e.done.Load()))
		return nil
	}
	return err
}

// echo is one run of the echo scenario; its counters are owned by loop,
// except done, which the progress line reads.
type echo struct {
	cfg  *EchoConfig
	r    *runner
	conn *conn

	rtt                 histogram
	done                atomic.Uint64 // round trips completed
	published, errors   uint64
	duplicates, foreign uint64
	data, cmd           []byte
}

// loop runs round trips until the count or the duration is reached.
func (e *echo) loop(ctx context.Context, t0 time.Time) error {
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		if e.cfg.Count > 0 && seq > uint64(e.cfg.Count) {
			return nil
		}
		if e.cfg.Count == 0 && time.Since(t0) >= e.cfg.Duration {
			return nil
		}
		if err := e.roundTrip(seq); err != nil {
			return err
		}
	}
	return nil
}

// roundTrip publishes message seq and waits for both its delivery and its
// acknowledgement.
func (e *echo) roundTrip(seq uint64) error {
	id := firstPublishID + seq - 1
	sent := time.Now()
	e.data = appendPayload(e.data[:0], 1, seq, sent.UnixNano(), e.cfg.Size)
	e.cmd = e.r.cfg.Dialect.Publish(e.cmd[:0], id, e.cfg.Channel, e.data)
	e.conn.ws.SetReadDeadline(sent.Add(e.r.cfg.Timeout))
	if err := e.conn.write(e.cmd); err != nil {
		return err
	}
	e.published++
	delivered, acked := false, false
	for !delivered || !acked {
		evs, err := e.conn.readEvents()
		if err != nil {
			return fmt.Errorf("message %d: delivered %v, acknowledged %v: %w", seq, delivered, acked, err)
		}
		now := time.Now()
		for _, ev := range evs {
			switch {
			case ev.Kind == EventPublication:
				p, got, _, ok := parsePayload(ev.Data)
				switch {
				case !ok || p != 1:
					e.foreign++
				case got != seq:
					e.duplicates++
				case !delivered:
					delivered = true
					e.rtt.Record(now.Sub(sent))
					e.done.Add(1)
				default:
					e.duplicates++
				}
			case ev.Kind == EventReply && ev.ID == id:
				acked = true
			case ev.Kind == EventError && ev.ID == id:
				e.errors++
				return fmt.Errorf("message %d: %s", seq, ev.Text)
			case ev.Kind == EventDisconnect:
				return fmt.Errorf("message %d: %w: %s", seq, errDisconnected, ev.Text)
			}
		}
	}
	return nil
}

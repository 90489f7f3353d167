package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// IdleConfig is the idle scenario: Connections connections, each
// subscribed to its own channel (ChannelPrefix + index), held open for
// Duration once all are open. It measures what a connection costs the
// server at rest.
type IdleConfig struct {
	Connections   int
	Duration      time.Duration // how long to hold them once all are open
	ChannelPrefix string
}

// DefaultIdle returns 10,000 connections held for 10 seconds.
func DefaultIdle() IdleConfig {
	return IdleConfig{Connections: 10000, Duration: 10 * time.Second, ChannelPrefix: "idle-"}
}

// Name returns "idle".
func (c *IdleConfig) Name() string { return "idle" }

func (c *IdleConfig) connections() int { return c.Connections }

func (c *IdleConfig) validate() error {
	var errs []error
	if c.Connections < 1 {
		errs = append(errs, fmt.Errorf("connections: want at least 1, got %d", c.Connections))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: want 0 or a positive duration, got %v", c.Duration))
	}
	if !validChannel(c.ChannelPrefix + "0") {
		errs = append(errs, fmt.Errorf("channel prefix: want printable ASCII characters without quotes or backslashes, got %q", c.ChannelPrefix))
	}
	return errors.Join(errs...)
}

func (c *IdleConfig) settings() map[string]any {
	return map[string]any{
		"connections":      c.Connections,
		"duration_seconds": c.Duration.Seconds(),
		"channel_prefix":   c.ChannelPrefix,
	}
}

func (c *IdleConfig) run(ctx context.Context, r *runner) error {
	var (
		st      connectStats
		dropped atomic.Int64
		closing atomic.Bool
		readers sync.WaitGroup
	)
	conns := make([]*conn, c.Connections) // index i set by the goroutine that opened it
	r.setStatus(func() string {
		return fmt.Sprintf("idle: %s of %s connections open, %s errors, %s dropped",
			count(uint64(st.opened.Load())), count(uint64(c.Connections)),
			count(uint64(st.failed.Load())), count(uint64(dropped.Load())))
	})
	start := time.Now()
	dialMany(ctx, c.Connections, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		conn, err := r.dialer.dialSubscribed(ctx, c.ChannelPrefix+strconv.Itoa(i))
		if err != nil {
			return err
		}
		conns[i] = conn
		readers.Go(func() { conn.holdOpen(&closing, &dropped) })
		return nil
	}, &st)
	r.report.Connect = ConnectReport{
		Attempted:  c.Connections,
		Opened:     int(st.opened.Load()),
		Errors:     int(st.failed.Load()),
		FirstError: st.firstError(),
		Seconds:    time.Since(start).Seconds(),
	}

	var err error
	if r.report.Connect.Opened == 0 && ctx.Err() == nil {
		err = fmt.Errorf("no connection could be opened: %s", st.firstError())
	} else {
		r.windowStart()
		t0 := time.Now()
		if !sleepCtx(ctx, c.Duration) {
			r.report.warn("interrupted after holding for %.1fs", time.Since(t0).Seconds())
		}
		r.report.Elapsed = time.Since(t0).Seconds()
		r.windowEnd(context.WithoutCancel(ctx), 0, r.report.Connect.Opened-int(dropped.Load()))
	}

	closing.Store(true)
	var open []*conn
	for _, conn := range conns {
		if conn != nil {
			open = append(open, conn)
		}
	}
	closeConns(open, r.cfg.Concurrency)
	readers.Wait()
	r.report.Connect.Dropped = int(dropped.Load())
	return err
}

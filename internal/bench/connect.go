package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ConnectConfig is the connect scenario: Connections clients connect, each
// with its own HS256 token if Config.JWTSecret is set, and complete the
// server's handshake (netkit's welcome, Centrifugo's connect reply). It
// measures what accepting a client costs the server.
type ConnectConfig struct {
	Connections int
	// Hold is how long to keep the connections open once all are open,
	// before closing them (outside the measured window).
	Hold time.Duration
}

// DefaultConnect returns 1,000 connections, closed as soon as all are open.
func DefaultConnect() ConnectConfig {
	return ConnectConfig{Connections: 1000}
}

// Name returns "connect".
func (c *ConnectConfig) Name() string { return "connect" }

func (c *ConnectConfig) connections() int { return c.Connections }

func (c *ConnectConfig) validate() error {
	var errs []error
	if c.Connections < 1 {
		errs = append(errs, fmt.Errorf("connections: want at least 1, got %d", c.Connections))
	}
	if c.Hold < 0 {
		errs = append(errs, fmt.Errorf("hold: want 0 or a positive duration, got %v", c.Hold))
	}
	return errors.Join(errs...)
}

func (c *ConnectConfig) settings() map[string]any {
	return map[string]any{
		"connections":  c.Connections,
		"hold_seconds": c.Hold.Seconds(),
	}
}

// run signs every token first (the generator's work, outside the window),
// then opens the connections, Concurrency at a time, timing each from dial
// to the server's ready event. The measured window is from the first dial
// to the last handshake.
func (c *ConnectConfig) run(ctx context.Context, r *runner) error {
	tokens := make([]string, c.Connections)
	for i := range tokens {
		t, err := r.dialer.signToken()
		if err != nil {
			return err
		}
		tokens[i] = t
	}
	r.report.Settings["tokens"] = tokens[0] != ""

	var (
		st      connectStats
		lat     histogram
		dropped atomic.Int64
		closing atomic.Bool
		readers sync.WaitGroup
	)
	conns := make([]*conn, c.Connections) // index i set by the goroutine that opened it
	r.setStatus(func() string {
		return fmt.Sprintf("connect: %s of %s connections open, %s errors",
			count(uint64(st.opened.Load())), count(uint64(c.Connections)), count(uint64(st.failed.Load())))
	})
	r.windowStart()
	start := time.Now()
	dialMany(ctx, c.Connections, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		t0 := time.Now()
		conn, err := r.dialer.dialToken(ctx, tokens[i])
		if err != nil {
			return err
		}
		lat.Record(time.Since(t0))
		conns[i] = conn
		readers.Go(func() { conn.holdOpen(&closing, &dropped) })
		return nil
	}, &st)
	elapsed := time.Since(start)
	opened := int(st.opened.Load())
	r.report.Elapsed = elapsed.Seconds()
	r.report.Connect = ConnectReport{
		Attempted:  c.Connections,
		Opened:     opened,
		Errors:     int(st.failed.Load()),
		FirstError: st.firstError(),
		Seconds:    elapsed.Seconds(),
	}
	if elapsed > 0 {
		r.report.Connect.PerSecond = float64(opened) / elapsed.Seconds()
	}
	r.report.Latency = latencyReport(&lat)
	r.windowEnd(context.WithoutCancel(ctx), 0, opened)
	if s := r.report.ServerProc; s != nil && opened > 0 {
		s.CPUPerConnect = s.CPUSeconds / float64(opened) * 1e6
	}

	var err error
	if opened == 0 && ctx.Err() == nil {
		err = fmt.Errorf("no connection could be opened: %s", st.firstError())
	} else if c.Hold > 0 {
		sleepCtx(ctx, c.Hold)
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

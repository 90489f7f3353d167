package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// RecoverConfig is the recover scenario: Subscribers clients subscribe to
// Channel and disconnect, a publisher publishes Messages messages to it,
// and then all the clients reconnect at once and subscribe again asking to
// recover what they missed (netkit: since; Centrifugo: recover with offset
// and epoch). It measures how long until every client has all of them, and
// what that costs the server.
type RecoverConfig struct {
	Subscribers int
	Messages    int // published while the subscribers are away
	Size        int // bytes of each message's data value
	Channel     string
}

// DefaultRecover returns 1,000 subscribers missing 100 messages of 100
// bytes.
func DefaultRecover() RecoverConfig {
	return RecoverConfig{Subscribers: 1000, Messages: 100, Size: 100, Channel: "recover"}
}

// Name returns "recover".
func (c *RecoverConfig) Name() string { return "recover" }

// connections counts the publisher and each subscriber twice: the first
// connections may still be closing while the second open.
func (c *RecoverConfig) connections() int { return 2*c.Subscribers + 1 }

func (c *RecoverConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Subscribers < 1 {
		bad("subscribers: want at least 1, got %d", c.Subscribers)
	}
	if c.Messages < 1 {
		bad("messages: want at least 1, got %d", c.Messages)
	}
	if c.Size < MinSize || c.Size > MaxSize {
		bad("size: want %d to %d bytes, got %d", MinSize, MaxSize, c.Size)
	}
	if !validChannel(c.Channel) {
		bad("channel: want 1-255 printable ASCII characters without quotes or backslashes, got %q", c.Channel)
	}
	return errors.Join(errs...)
}

func (c *RecoverConfig) settings() map[string]any {
	return map[string]any{
		"subscribers": c.Subscribers,
		"messages":    c.Messages,
		"size_bytes":  c.Size,
		"channel":     c.Channel,
	}
}

// RecoverReport is what the recover scenario adds.
type RecoverReport struct {
	Clients     int `json:"clients"`     // subscribed before the disconnect
	Reconnected int `json:"reconnected"` // connected and subscribed again
	// Recovered and NotRecovered count the subscribe replies that said
	// recovered:true and recovered:false.
	Recovered    int `json:"recovered"`
	NotRecovered int `json:"not_recovered"`
	// Complete counts clients that got every missed message, in order and
	// once; Incomplete those that said recovered but did not (gaps,
	// duplicates, or too few before the timeout).
	Complete   int `json:"complete"`
	Incomplete int `json:"incomplete"`
	// Messages counts the missed messages the clients received in all.
	Messages uint64 `json:"messages"`
	// Seconds is the time from the start of the reconnect until the last
	// client had every missed message (or gave up).
	Seconds float64 `json:"seconds"`
}

// recovering is one client's reconnect; owned by its goroutine until the
// WaitGroup is done.
type recovering struct {
	since     Position // where it left
	c         *conn
	err       error
	recovered bool
	got       int  // missed messages received
	ordered   bool // each pushed message was the next one expected
}

func (c *RecoverConfig) run(ctx context.Context, r *runner) error {
	pub, err := r.dialer.dial(ctx)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer pub.close()

	// Subscribe, note each client's position, and leave.
	var st connectStats
	first := make([]*conn, c.Subscribers)
	pos := make([]Position, c.Subscribers)
	r.setStatus(func() string {
		return fmt.Sprintf("recover: %s of %s subscribed", count(uint64(st.opened.Load())), count(uint64(c.Subscribers)))
	})
	dialMany(ctx, c.Subscribers, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		conn, res, err := r.dialer.dialSubscribe(ctx, r.dialer.dialect.Subscribe(nil, idSubscribe, c.Channel))
		if err != nil {
			return err
		}
		first[i], pos[i] = conn, res.Position
		return nil
	}, &st)
	var open []*conn
	for _, conn := range first {
		if conn != nil {
			open = append(open, conn)
		}
	}
	closeConns(open, r.cfg.Concurrency)
	if len(open) == 0 {
		return fmt.Errorf("no subscriber could connect: %s", st.firstError())
	}
	if st.failed.Load() > 0 {
		r.report.warn("%d of %d subscribers failed to subscribe (the first: %s)", st.failed.Load(), c.Subscribers, st.firstError())
	}

	// Publish while they are away.
	r.setStatus(func() string { return fmt.Sprintf("recover: publishing %d messages", c.Messages) })
	t0 := time.Now()
	for seq := 1; seq <= c.Messages; seq++ {
		if err := publishOne(pub, uint64(seq), c.Channel, c.Size); err != nil {
			return fmt.Errorf("publish %d: %w", seq, err)
		}
		r.report.Published++
	}
	r.report.Elapsed = time.Since(t0).Seconds()

	// All reconnect at once.
	clients := make([]*recovering, 0, len(open))
	for i, conn := range first {
		if conn != nil {
			clients = append(clients, &recovering{since: pos[i]})
		}
	}
	var done atomic.Int64
	r.setStatus(func() string {
		return fmt.Sprintf("recover: %s of %s clients done", count(uint64(done.Load())), count(uint64(len(clients))))
	})
	var lat histogram
	var wg sync.WaitGroup
	gate := make(chan struct{})
	r.windowStart()
	for _, rc := range clients {
		wg.Go(func() {
			defer done.Add(1)
			<-gate
			t := time.Now()
			c.reconnect(ctx, r.dialer, rc)
			if rc.got == c.Messages && rc.ordered {
				lat.Record(time.Since(t))
			}
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)

	rep := &RecoverReport{Clients: len(clients), Seconds: elapsed.Seconds()}
	var cst connectStats
	var again []*conn
	for _, rc := range clients {
		if rc.c != nil {
			again = append(again, rc.c)
		}
		switch {
		case rc.err != nil && rc.c == nil:
			cst.fail(rc.err)
			continue
		case rc.recovered && rc.got == c.Messages && rc.ordered:
			rep.Complete++
		case rc.recovered:
			rep.Incomplete++
		}
		rep.Reconnected++
		if rc.recovered {
			rep.Recovered++
		} else {
			rep.NotRecovered++
		}
		rep.Messages += uint64(rc.got)
		if rc.err != nil {
			cst.fail(rc.err)
		}
	}
	r.report.Recover = rep
	r.report.Delivered = rep.Messages
	r.report.Latency = latencyReport(&lat)
	r.report.Connect = ConnectReport{
		Attempted:  c.Subscribers,
		Opened:     int(st.opened.Load()),
		Errors:     int(st.failed.Load() + cst.failed.Load()),
		FirstError: firstOf(st.firstError(), cst.firstError()),
		Seconds:    elapsed.Seconds(),
	}
	r.windowEnd(context.WithoutCancel(ctx), rep.Messages, rep.Reconnected)
	if s := r.report.ServerProc; s != nil && rep.Reconnected > 0 {
		s.CPUPerConnect = s.CPUSeconds / float64(rep.Reconnected) * 1e6
	}
	closeConns(again, r.cfg.Concurrency)
	return nil
}

// reconnect connects rc again, subscribes since its position and reads
// until it has every missed message, the server says it cannot recover, or
// the dialer's timeout passes.
func (c *RecoverConfig) reconnect(ctx context.Context, d *dialer, rc *recovering) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, res, err := d.dialSubscribe(ctx, d.dialect.SubscribeSince(nil, idSubscribe, c.Channel, rc.since))
	if err != nil {
		rc.err = err
		return
	}
	rc.c = conn
	rc.recovered, rc.got, rc.ordered = res.Recovered, res.Publications, true
	if !rc.recovered {
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.ws.SetReadDeadline(time.Now()) })
	defer stop()
	for rc.got < c.Messages {
		evs, err := conn.readEvents()
		if err != nil {
			rc.err = fmt.Errorf("recovering (%d of %d messages): %w", rc.got, c.Messages, err)
			return
		}
		for _, ev := range evs {
			switch ev.Kind {
			case EventPublication:
				rc.got++
				if p, seq, _, ok := parsePayload(ev.Data); !ok || p != 1 || seq != uint64(rc.got) {
					rc.ordered = false
				}
			case EventDisconnect:
				rc.err = fmt.Errorf("recovering: %w: %s", errDisconnected, ev.Text)
				return
			}
		}
	}
}

// publishOne publishes message seq of the given size on channel and waits
// for the server's reply.
func publishOne(c *conn, seq uint64, channel string, size int) error {
	id := firstPublishID + seq - 1
	data := appendPayload(nil, 1, seq, time.Now().UnixNano(), size)
	if err := c.write(c.dialect.Publish(nil, id, channel, data)); err != nil {
		return err
	}
	for {
		evs, err := c.readEvents()
		if err != nil {
			return err
		}
		for _, ev := range evs {
			switch {
			case ev.Kind == EventReply && ev.ID == id:
				return nil
			case ev.Kind == EventError && ev.ID == id:
				return fmt.Errorf("%s", ev.Text)
			case ev.Kind == EventDisconnect:
				return fmt.Errorf("%w: %s", errDisconnected, ev.Text)
			}
		}
	}
}

// firstOf returns the first of its arguments that is not "".
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

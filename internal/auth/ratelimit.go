package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateConfig sets the hub's rate limits. The defaults (DefaultRateConfig)
// are far above what a person's client does, so that only runaway or
// hostile clients meet them.
type RateConfig struct {
	// CommandRate is the commands per second one connection may send,
	// sustained; 0 means no limit.
	CommandRate int
	// CommandBurst is the most commands a connection may send at once
	// (the size of its bucket, which refills at CommandRate).
	CommandBurst int
	// AbuseRefusals is how many refused commands, at most, a connection
	// may collect within AbuseWindow before the hub disconnects it with
	// "policy"; 0 means it is never disconnected for them.
	AbuseRefusals int
	// AbuseWindow is the window of AbuseRefusals.
	AbuseWindow time.Duration
	// ConnectRate is the new connections per second one client address may
	// open, sustained; 0 means no limit. IPv6 addresses count by /64.
	ConnectRate int
	// ConnectBurst is the most connections an address may open at once
	// (the size of its bucket, which refills at ConnectRate).
	ConnectBurst int
	// MaxAddresses bounds the addresses the connection limit tracks.
	MaxAddresses int
	// LimitLoopback applies the connection limit to loopback addresses
	// too. Off by default: behind a reverse proxy on the same machine
	// every client comes from 127.0.0.1, and load tests run there.
	LimitLoopback bool
}

// DefaultRateConfig returns generous limits, far above what people do:
//   - 10,000 commands per second per connection, in bursts of up to 10,000
//     (a client resubscribing to max_subscriptions channels at once fits);
//   - a policy disconnect after 1,000 refusals within 10s, that is, once a
//     client is refused more than 100 times a second for 10s;
//   - 100 new connections per second per address (IPv6: per /64) in bursts
//     of up to 1,000 (an office behind one NAT reconnecting after a hub
//     restart), loopback exempt;
//   - at most 10,000 addresses tracked, about 1.3 MB.
func DefaultRateConfig() RateConfig {
	return RateConfig{
		CommandRate:   10000,
		CommandBurst:  10000,
		AbuseRefusals: 1000,
		AbuseWindow:   10 * time.Second,
		ConnectRate:   100,
		ConnectBurst:  1000,
		MaxAddresses:  10000,
	}
}

// Validate reports settings that cannot work, naming each.
func (c RateConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.CommandRate < 0 {
		bad("command_rate", "want 0 (no limit) or more commands per second, got %d", c.CommandRate)
	}
	if c.CommandRate > 0 && c.CommandBurst < 1 {
		bad("command_burst", "want at least 1, got %d", c.CommandBurst)
	}
	if c.AbuseRefusals < 0 {
		bad("abuse_refusals", "want 0 (never disconnect) or more, got %d", c.AbuseRefusals)
	}
	if c.AbuseRefusals > 0 && c.AbuseWindow <= 0 {
		bad("abuse_window", "want a positive duration like 10s, got %v", c.AbuseWindow)
	}
	if c.ConnectRate < 0 {
		bad("connect_rate", "want 0 (no limit) or more connections per second, got %d", c.ConnectRate)
	}
	if c.ConnectRate > 0 && c.ConnectBurst < 1 {
		bad("connect_burst", "want at least 1, got %d", c.ConnectBurst)
	}
	if c.ConnectRate > 0 && c.MaxAddresses < 1 {
		bad("max_addresses", "want at least 1, got %d", c.MaxAddresses)
	}
	return errors.Join(errs...)
}

// Verdict is a CommandLimiter's answer for one command.
type Verdict int

// Verdicts of CommandLimiter.Allow.
const (
	Allowed    Verdict = iota // run the command
	Refused                   // answer too_many_requests
	Disconnect                // sustained abuse: disconnect with policy
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case Refused:
		return "refused"
	case Disconnect:
		return "disconnect"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// CommandLimiter limits one connection's commands. It is meant for the
// connection's command path; it is safe for concurrent use all the same.
type CommandLimiter struct {
	commands *rate.Limiter // nil: no limit
	refusals *rate.Limiter // nil: never disconnect
}

// NewCommandLimiter returns the limiter of one connection. cfg must be
// valid.
func NewCommandLimiter(cfg RateConfig) *CommandLimiter {
	l := &CommandLimiter{}
	if cfg.CommandRate > 0 {
		l.commands = rate.NewLimiter(rate.Limit(cfg.CommandRate), cfg.CommandBurst)
	}
	if cfg.AbuseRefusals > 0 {
		every := cfg.AbuseWindow / time.Duration(cfg.AbuseRefusals)
		l.refusals = rate.NewLimiter(rate.Every(every), cfg.AbuseRefusals)
	}
	return l
}

// Allow takes one command at time now from the connection's allowance.
// Commands beyond CommandRate (after the burst) are Refused. Refusals fill
// a second bucket of AbuseRefusals that drains at AbuseRefusals per
// AbuseWindow: the refusal that finds it full gets Disconnect. So a client
// is disconnected after AbuseRefusals refusals in a burst, or when it keeps
// being refused faster than AbuseRefusals per AbuseWindow; one that
// overshoots a little is only refused.
func (l *CommandLimiter) Allow(now time.Time) Verdict {
	if l.commands == nil || l.commands.AllowN(now, 1) {
		return Allowed
	}
	if l.refusals == nil || l.refusals.AllowN(now, 1) {
		return Refused
	}
	return Disconnect
}

// ConnLimiter limits how fast each client address opens connections. Its
// table of addresses is bounded by MaxAddresses. It is safe for concurrent
// use.
type ConnLimiter struct {
	limit    rate.Limit
	burst    int
	max      int
	loopback bool

	mu        sync.Mutex
	addrs     map[netip.Addr]*rate.Limiter // guarded by mu
	lastSweep time.Time                    // guarded by mu
}

// sweepEvery is how often Allow forgets addresses whose allowance is full
// again, even when the table is not full.
const sweepEvery = time.Minute

// NewConnLimiter returns the per-address connection limiter for cfg, or nil
// (which allows everything) when cfg.ConnectRate is 0. cfg must be valid.
func NewConnLimiter(cfg RateConfig) *ConnLimiter {
	if cfg.ConnectRate == 0 {
		return nil
	}
	return &ConnLimiter{
		limit:    rate.Limit(cfg.ConnectRate),
		burst:    cfg.ConnectBurst,
		max:      cfg.MaxAddresses,
		loopback: cfg.LimitLoopback,
		addrs:    make(map[netip.Addr]*rate.Limiter),
	}
}

// Allow reports whether a connection from addr at time now may proceed
// (else the hub answers 429 before the upgrade). A nil *ConnLimiter allows
// everything.
//
// An address whose allowance has refilled to the burst is forgotten: a new
// entry would start the same. When the table is full even after forgetting
// those, arbitrary entries are dropped until it is 7/8 full, so memory stays
// bounded and the cost per call is constant on average; a dropped address
// starts again with a full burst.
func (l *ConnLimiter) Allow(addr netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	addr = addr.Unmap()
	if !addr.IsValid() || (addr.IsLoopback() && !l.loopback) {
		return true
	}
	if addr.Is6() {
		p, _ := addr.WithZone("").Prefix(64) // error only for a bad length
		addr = p.Addr()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.addrs[addr]
	if lim == nil {
		if len(l.addrs) >= l.max || now.Sub(l.lastSweep) >= sweepEvery {
			l.sweepLocked(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.addrs[addr] = lim
	}
	return lim.AllowN(now, 1)
}

// sweepLocked forgets the addresses whose allowance is full, then, if the
// table is still full, drops entries until it is 7/8 full.
func (l *ConnLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for a, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) < l.max {
		return
	}
	target := l.max - max(1, l.max/8)
	for a := range l.addrs { // map order: arbitrary victims
		if len(l.addrs) <= target {
			break
		}
		delete(l.addrs, a)
	}
}

// Len returns how many addresses l tracks now.
func (l *ConnLimiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// RemoteAddr returns the client address of r from r.RemoteAddr (the TCP
// peer; X-Forwarded-For is not trusted), or the zero Addr if it cannot be
// parsed, which ConnLimiter.Allow lets through.
func RemoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

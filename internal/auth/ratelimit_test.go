package auth

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDefaultRateConfigValid(t *testing.T) {
	if err := DefaultRateConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRateConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*RateConfig)
		want string // in the error; "" for none
	}{
		{"defaults", func(*RateConfig) {}, ""},
		{"all off", func(c *RateConfig) { *c = RateConfig{} }, ""},
		{"negative command rate", func(c *RateConfig) { c.CommandRate = -1 }, "command_rate"},
		{"no command burst", func(c *RateConfig) { c.CommandBurst = 0 }, "command_burst"},
		{"negative refusals", func(c *RateConfig) { c.AbuseRefusals = -1 }, "abuse_refusals"},
		{"no window", func(c *RateConfig) { c.AbuseWindow = 0 }, "abuse_window"},
		{"negative connect rate", func(c *RateConfig) { c.ConnectRate = -1 }, "connect_rate"},
		{"no connect burst", func(c *RateConfig) { c.ConnectBurst = 0 }, "connect_burst"},
		{"no addresses", func(c *RateConfig) { c.MaxAddresses = 0 }, "max_addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultRateConfig()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestCommandLimiter(t *testing.T) {
	cfg := RateConfig{CommandRate: 10, CommandBurst: 5, AbuseRefusals: 4, AbuseWindow: time.Second}
	type step struct {
		at   time.Duration // since t0
		n    int           // commands sent at that time
		want []Verdict     // their verdicts, the last one repeated
	}
	tests := []struct {
		name  string
		cfg   RateConfig
		steps []step
	}{
		{"within the burst", cfg, []step{{0, 5, []Verdict{Allowed}}}},
		{"beyond the burst", cfg, []step{{0, 7, []Verdict{Allowed, Allowed, Allowed, Allowed, Allowed, Refused}}}},
		{"sustained at the rate", cfg, []step{
			{0, 5, []Verdict{Allowed}},
			{100 * time.Millisecond, 1, []Verdict{Allowed}},
			{200 * time.Millisecond, 1, []Verdict{Allowed}},
			{300 * time.Millisecond, 2, []Verdict{Allowed, Refused}},
		}},
		{"abuse disconnects", cfg, []step{
			{0, 5, []Verdict{Allowed}},
			{0, 5, []Verdict{Refused, Refused, Refused, Refused, Disconnect}},
		}},
		{"refusals drain", cfg, []step{
			{0, 5, []Verdict{Allowed}},
			{0, 4, []Verdict{Refused}},
			// A second later 10 commands refilled the bucket (capped at 5),
			// and 4 refusals drained.
			{time.Second, 5, []Verdict{Allowed}},
			{time.Second, 4, []Verdict{Refused}},
			{time.Second, 1, []Verdict{Disconnect}},
		}},
		{"no abuse limit", RateConfig{CommandRate: 1, CommandBurst: 1}, []step{{0, 1000, []Verdict{Allowed, Refused}}}},
		{"no limit", RateConfig{}, []step{{0, 100000, []Verdict{Allowed}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewCommandLimiter(tc.cfg)
			for i, s := range tc.steps {
				for j := range s.n {
					want := s.want[min(j, len(s.want)-1)]
					if got := l.Allow(t0.Add(s.at)); got != want {
						t.Fatalf("step %d, command %d: %v, want %v", i, j, got, want)
					}
				}
			}
		})
	}
}

func TestConnLimiter(t *testing.T) {
	cfg := RateConfig{ConnectRate: 2, ConnectBurst: 3, MaxAddresses: 100}
	a := netip.MustParseAddr("192.0.2.1")
	type conn struct {
		addr string
		at   time.Duration
		want bool
	}
	table := []struct {
		name  string
		cfg   RateConfig
		conns []conn
	}{
		{"burst then refused", cfg, []conn{
			{"192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"192.0.2.1", 0, false},
		}},
		{"addresses apart", cfg, []conn{
			{"192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"192.0.2.1", 0, false},
			{"192.0.2.2", 0, true},
		}},
		{"refills at the rate", cfg, []conn{
			{"192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"192.0.2.1", 0, false},
			{"192.0.2.1", 500 * time.Millisecond, true}, {"192.0.2.1", 500 * time.Millisecond, false},
		}},
		{"IPv6 by /64", cfg, []conn{
			{"2001:db8::1", 0, true}, {"2001:db8::2", 0, true}, {"2001:db8::ffff:1", 0, true}, {"2001:db8::3", 0, false},
			{"2001:db8:0:1::1", 0, true},
		}},
		{"IPv4-mapped IPv6 is IPv4", cfg, []conn{
			{"192.0.2.1", 0, true}, {"::ffff:192.0.2.1", 0, true}, {"192.0.2.1", 0, true}, {"::ffff:192.0.2.1", 0, false},
		}},
		{"loopback exempt", cfg, []conn{
			{"127.0.0.1", 0, true}, {"127.0.0.1", 0, true}, {"127.0.0.1", 0, true}, {"127.0.0.1", 0, true}, {"::1", 0, true},
		}},
		{"loopback limited when asked", RateConfig{ConnectRate: 2, ConnectBurst: 1, MaxAddresses: 10, LimitLoopback: true}, []conn{
			{"127.0.0.1", 0, true}, {"127.0.0.1", 0, false},
		}},
		{"invalid address allowed", cfg, []conn{{"", 0, true}}},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			l := NewConnLimiter(tc.cfg)
			for i, c := range tc.conns {
				var addr netip.Addr
				if c.addr != "" {
					addr = netip.MustParseAddr(c.addr)
				}
				if got := l.Allow(addr, t0.Add(c.at)); got != c.want {
					t.Fatalf("connection %d from %s at +%v: allowed %v, want %v", i, c.addr, c.at, got, c.want)
				}
			}
		})
	}
	if l := NewConnLimiter(RateConfig{}); l != nil || !l.Allow(a, t0) || l.Len() != 0 {
		t.Fatalf("no connect rate: limiter %v, want nil that allows all", l)
	}
}

// TestConnLimiterBounded opens connections from 100,000 distinct addresses,
// each as hostile as the burst allows, and checks the table never holds
// more than MaxAddresses.
func TestConnLimiterBounded(t *testing.T) {
	cfg := RateConfig{ConnectRate: 1, ConnectBurst: 2, MaxAddresses: 1000}
	l := NewConnLimiter(cfg)
	now := t0
	for i := range 100000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		for range 3 { // the third is refused: the entry stays hot
			l.Allow(addr, now)
		}
		if n := l.Len(); n > cfg.MaxAddresses {
			t.Fatalf("after %d addresses the table holds %d, want at most %d", i+1, n, cfg.MaxAddresses)
		}
	}
	// Entries whose burst refilled are forgotten at the next sweep.
	later := now.Add(sweepEvery + time.Hour)
	l.Allow(netip.MustParseAddr("192.0.2.99"), later)
	if n := l.Len(); n != 1 {
		t.Fatalf("an hour later the table holds %d, want 1", n)
	}
}

// TestConnLimiterIPv6Bounded checks that one attacker with a /48 cannot
// grow the table: each /64 is one entry and the cap still holds.
func TestConnLimiterIPv6Bounded(t *testing.T) {
	l := NewConnLimiter(RateConfig{ConnectRate: 1, ConnectBurst: 1, MaxAddresses: 100})
	for i := range 10000 {
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i), 15: byte(i)}
		l.Allow(netip.AddrFrom16(a), t0)
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("table holds %d, want at most 100", n)
	}
}

func TestRemoteAddr(t *testing.T) {
	tests := []struct {
		remote string
		want   netip.Addr
	}{
		{"127.0.0.1:5000", netip.MustParseAddr("127.0.0.1")},
		{"[::1]:5000", netip.MustParseAddr("::1")},
		{"pipe", netip.Addr{}},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/ws", nil)
		r.RemoteAddr = tc.remote
		if got := RemoteAddr(r); got != tc.want {
			t.Errorf("RemoteAddr(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
}

// TestConnLimiterConcurrent runs Allow from several goroutines (for -race)
// and checks the cap holds and one address gets at least its burst.
func TestConnLimiterConcurrent(t *testing.T) {
	l := NewConnLimiter(RateConfig{ConnectRate: 1, ConnectBurst: 100, MaxAddresses: 50})
	hot := netip.MustParseAddr("192.0.2.1")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				if l.Allow(hot, t0) {
					allowed.Add(1)
				}
				// Other addresses churn the table around the hot one.
				l.Allow(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), t0)
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("table holds %d, want at most 50", n)
	}
	// The hot address may have been dropped to make room and started again
	// with a full burst, so it gets at least its burst.
	if n := allowed.Load(); n < 100 {
		t.Fatalf("hot address allowed %d times, want at least its burst of 100", n)
	}
}

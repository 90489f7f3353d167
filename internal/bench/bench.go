// Package bench is a load generator for WebSocket pub/sub servers: the
// netkit hub, and through other Dialects servers like Centrifugo. It runs
// one scenario (fanout, backpressure, idle, echo, connect or recover)
// against a server and
// returns a Report: throughput, loss, latency percentiles, connection
// errors and, for a server on this machine, its CPU time and memory from
// /proc.
//
// Run(ctx, cfg, scenario) is the whole API; "netkit bench hub" is a thin
// command over it.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what every scenario needs: where the server is and how to
// reach it.
type Config struct {
	URL     string  // WebSocket URL: ws://127.0.0.1:9999/ws
	Dialect Dialect // the server's client protocol; nil means Netkit
	// API is the base URL of the netkit hub's HTTP API
	// (http://127.0.0.1:9999); if set, the report includes GET /api/info.
	API    string
	APIKey string // bearer key for API
	// JWTSecret, if set, signs an HS256 token (internal/auth.Sign) for
	// every connection, each for its own user "bench-N"; the dialect
	// presents it (netkit: ?token=, Centrifugo: in connect).
	JWTSecret string
	// ServerPID is the server's process id when it runs on this machine;
	// if set, the report includes its CPU time and memory from /proc.
	ServerPID int
	// SourceIPs are local addresses to dial from, each connection from the
	// next; none lets the system choose. One address has about 28,000
	// ephemeral ports to one server address.
	SourceIPs   []netip.Addr
	Timeout     time.Duration // to connect, be accepted and subscribe, per connection
	Concurrency int           // connections being opened at once
	// Progress gets a status line every second, each starting with "\r"
	// to overwrite the last (meant for a terminal); nil for none.
	Progress io.Writer
}

// DefaultConfig returns a Config for a netkit hub on this machine.
func DefaultConfig() Config {
	return Config{
		URL:         "ws://127.0.0.1:9999/ws",
		Dialect:     Netkit{},
		Timeout:     10 * time.Second,
		Concurrency: 64,
	}
}

func (c *Config) validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "":
		errs = append(errs, fmt.Errorf("url: want ws://HOST:PORT/PATH or wss://..., got %q", c.URL))
	}
	if c.API != "" {
		if u, err := url.Parse(c.API); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("api: want http://HOST:PORT or https://..., got %q", c.API))
		}
	}
	if c.ServerPID < 0 {
		errs = append(errs, fmt.Errorf("server-pid: want a process id, got %d", c.ServerPID))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: want a positive duration, got %v", c.Timeout))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency: want at least 1, got %d", c.Concurrency))
	}
	return errors.Join(errs...)
}

// Scenario is one kind of load: *FanoutConfig, *BackpressureConfig,
// *IdleConfig, *EchoConfig, *ConnectConfig or *RecoverConfig.
type Scenario interface {
	// Name is the scenario's name: "fanout", "backpressure", "idle",
	// "echo", "connect" or "recover".
	Name() string
	validate() error
	connections() int // how many connections it opens at most
	settings() map[string]any
	run(ctx context.Context, r *runner) error
}

// spareDescriptors is what the process needs besides its connections:
// stdio, the poller, the API client, some slack.
const spareDescriptors = 16

// Run runs the scenario against the server and returns its report. It
// fails before starting if the settings are invalid or the scenario needs
// more file descriptors than this process may open; it returns a report
// together with an error if the run had to stop early.
func Run(ctx context.Context, cfg Config, sc Scenario) (*Report, error) {
	if cfg.Dialect == nil {
		cfg.Dialect = Netkit{}
	}
	if err := errors.Join(cfg.validate(), sc.validate()); err != nil {
		return nil, err
	}
	rep := &Report{
		Scenario: sc.Name(),
		Server:   cfg.Dialect.Name(),
		URL:      cfg.URL,
		Settings: sc.settings(),
	}
	limit, raised, err := raiseFileLimit()
	rep.Client = ClientReport{FDLimit: limit, FDLimitRaised: raised, SourceIPs: len(cfg.SourceIPs)}
	if err != nil {
		rep.warn("%v", err)
	} else if need := uint64(sc.connections() + spareDescriptors); need > limit {
		return nil, fmt.Errorf("bench: %d connections need about %d file descriptors, but this process may open %d "+
			"(RLIMIT_NOFILE, already raised to the hard limit); open fewer connections, "+
			"or run several generators side by side", sc.connections(), need, limit)
	}

	r := &runner{cfg: cfg, dialer: newDialer(&cfg, 0), report: rep}
	if err := r.serverBefore(); err != nil {
		return nil, err
	}
	stopProgress := r.startProgress()
	err = sc.run(ctx, r)
	stopProgress()
	if err != nil {
		return rep, fmt.Errorf("bench: %s: %w", sc.Name(), err)
	}
	return rep, nil
}

// runner holds what a scenario shares with Run while it runs.
type runner struct {
	cfg    Config
	dialer *dialer
	report *Report
	status atomic.Pointer[func() string] // the progress line; set by the scenario

	before procStats // the server before any connection
	cpu0   time.Duration
}

// setStatus sets the function that makes the progress line.
func (r *runner) setStatus(f func() string) { r.status.Store(&f) }

// startProgress writes the progress line every second until the returned
// function is called, which clears it.
func (r *runner) startProgress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				if f := r.status.Load(); f != nil {
					fmt.Fprintf(w, "\r%s\033[K", (*f)())
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// serverBefore reads the server's memory before the scenario connects.
func (r *runner) serverBefore() error {
	if r.cfg.ServerPID == 0 {
		return nil
	}
	st, err := readProc(r.cfg.ServerPID)
	if err != nil {
		return err
	}
	r.before = st
	return nil
}

// windowStart marks the start of the measured window (server CPU).
func (r *runner) windowStart() {
	if r.cfg.ServerPID == 0 {
		return
	}
	if st, err := readProc(r.cfg.ServerPID); err == nil {
		r.cpu0 = st.cpu
	} else {
		r.report.warn("%v", err)
	}
}

// windowEnd ends the measured window: it reports the server's CPU time
// since windowStart, per million deliveries if any, and its memory per
// connection (conns open now). It also asks the hub's /api/info.
func (r *runner) windowEnd(ctx context.Context, deliveries uint64, conns int) {
	if pid := r.cfg.ServerPID; pid != 0 {
		if st, err := readProc(pid); err != nil {
			r.report.warn("%v", err)
		} else {
			sr := &ServerReport{
				PID:         pid,
				CPUSeconds:  (st.cpu - r.cpu0).Seconds(),
				RSSBefore:   r.before.rss,
				RSSAfter:    st.rss,
				Connections: conns,
			}
			if deliveries > 0 {
				sr.CPUPerMillion = sr.CPUSeconds / float64(deliveries) * 1e6
			}
			if conns > 1 {
				sr.RSSPerConnection = (st.rss - r.before.rss) / int64(conns)
			}
			r.report.ServerProc = sr
		}
	}
	if r.cfg.API != "" {
		info, err := fetchInfo(ctx, r.cfg.API, r.cfg.APIKey)
		if err != nil {
			r.report.warn("%v", err)
		}
		r.report.Info = info
	}
}

// fetchInfo asks a netkit hub's GET /api/info.
func fetchInfo(ctx context.Context, api, key string) (*HubInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api, "/")+"/api/info", nil)
	if err != nil {
		return nil, fmt.Errorf("api info: %w", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api info: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("api info: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("api info: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var info HubInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("api info: %w", err)
	}
	return &info, nil
}

// sleepCtx waits for d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// validChannel reports whether a channel name is safe to write into JSON
// as is: printable ASCII without quotes or backslashes.
func validChannel(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

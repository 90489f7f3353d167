package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is the result of one run. Its JSON form (--json) is for scripts:
// rates are per second, latencies in microseconds, memory in bytes.
type Report struct {
	Scenario string         `json:"scenario"`
	Server   string         `json:"server"` // the dialect: "netkit", "centrifugo"
	URL      string         `json:"url"`
	Settings map[string]any `json:"settings"`

	Connect ConnectReport `json:"connect"`

	// Elapsed is the measured window: publishing (fanout), holding (idle)
	// or round trips (echo).
	Elapsed         float64 `json:"elapsed_seconds"`
	Published       uint64  `json:"published"`
	PublishErrors   uint64  `json:"publish_errors"`
	PublishedPerSec float64 `json:"published_per_second"`
	Delivered       uint64  `json:"delivered"`
	// DeliveredPerSec counts deliveries over the window and the drain.
	DeliveredPerSec float64 `json:"delivered_per_second"`
	Drain           float64 `json:"drain_seconds"` // from the last publish to the last delivery (or giving up)

	Loss    *LossReport    `json:"loss,omitempty"`
	Latency *LatencyReport `json:"latency,omitempty"`

	Backpressure *BackpressureReport `json:"backpressure,omitempty"`
	Recover      *RecoverReport      `json:"recover,omitempty"`

	ServerProc *ServerReport `json:"server_process,omitempty"`
	Info       *HubInfo      `json:"hub_info,omitempty"`
	Client     ClientReport  `json:"client"`
	Warnings   []string      `json:"warnings,omitempty"`
}

// ConnectReport counts the connections a scenario opened.
type ConnectReport struct {
	Attempted  int     `json:"attempted"`
	Opened     int     `json:"opened"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"` // to open them all
	// PerSecond is Opened / Seconds (the connect scenario).
	PerSecond float64 `json:"per_second,omitempty"`
	// Dropped counts connections that the server closed, or that failed,
	// while the scenario ran.
	Dropped int `json:"dropped"`
}

// LossReport says what subscribers missed. Every count is summed over
// subscribers; the Subscribers* fields say how many subscribers had any.
type LossReport struct {
	Expected                  uint64 `json:"expected"` // acknowledged publishes × subscribers
	Lost                      uint64 `json:"lost"`
	Duplicates                uint64 `json:"duplicates"`
	Reordered                 uint64 `json:"reordered"`
	SubscribersWithLoss       int    `json:"subscribers_with_loss"`
	SubscribersWithDuplicates int    `json:"subscribers_with_duplicates"`
	SubscribersReordered      int    `json:"subscribers_reordered"`
	// Foreign counts publications on the channel that the generator did
	// not send (other publishers), which are not tracked.
	Foreign uint64 `json:"foreign"`
}

// BackpressureReport is what the backpressure scenario adds: how the
// reading subscribers fared, which the server dropped and why, and
// whether it dropped the stuck ones.
type BackpressureReport struct {
	Acknowledged uint64 `json:"acknowledged"` // publishes the server accepted
	// PublisherDropped is the disconnect code if the server dropped the
	// publisher (which then stops), "" if not.
	PublisherDropped      string  `json:"publisher_dropped,omitempty"`
	PublisherDroppedAfter float64 `json:"publisher_dropped_after_seconds,omitempty"`
	// Expected is what each reader should get: publishes sent minus those
	// the server refused. For every reader, delivered + lost = expected.
	Expected        uint64 `json:"expected_per_reader"`
	DeliveredMin    uint64 `json:"delivered_min"` // distinct messages per reading subscriber
	DeliveredMedian uint64 `json:"delivered_median"`
	DeliveredMax    uint64 `json:"delivered_max"`
	// Dropped counts reading subscribers the server disconnected while the
	// scenario ran; DropCodes counts them by disconnect code
	// ("slow_consumer"), or "close N" for a close frame without a
	// disconnect push, or "connection error".
	Dropped        int            `json:"dropped"`
	DropCodes      map[string]int `json:"drop_codes"`
	FirstDropAfter float64        `json:"first_drop_after_seconds"` // from the first publish; 0 if none
	Stuck          int            `json:"stuck"`
	StuckDropped   int            `json:"stuck_dropped"`
	StuckDropCodes map[string]int `json:"stuck_drop_codes"`
	// StuckDroppedAfter is the time from the first publish to the first
	// leave push about a stuck subscriber that a reader saw; 0 if none was
	// seen (the server sends no leave pushes, or kept it).
	StuckDroppedAfter float64        `json:"stuck_dropped_after_seconds"`
	Readers           []ReaderReport `json:"readers"`
}

// ReaderReport is one reading subscriber of the backpressure scenario.
type ReaderReport struct {
	Delivered    uint64  `json:"delivered"` // distinct messages
	Lost         uint64  `json:"lost"`
	Dropped      string  `json:"dropped,omitempty"` // the disconnect code, if the server dropped it
	DroppedAfter float64 `json:"dropped_after_seconds,omitempty"`
	// DropError is the read error that ended the connection ("unexpected
	// EOF", "connection reset by peer", a close frame), which tells a
	// connection the server closed silently from one it closed with a code.
	DropError string `json:"drop_error,omitempty"`
}

// LatencyReport is the distribution of one latency: publish to delivery
// (fanout) or publish to own delivery (echo).
type LatencyReport struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// ServerReport is what /proc said about the server process.
type ServerReport struct {
	PID int `json:"pid"`
	// CPUSeconds is user + system time in the measured window (fanout:
	// publishing and draining; idle: holding; echo: the round trips).
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerMillion is CPUSeconds per million deliveries.
	CPUPerMillion float64 `json:"cpu_seconds_per_million,omitempty"`
	// CPUPerConnect is CPU microseconds per client handled: per connection
	// opened (connect), per client that reconnected (recover).
	CPUPerConnect    float64 `json:"cpu_us_per_connect,omitempty"`
	RSSBefore        int64   `json:"rss_before_bytes"`         // before the first connection
	RSSAfter         int64   `json:"rss_after_bytes"`          // at the end of the window, connections open
	Connections      int     `json:"connections"`              // open at the end of the window
	RSSPerConnection int64   `json:"rss_per_connection_bytes"` // (after - before) / connections; 0 with one connection
}

// HubInfo is the part of a netkit hub's GET /api/info the report shows.
type HubInfo struct {
	Node          string `json:"node"`
	Version       string `json:"version"`
	Connections   int    `json:"connections"`
	Subscriptions int    `json:"subscriptions"`
	Goroutines    int    `json:"goroutines"`
	HeapBytes     uint64 `json:"heap_bytes"`
	StackBytes    uint64 `json:"stack_bytes"`
	SysBytes      uint64 `json:"sys_bytes"`
}

// ClientReport describes the generator's own process.
type ClientReport struct {
	FDLimit       uint64 `json:"fd_limit"`        // open files allowed (RLIMIT_NOFILE)
	FDLimitRaised bool   `json:"fd_limit_raised"` // the generator raised the soft limit to the hard one
	SourceIPs     int    `json:"source_ips"`
}

func (r *Report) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

func latencyReport(h *histogram) *LatencyReport {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return &LatencyReport{
		Count: h.Count(),
		P50:   us(h.Quantile(0.50)),
		P90:   us(h.Quantile(0.90)),
		P99:   us(h.Quantile(0.99)),
		P999:  us(h.Quantile(0.999)),
		Max:   us(h.Max()),
	}
}

// WriteText writes the report for people, one aspect per line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	}
	line(r.Scenario, "%s at %s", r.Server, r.URL)
	c := r.Connect
	line("connections", "%s of %s opened in %.2fs, %s errors, %s dropped",
		count(uint64(c.Opened)), count(uint64(c.Attempted)), c.Seconds, count(uint64(c.Errors)), count(uint64(c.Dropped)))
	if c.FirstError != "" {
		line("", "first error: %s", c.FirstError)
	}
	switch r.Scenario {
	case "connect":
		line("rate", "%s connections per second", count(uint64(c.PerSecond)))
	case "recover":
		line("published", "%s while the subscribers were away, in %.2fs", count(r.Published), r.Elapsed)
		if rc := r.Recover; rc != nil {
			writeRecover(line, rc, r.Published)
		}
	case "idle":
		line("held", "%.2fs", r.Elapsed)
	default:
		line("published", "%s in %.2fs (%s/s), %s errors",
			count(r.Published), r.Elapsed, count(uint64(r.PublishedPerSec)), count(r.PublishErrors))
		drained := ""
		if r.Scenario == "fanout" || r.Scenario == "backpressure" {
			drained = fmt.Sprintf(", drained in %.2fs", r.Drain)
		}
		line("delivered", "%s (%s/s)%s", count(r.Delivered), count(uint64(r.DeliveredPerSec)), drained)
	}
	if b := r.Backpressure; b != nil {
		writeBackpressure(line, b)
	}
	if l := r.Loss; l != nil {
		r.writeLoss(line, l)
	}
	if l := r.Latency; l != nil && l.Count > 0 {
		label := "latency"
		switch r.Scenario {
		case "connect":
			label = "handshake"
		case "recover":
			label = "per client"
		}
		line(label, "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%s samples)",
			usec(l.P50), usec(l.P90), usec(l.P99), usec(l.P999), usec(l.Max), count(l.Count))
	}
	if s := r.ServerProc; s != nil {
		if s.CPUPerConnect > 0 {
			line("server cpu", "%.2fs, %.0fµs per client (pid %d)", s.CPUSeconds, s.CPUPerConnect, s.PID)
		} else if s.CPUPerMillion > 0 {
			line("server cpu", "%.2fs, %.3fs per million deliveries (pid %d)", s.CPUSeconds, s.CPUPerMillion, s.PID)
		} else {
			line("server cpu", "%.2fs (pid %d)", s.CPUSeconds, s.PID)
		}
		if s.Connections > 1 {
			line("server rss", "%s before connecting, %s with %s connections: %s per connection",
				bytesIEC(s.RSSBefore), bytesIEC(s.RSSAfter), count(uint64(s.Connections)), bytesIEC(s.RSSPerConnection))
		} else {
			line("server rss", "%s", bytesIEC(s.RSSAfter))
		}
	}
	if i := r.Info; i != nil {
		line("hub info", "%s connections, %s goroutines, heap %s, stacks %s, sys %s",
			count(uint64(i.Connections)), count(uint64(i.Goroutines)), bytesIEC(int64(i.HeapBytes)),
			bytesIEC(int64(i.StackBytes)), bytesIEC(int64(i.SysBytes)))
	}
	raised := ""
	if r.Client.FDLimitRaised {
		raised = " (soft limit raised to the hard limit)"
	}
	src := "the system's choice of source address"
	if n := r.Client.SourceIPs; n > 0 {
		src = fmt.Sprintf("%d source addresses in turn", n)
	}
	line("client", "file descriptor limit %d%s, %s", r.Client.FDLimit, raised, src)
	for _, w := range r.Warnings {
		line("warning", "%s", w)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeLoss(line func(label, format string, args ...any), l *LossReport) {
	subs := func(n int) string {
		if n == 1 {
			return "1 subscriber"
		}
		return count(uint64(n)) + " subscribers"
	}
	if l.Lost == 0 && l.Duplicates == 0 && l.Reordered == 0 {
		line("loss", "none: all %s expected deliveries arrived once, in order", count(l.Expected))
	} else {
		line("LOSS", "%s of %s lost (%s), %s duplicates (%s), %s reordered (%s)",
			count(l.Lost), count(l.Expected), subs(l.SubscribersWithLoss),
			count(l.Duplicates), subs(l.SubscribersWithDuplicates),
			count(l.Reordered), subs(l.SubscribersReordered))
	}
	if l.Foreign > 0 {
		line("", "%s publications from other publishers were ignored", count(l.Foreign))
	}
}

func writeRecover(line func(label, format string, args ...any), rc *RecoverReport, missed uint64) {
	line("reconnected", "%s of %s at once; all done in %.2fs", count(uint64(rc.Reconnected)), count(uint64(rc.Clients)), rc.Seconds)
	line("recovered", "%s recovered:true, %s recovered:false", count(uint64(rc.Recovered)), count(uint64(rc.NotRecovered)))
	if rc.Incomplete == 0 {
		line("messages", "%s clients got all %s missed messages in order (%s in all)", count(uint64(rc.Complete)), count(missed), count(rc.Messages))
	} else {
		line("INCOMPLETE", "%s clients said recovered but missed messages; %s got all %s", count(uint64(rc.Incomplete)), count(uint64(rc.Complete)), count(missed))
	}
}

func writeBackpressure(line func(label, format string, args ...any), b *BackpressureReport) {
	line("acknowledged", "%s", count(b.Acknowledged))
	if b.PublisherDropped != "" {
		line("PUBLISHER", "dropped (%s) %.2fs after publishing started; it sent nothing after that", b.PublisherDropped, b.PublisherDroppedAfter)
	}
	line("per reader", "min %s  median %s  max %s  of %s expected",
		count(b.DeliveredMin), count(b.DeliveredMedian), count(b.DeliveredMax), count(b.Expected))
	if b.Dropped == 0 {
		line("dropped", "no reading subscriber of %s", count(uint64(len(b.Readers))))
	} else {
		line("DROPPED", "%s of %s reading subscribers (%s), the first after %.2fs",
			count(uint64(b.Dropped)), count(uint64(len(b.Readers))), codes(b.DropCodes), b.FirstDropAfter)
	}
	if b.Stuck == 0 {
		return
	}
	switch {
	case b.StuckDropped == 0:
		line("stuck", "%d not dropped: still connected at the end", b.Stuck)
	case b.StuckDroppedAfter > 0:
		line("stuck", "%d of %d dropped (%s), the first %.2fs after publishing started",
			b.StuckDropped, b.Stuck, codes(b.StuckDropCodes), b.StuckDroppedAfter)
	default:
		line("stuck", "%d of %d dropped (%s), when unknown (no leave push seen)",
			b.StuckDropped, b.Stuck, codes(b.StuckDropCodes))
	}
}

// codes formats counts by code, most frequent first: "slow_consumer 37,
// close 1006 1".
func codes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// count formats n with thousands separators: 1,234,567.
func count(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// usec formats microseconds with a fitting unit: 850µs, 12.3ms, 1.52s.
func usec(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.1fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// bytesIEC formats a byte count: 512 B, 12.3 KiB, 45.6 MiB.
func bytesIEC(n int64) string {
	v, sign := float64(n), ""
	if v < 0 {
		v, sign = -v, "-"
	}
	switch {
	case v < 1<<10:
		return fmt.Sprintf("%s%.0f B", sign, v)
	case v < 1<<20:
		return fmt.Sprintf("%s%.1f KiB", sign, v/(1<<10))
	case v < 1<<30:
		return fmt.Sprintf("%s%.1f MiB", sign, v/(1<<20))
	default:
		return fmt.Sprintf("%s%.2f GiB", sign, v/(1<<30))
	}
}

// Command compare prints the table of bench/compare-hub.sh: it reads the
// JSON reports in a directory, named SERVER-CASE-RUN.json (netkit-fanout1k-1
// .json, centrifugo-idle10k-2.json ...), and prints for each case the
// figures of netkit and of Centrifugo (min–max over the runs) and the ratio
// of their medians, as a Markdown table.
//
//	go run ./bench/compare RESULTS_DIR
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/netkit/netkit/internal/bench"
)

// A row is one figure of one case.
type row struct {
	label string                              // "server CPU s per 1M deliveries"
	value func(*bench.Report) (float64, bool) // the figure, if the report has it
	unit  func(float64) string                // formats a figure
}

var (
	cpuPerM = row{"server CPU s per 1M deliveries", func(r *bench.Report) (float64, bool) {
		return serverProc(r, func(s *bench.ServerReport) float64 { return s.CPUPerMillion })
	}, f3}
	p50 = row{"latency p50", func(r *bench.Report) (float64, bool) {
		return latency(r, func(l *bench.LatencyReport) float64 { return l.P50 })
	}, us}
	p99 = row{"latency p99", func(r *bench.Report) (float64, bool) {
		return latency(r, func(l *bench.LatencyReport) float64 { return l.P99 })
	}, us}
	delRate = row{"deliveries per second", func(r *bench.Report) (float64, bool) {
		return r.DeliveredPerSec, true
	}, thousands}
	lost = row{"lost + duplicated + reordered", func(r *bench.Report) (float64, bool) {
		if r.Loss == nil {
			return 0, false
		}
		return float64(r.Loss.Lost + r.Loss.Duplicates + r.Loss.Reordered), true
	}, thousands}
	rssPerConn = row{"server RSS per connection", func(r *bench.Report) (float64, bool) {
		return serverProc(r, func(s *bench.ServerReport) float64 { return float64(s.RSSPerConnection) })
	}, kb}
	openTime = row{"seconds to open all", func(r *bench.Report) (float64, bool) {
		return r.Connect.Seconds, true
	}, f2}
	connErrs = row{"connect errors + dropped", func(r *bench.Report) (float64, bool) {
		return float64(r.Connect.Errors + r.Connect.Dropped), true
	}, thousands}
	cpuPerConnect = row{"server CPU µs per client", func(r *bench.Report) (float64, bool) {
		return serverProc(r, func(s *bench.ServerReport) float64 { return s.CPUPerConnect })
	}, f0}
	connRate = row{"connections per second", func(r *bench.Report) (float64, bool) {
		return r.Connect.PerSecond, r.Connect.PerSecond > 0
	}, thousands}
	recoverSecs = row{"seconds until all recovered", func(r *bench.Report) (float64, bool) {
		return recov(r, func(rc *bench.RecoverReport) float64 { return rc.Seconds })
	}, f2}
	recovered = row{"recovered:true", func(r *bench.Report) (float64, bool) {
		return recov(r, func(rc *bench.RecoverReport) float64 { return float64(rc.Recovered) })
	}, thousands}
	notRecovered = row{"recovered:false", func(r *bench.Report) (float64, bool) {
		return recov(r, func(rc *bench.RecoverReport) float64 { return float64(rc.NotRecovered) })
	}, thousands}
	complete = row{"clients with every missed message", func(r *bench.Report) (float64, bool) {
		return recov(r, func(rc *bench.RecoverReport) float64 { return float64(rc.Complete) })
	}, thousands}
	pubRate = row{"publisher's rate per second", func(r *bench.Report) (float64, bool) {
		return r.PublishedPerSec, true
	}, thousands}
	readersDropped = row{"reading subscribers dropped", func(r *bench.Report) (float64, bool) {
		return bp(r, func(b *bench.BackpressureReport) float64 { return float64(b.Dropped) })
	}, thousands}
	stuckDropped = row{"stuck subscribers dropped", func(r *bench.Report) (float64, bool) {
		return bp(r, func(b *bench.BackpressureReport) float64 { return float64(b.StuckDropped) })
	}, thousands}
	perReader = row{"median messages per reader", func(r *bench.Report) (float64, bool) {
		return bp(r, func(b *bench.BackpressureReport) float64 { return float64(b.DeliveredMedian) })
	}, thousands}
)

func recov(r *bench.Report, f func(*bench.RecoverReport) float64) (float64, bool) {
	if r.Recover == nil {
		return 0, false
	}
	return f(r.Recover), true
}

func bp(r *bench.Report, f func(*bench.BackpressureReport) float64) (float64, bool) {
	if r.Backpressure == nil {
		return 0, false
	}
	return f(r.Backpressure), true
}

func serverProc(r *bench.Report, f func(*bench.ServerReport) float64) (float64, bool) {
	if r.ServerProc == nil {
		return 0, false
	}
	return f(r.ServerProc), true
}

func latency(r *bench.Report, f func(*bench.LatencyReport) float64) (float64, bool) {
	if r.Latency == nil || r.Latency.Count == 0 {
		return 0, false
	}
	return f(r.Latency), true
}

// cases in table order; the file names use their keys.
var cases = []struct {
	key, title string
	rows       []row
}{
	{"fanout1k", "fanout, 1,000 subscribers", []row{cpuPerM, p50, p99, delRate, lost}},
	{"fanout5k", "fanout, 5,000 subscribers", []row{cpuPerM, p50, p99, delRate, lost}},
	{"idle10k", "idle, 10,000 connections", []row{rssPerConn, openTime, connErrs}},
	{"echo", "echo round trip", []row{p50, p99}},
	{"fanout1k-h0", "fanout, 1,000 subscribers, history off", []row{cpuPerM, p50, p99, delRate, lost}},
	{"fanout5k-h0", "fanout, 5,000 subscribers, history off", []row{cpuPerM, p50, p99, delRate, lost}},
	{"paced20", "fanout 1,000 subscribers at 20/s", []row{cpuPerM, p50, p99, lost}},
	{"paced200", "fanout 1,000 subscribers at 200/s", []row{cpuPerM, p50, p99, lost}},
	{"connect", "connect with HS256 tokens", []row{cpuPerConnect, connRate, p50, p99, connErrs}},
	{"recover", "recover 100 messages, 1,000 clients", []row{recoverSecs, recovered, notRecovered, complete, cpuPerConnect, p99}},
	{"bp100", "backpressure, 100 readers", []row{pubRate, readersDropped, perReader, cpuPerM}},
	{"bp100s", "backpressure, 100 readers + 1 stuck", []row{pubRate, readersDropped, stuckDropped, perReader, cpuPerM}},
	{"bp1k", "backpressure, 1,000 readers", []row{pubRate, readersDropped, perReader, cpuPerM}},
	{"bp1ks", "backpressure, 1,000 readers + 1 stuck", []row{pubRate, readersDropped, stuckDropped, perReader, cpuPerM}},
}

// historyPairs compare each server with itself: history on (the case)
// over history off (the case with -h0).
var historyPairs = []struct{ on, off, title string }{
	{"fanout1k", "fanout1k-h0", "fanout, 1,000 subscribers"},
	{"fanout5k", "fanout5k-h0", "fanout, 5,000 subscribers"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/compare RESULTS_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(dir string, w io.Writer) error {
	fmt.Fprintln(w, "| case | figure | netkit | Centrifugo | netkit / Centrifugo |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, c := range cases {
		nk, err := load(dir, "netkit", c.key)
		if err != nil {
			return err
		}
		cf, err := load(dir, "centrifugo", c.key)
		if err != nil {
			return err
		}
		if len(nk) == 0 && len(cf) == 0 {
			continue
		}
		for _, r := range c.rows {
			a, b := values(nk, r), values(cf, r)
			ratio := "–"
			if len(a) > 0 && len(b) > 0 && median(b) != 0 {
				ratio = fmt.Sprintf("%.2f", median(a)/median(b))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", c.title, r.label, span(a, r.unit), span(b, r.unit), ratio)
		}
	}
	return historyTable(dir, w)
}

// historyTable prints, for each server, CPU per delivery with history on
// and off and the ratio of their medians, if the reports are there.
func historyTable(dir string, w io.Writer) error {
	header := false
	for _, p := range historyPairs {
		for _, server := range []string{"netkit", "centrifugo"} {
			on, err := load(dir, server, p.on)
			if err != nil {
				return err
			}
			off, err := load(dir, server, p.off)
			if err != nil {
				return err
			}
			a, b := values(on, cpuPerM), values(off, cpuPerM)
			if len(a) == 0 || len(b) == 0 {
				continue
			}
			if !header {
				fmt.Fprintln(w)
				fmt.Fprintln(w, "| case | server | CPU s per 1M, history on | history off | on / off |")
				fmt.Fprintln(w, "|---|---|---|---|---|")
				header = true
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f |\n", p.title, server, span(a, f3), span(b, f3), median(a)/median(b))
		}
	}
	return nil
}

// load reads the reports of one server and case, in run order.
func load(dir, server, key string) ([]*bench.Report, error) {
	paths, err := filepath.Glob(filepath.Join(dir, server+"-"+key+"-[0-9]*.json"))
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	var reps []*bench.Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r bench.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		reps = append(reps, &r)
	}
	return reps, nil
}

// values returns a row's figure from each report that has it.
func values(reps []*bench.Report, r row) []float64 {
	var vs []float64
	for _, rep := range reps {
		if v, ok := r.value(rep); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

func span(vs []float64, unit func(float64) string) string {
	if len(vs) == 0 {
		return "–"
	}
	lo, hi := slices.Min(vs), slices.Max(vs)
	if unit(lo) == unit(hi) {
		return unit(lo)
	}
	return unit(lo) + "–" + unit(hi)
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

func us(v float64) string {
	switch {
	case v < 1000:
		return fmt.Sprintf("%.0f µs", v)
	case v < 1e6:
		return fmt.Sprintf("%.1f ms", v/1e3)
	default:
		return fmt.Sprintf("%.2f s", v/1e6)
	}
}

func kb(v float64) string { return fmt.Sprintf("%.1f KB", v/1000) }

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && c != '-' && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

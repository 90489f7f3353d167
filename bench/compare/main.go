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
)

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
	return nil
}

// load reads the reports of one server and case, in run order.
func load(dir, server, key string) ([]*bench.Report, error) {
	paths, err := filepath.Glob(filepath.Join(dir, server+"-"+key+"-*.json"))
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

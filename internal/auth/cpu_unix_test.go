//go:build unix

package auth

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPU returns a function to call after the benchmark loop: it adds
// the metric cpu-ns/op, the process's CPU time per iteration, which
// waiting for the cores of a busy machine does not inflate as it does
// ns/op. GC work counts.
func startCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

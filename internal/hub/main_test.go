package hub_test

import (
	"os"
	"testing"

	"github.com/netkit/netkit/internal/hubtest"
)

// TestMain runs every test of the package on the default connection layer
// (the event loop where the platform has one), then again on the goroutine
// transport. With NETKIT_BENCH_CHILD_HUB=1 the binary is a benchmark's
// child hub instead (fanout_bench_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(benchHubEnv) == "1" {
		os.Exit(runChildHub())
	}
	os.Exit(hubtest.RunBoth(m))
}

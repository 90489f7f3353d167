package cli

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/bench"
	"github.com/netkit/netkit/internal/testenv"
)

// executeBench runs "netkit bench ARGS..." and returns the options the
// generator would have run with (nil if it would not have run), the exit
// status and the output.
func executeBench(t *testing.T, args ...string) (*benchOptions, int, string, string) {
	t.Helper()
	var got *benchOptions
	runF := func(_ context.Context, opts *benchOptions) error {
		got = opts
		return nil
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), newBenchCmd(nil, runF), args, &stdout, &stderr)
	return got, code, stdout.String(), stderr.String()
}

func TestBenchBackpressureHelp(t *testing.T) {
	r := execute(t, nil, "bench", "hub", "backpressure", "--help")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0, no stderr", r.code, r.stderr)
	}
	testenv.Golden(t, "help-bench-hub-backpressure.txt", r.stdout)
}

func TestBenchBackpressureFlags(t *testing.T) {
	opts, code, _, stderr := executeBench(t, "hub", "backpressure", "--subscribers", "1000", "--stuck", "1",
		"--count", "50000", "--size", "200", "--duration", "30s", "--drain", "5s", "--channel", "bp", "--json")
	if code != 0 || opts == nil {
		t.Fatalf("exit %d, stderr %q; want the generator to run", code, stderr)
	}
	want := bench.BackpressureConfig{Subscribers: 1000, Stuck: 1, Count: 50000, Size: 200,
		Duration: 30 * time.Second, Drain: 5 * time.Second, Channel: "bp"}
	if sc, ok := opts.Scenario.(*bench.BackpressureConfig); !ok || *sc != want || !opts.JSON {
		t.Fatalf("scenario = %#v, json %v; want %#v and json", opts.Scenario, opts.JSON, want)
	}
	opts, _, _, _ = executeBench(t, "hub", "backpressure")
	if sc, ok := opts.Scenario.(*bench.BackpressureConfig); !ok || *sc != bench.DefaultBackpressure() {
		t.Fatalf("scenario = %#v, want the defaults %#v", opts.Scenario, bench.DefaultBackpressure())
	}
}

func TestBenchConnectRecoverFlags(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    string // $NETKIT_HUB_JWT_SECRET
		want   bench.Scenario
		secret string
	}{
		{"connect", []string{"hub", "connect", "--connections", "500", "--hold", "2s", "--jwt-secret", "s3"},
			"", &bench.ConnectConfig{Connections: 500, Hold: 2 * time.Second}, "s3"},
		{"connect defaults, secret from env", []string{"hub", "connect"},
			"from-env", &bench.ConnectConfig{Connections: 1000}, "from-env"},
		{"recover", []string{"hub", "recover", "--subscribers", "20", "--messages", "7", "--size", "120", "--channel", "r"},
			"", &bench.RecoverConfig{Subscribers: 20, Messages: 7, Size: 120, Channel: "r"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts *benchOptions
			runF := func(_ context.Context, o *benchOptions) error { opts = o; return nil }
			var stdout, stderr bytes.Buffer
			env := []string{"NETKIT_HUB_JWT_SECRET=" + tc.env}
			code := run(context.Background(), newBenchCmd(env, runF), tc.args, &stdout, &stderr)
			if code != 0 || opts == nil {
				t.Fatalf("exit %d, stderr %q; want the generator to run", code, stderr.String())
			}
			if !reflect.DeepEqual(opts.Scenario, tc.want) || opts.Config.JWTSecret != tc.secret {
				t.Fatalf("scenario = %#v, secret %q; want %#v, %q", opts.Scenario, opts.Config.JWTSecret, tc.want, tc.secret)
			}
		})
	}
}

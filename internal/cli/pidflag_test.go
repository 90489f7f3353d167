package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestServerPIDFlag(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    int
		wantErr string // on stderr
	}{
		{"one", "4242", 4242, ""},
		{"spaces", " 4242\n", 4242, ""},
		{"two from pgrep", "4242\n4243", 0, `invalid argument "4242\n4243" for "--server-pid" flag: 2 process ids (4242, 4243): want one; under "go run" both`},
		{"empty", "", 0, "empty: want a process id (did pgrep or pidof find no process?"},
		{"word", "netkit", 0, "want a process id, a number like 4242"},
		{"negative", "-1", 0, "want a process id, a number like 4242"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *benchOptions
			runF := func(_ context.Context, o *benchOptions) error { got = o; return nil }
			var stdout, stderr bytes.Buffer
			root := newRootCmd(nil, nil)
			for _, c := range root.Commands() {
				if c.Name() == "bench" {
					root.RemoveCommand(c) // replaced by one with runF
				}
			}
			root.AddCommand(newBenchCmd(nil, runF))
			code := run(context.Background(), root, []string{"bench", "hub", "echo", "--server-pid", tc.value}, &stdout, &stderr)
			if tc.wantErr != "" {
				if code != exitUsage || !strings.Contains(stderr.String(), tc.wantErr) || strings.Contains(stderr.String(), "strconv") {
					t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), exitUsage, tc.wantErr)
				}
				return
			}
			if code != 0 || got == nil || got.Config.ServerPID != tc.want {
				t.Fatalf("exit %d, stderr %q, options %+v; want server pid %d", code, stderr.String(), got, tc.want)
			}
		})
	}
}

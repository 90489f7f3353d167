package cli

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/testenv"
)

// result is what one run of netkit produced.
type result struct {
	code           int
	stdout, stderr string
	hub            *hubOptions // what the hub's run function got; nil if not called
}

// execute runs netkit with env and args as Execute does (with only the
// subcommand args name); the hub command records its options instead of
// starting a server.
func execute(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return executeWith(t, newRootCmdFor, env, args...)
}

// executeWith is execute with the root command built by newRoot.
func executeWith(t *testing.T, newRoot func([]string, func(context.Context, *hubOptions) error, []string) *cobra.Command, env []string, args ...string) result {
	t.Helper()
	var r result
	runHub := func(_ context.Context, opts *hubOptions) error {
		r.hub = opts
		return nil
	}
	var stdout, stderr bytes.Buffer
	r.code = run(context.Background(), newRoot(env, runHub, args), args, &stdout, &stderr)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"root", []string{"--help"}, "help-root.txt"},
		{"root without arguments", nil, "help-root.txt"},
		{"help command", []string{"help"}, "help-root.txt"},
		{"hub", []string{"hub", "--help"}, "help-hub.txt"},
		{"hub short flag", []string{"hub", "-h"}, "help-hub.txt"},
		{"help hub", []string{"help", "hub"}, "help-hub.txt"},
		{"version", []string{"version", "--help"}, "help-version.txt"},
		{"bench", []string{"bench", "--help"}, "help-bench.txt"},
		{"states", []string{"states", "--help"}, "help-states.txt"},
		{"udp", []string{"udp", "--help"}, "help-udp.txt"},
		{"tcp", []string{"tcp", "--help"}, "help-tcp.txt"},
		{"bench hub", []string{"bench", "hub", "--help"}, "help-bench-hub.txt"},
		{"bench hub fanout", []string{"bench", "hub", "fanout", "--help"}, "help-bench-hub-fanout.txt"},
		{"bench hub idle", []string{"bench", "hub", "idle", "--help"}, "help-bench-hub-idle.txt"},
		{"bench hub echo", []string{"bench", "hub", "echo", "--help"}, "help-bench-hub-echo.txt"},
		{"bench hub connect", []string{"bench", "hub", "connect", "--help"}, "help-bench-hub-connect.txt"},
		{"bench hub recover", []string{"bench", "hub", "recover", "--help"}, "help-bench-hub-recover.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := execute(t, nil, tc.args...)
			if r.code != 0 || r.stderr != "" || r.hub != nil {
				t.Fatalf("exit %d, stderr %q, hub ran: %v; want 0, no stderr, no hub", r.code, r.stderr, r.hub != nil)
			}
			testenv.Golden(t, tc.golden, r.stdout)
		})
	}
}

// TestOneCommandTree checks that building only the command run changes
// nothing a user sees: each command's help and a usage error read the
// same as with every command built, and the list of commands names them
// all.
func TestOneCommandTree(t *testing.T) {
	all := func(env []string, runHub func(context.Context, *hubOptions) error, _ []string) *cobra.Command {
		return newRootCmd(env, runHub)
	}
	var names []string
	for _, c := range newRootCmd(nil, nil).Commands() {
		if n := c.Name(); n != "help" && n != "completion" {
			names = append(names, n)
		}
	}
	var listed []string
	for _, name := range commandNames {
		listed = append(listed, name)
		if got := newCommand(name, nil, nil).Name(); got != name {
			t.Errorf("newCommand(%q) builds %q", name, got)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(names, listed) {
		t.Fatalf("root commands %v, commands table %v", names, listed)
	}
	for _, name := range names {
		for _, args := range [][]string{{name, "--help"}, {name, "--no-such-flag"}, {name, "no-such-argument", "--help"}} {
			one, full := execute(t, nil, args...), executeWith(t, all, nil, args...)
			if one.code != full.code || one.stdout != full.stdout || one.stderr != full.stderr {
				t.Errorf("%q: one command: exit %d, stdout %q, stderr %q; all: exit %d, stdout %q, stderr %q",
					args, one.code, one.stdout, one.stderr, full.code, full.stdout, full.stderr)
			}
		}
	}
}

// TestHelpEndsWithExamples checks every command's help, including commands
// added later.
func TestHelpEndsWithExamples(t *testing.T) {
	root := newRootCmd(nil, nil)
	for _, cmd := range append(root.Commands(), root) {
		if cmd.Name() == "help" {
			continue
		}
		if cmd.Example == "" {
			t.Errorf("%s has no Example", cmd.CommandPath())
			continue
		}
		out := cmd.UsageString()
		if !strings.HasSuffix(out, "Examples:\n"+cmd.Example+"\n") {
			t.Errorf("%s --help does not end with its examples:\n%s", cmd.CommandPath(), out)
		}
		if cmd.Short == "" || cmd.Long == "" {
			t.Errorf("%s lacks a Short or Long description", cmd.CommandPath())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"hb"}, `netkit: unknown command "hb"; did you mean "hub"? (see 'netkit --help')`},
		{"unknown command far from any", []string{"frobnicate"}, `netkit: unknown command "frobnicate" (see 'netkit --help')`},
		{"unknown flag", []string{"hub", "--lisen", ":1"}, `netkit hub: unknown flag: --lisen; did you mean --listen? (see 'netkit hub --help')`},
		{"unknown flag far from any", []string{"hub", "--frobnicate"}, `netkit hub: unknown flag: --frobnicate (see 'netkit hub --help')`},
		{"unknown flag of sub", []string{"sub", "room", "--cout", "3"}, `netkit sub: unknown flag: --cout; did you mean --count? (see 'netkit sub --help')`},
		{"unknown command near two", []string{"pb"}, `netkit: unknown command "pb"; did you mean "pub"? (see 'netkit --help')`},
		{"unknown root flag", []string{"--verbose"}, `netkit: unknown flag: --verbose (see 'netkit --help')`},
		{"missing flag value", []string{"hub", "--listen"}, `netkit hub: flag needs an argument: --listen (see 'netkit hub --help')`},
		{"argument to hub", []string{"hub", "extra"}, `netkit hub: unexpected argument "extra" (see 'netkit hub --help')`},
		{"argument to version", []string{"version", "extra"}, `netkit version: unexpected argument "extra" (see 'netkit version --help')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := execute(t, nil, tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d", r.code, exitUsage)
			}
			if got := strings.TrimSuffix(r.stderr, "\n"); got != tc.want {
				t.Errorf("stderr = %q, want %q", got, tc.want)
			}
			if r.stdout != "" || r.hub != nil {
				t.Errorf("stdout %q, hub ran %v; want neither", r.stdout, r.hub != nil)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	r := execute(t, nil, "version")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !regexp.MustCompile(`^netkit \S+ \(go\S+ \w+/\w+\)\n$`).MatchString(r.stdout) {
		t.Fatalf("stdout = %q, want netkit VERSION (GOVERSION OS/ARCH)", r.stdout)
	}

	old := version
	version = "v1.2.3"
	t.Cleanup(func() { version = old })
	if got := versionString(); got != "v1.2.3" {
		t.Fatalf("versionString() with -X = %q, want v1.2.3", got)
	}
}

func TestTrimPackage(t *testing.T) {
	tests := []struct {
		name, msg, path, want string
	}{
		{"own package", "udp: send: nothing listening", "netkit udp dial", "send: nothing listening"},
		{"command word", "states: not supported on windows", "netkit states", "not supported on windows"},
		{"other package", "transfer: resume a.txt", "netkit send", "transfer: resume a.txt"},
		{"after a flag", "--allow: tcp: bad", "netkit tcp serve", "--allow: bad"},
		{"twice", "udp: 127.0.0.1:1: udp: refused", "netkit udp bench", "127.0.0.1:1: refused"},
		{"root", "netkit: x", "netkit", "netkit: x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := trimPackage(tc.msg, tc.path); got != tc.want {
				t.Fatalf("trimPackage(%q, %q) = %q, want %q", tc.msg, tc.path, got, tc.want)
			}
		})
	}
}

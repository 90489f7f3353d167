package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/netkit/netkit/internal/states"
	"github.com/netkit/netkit/internal/testenv"
)

// statesRoot is netkit with the states command, until root.go adds it.
func statesRoot(runF func(context.Context, *statesOptions) error) *cobra.Command {
	root := newRootCmd(nil, nil)
	for _, c := range root.Commands() {
		if c.Name() == "states" {
			root.RemoveCommand(c) // replaced by one with runF
		}
	}
	root.AddCommand(newStatesCmd(nil, runF))
	return root
}

// runStatesCmd runs "netkit states args..." and returns the exit status,
// stdout and stderr, and the options the run function got.
func runStatesCmd(t *testing.T, ctx context.Context, record bool, args ...string) (int, string, string, *statesOptions) {
	t.Helper()
	var got *statesOptions
	var runF func(context.Context, *statesOptions) error
	if record {
		runF = func(_ context.Context, o *statesOptions) error { got = o; return nil }
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, statesRoot(runF), append([]string{"states"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String(), got
}

func TestStatesHelp(t *testing.T) {
	code, out, errOut, _ := runStatesCmd(t, context.Background(), true, "--help")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	testenv.Golden(t, "help-states.txt", out)
	cmd := newStatesCmd(nil, nil)
	if !strings.HasSuffix(out, "Examples:\n"+cmd.Example+"\n") {
		t.Fatalf("--help does not end with the examples")
	}
}

func TestStatesFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(*statesOptions) bool
		wantErr string // on stderr, after "netkit states: "
	}{
		{"defaults", nil, func(o *statesOptions) bool {
			return o.Source == states.Auto && o.Filter == states.Filter{} && o.Interval == 100*time.Millisecond && !o.Watch && !o.Procs
		}, ""},
		{"processes", []string{"-p"}, func(o *statesOptions) bool { return o.Procs }, ""},
		{"port and state", []string{"--port", "8000", "--state", "time-wait"}, func(o *statesOptions) bool {
			return o.Filter == states.Filter{Port: 8000, State: states.TimeWait}
		}, ""},
		{"listening", []string{"--listening", "--source", "proc"}, func(o *statesOptions) bool {
			return o.Filter.State == states.Listen && o.Source == states.Proc
		}, ""},
		{"watch", []string{"--watch", "--port", "1", "--interval", "20ms", "--json"}, func(o *statesOptions) bool {
			return o.Watch && o.JSON && o.Interval == 20*time.Millisecond && o.Filter.Port == 1
		}, ""},
		{"bad port", []string{"--port", "70000"}, nil, "--port 70000: want a number from 1 to 65535"},
		{"bad state", []string{"--state", "open"}, nil, `--state "open": want one of LISTEN`},
		{"bad source", []string{"--source", "kernel"}, nil, `--source "kernel": want auto, netlink or proc`},
		{"listening and state", []string{"--listening", "--state", "estab"}, nil, "--listening and --state ESTABLISHED don't go together"},
		{"two modes", []string{"--watch", "--summary"}, nil, "pick one"},
		{"watch with state", []string{"--watch", "--listening"}, nil, "use --port, not --state"},
		{"explain json", []string{"--explain", "--json"}, nil, "--explain draws text"},
		{"summary processes", []string{"--summary", "-p"}, nil, "--processes goes with the socket list only"},
		{"zero interval", []string{"--watch", "--interval", "0s"}, nil, "--interval 0s"},
		{"argument", []string{"8000"}, nil, `unexpected argument "8000"`},
		{"unknown flag", []string{"--pid"}, nil, "unknown flag: --pid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut, got := runStatesCmd(t, context.Background(), true, tc.args...)
			if tc.wantErr != "" {
				if code != exitUsage || !strings.HasPrefix(errOut, "netkit states: ") || !strings.Contains(errOut, tc.wantErr) || got != nil {
					t.Fatalf("exit %d, stderr %q, ran %v; want exit 2 and %q", code, errOut, got != nil, tc.wantErr)
				}
				return
			}
			if code != 0 || got == nil || !tc.want(got) {
				t.Fatalf("exit %d, stderr %q, options %+v", code, errOut, got)
			}
		})
	}
}

// listenLoopback listens on 127.0.0.1:0 until the test ends.
func listenLoopback(t *testing.T) (net.Listener, int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("states reads sockets on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func TestStatesRun(t *testing.T) {
	ln, port := listenLoopback(t)
	p := fmt.Sprint(port)
	comm, _ := os.ReadFile("/proc/self/comm")
	owner := fmt.Sprintf("%d/%s", os.Getpid(), strings.TrimSpace(string(comm)))
	tests := []struct {
		name string
		args []string
		want *regexp.Regexp
	}{
		{"table netlink", []string{"--port", p, "--source", "netlink"},
			regexp.MustCompile(`(?m)^STATE +RECV-Q +SEND-Q +LOCAL +REMOTE\nLISTEN +0 +\d+ +127\.0\.0\.1:` + p + ` +0\.0\.0\.0:\*\n$`)},
		{"table netlink processes", []string{"--port", p, "--source", "netlink", "-p"},
			regexp.MustCompile(`(?m)^STATE +RECV-Q +SEND-Q +LOCAL +REMOTE +PID/PROGRAM\nLISTEN +0 +\d+ +127\.0\.0\.1:` + p + ` +0\.0\.0\.0:\* +` + regexp.QuoteMeta(owner) + `\n$`)},
		{"table proc", []string{"--port", p, "--source", "proc", "--listening", "--processes"},
			regexp.MustCompile(`(?m)^LISTEN +0 +0 +127\.0\.0\.1:` + p + ` +0\.0\.0\.0:\* +` + regexp.QuoteMeta(owner) + `\n$`)},
		{"summary", []string{"--port", p, "--summary"}, regexp.MustCompile(`(?m)^ +LISTEN +1\n(.*\n)* +total +1\n$`)},
		{"summary json", []string{"--port", p, "--summary", "--json"}, regexp.MustCompile(`"LISTEN":1,.*"total":1`)},
		{"explain", []string{"--port", p, "--explain"}, regexp.MustCompile(`\[LISTEN 1\][\s\S]*\[ESTABLISHED 0\]`)},
		{"other state", []string{"--port", p, "--state", "established"}, regexp.MustCompile(`^STATE.*\n$`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut, _ := runStatesCmd(t, context.Background(), false, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !tc.want.MatchString(out) {
				t.Fatalf("output does not match %s:\n%s", tc.want, out)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, out, errOut, _ := runStatesCmd(t, context.Background(), false, "--port", p, "--json", "-p")
		if code != 0 || errOut != "" {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		var socks []states.Socket
		if err := json.Unmarshal([]byte(out), &socks); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		var raw []map[string]any
		json.Unmarshal([]byte(out), &raw)
		if len(raw) != 1 || raw[0]["state"] != "LISTEN" || raw[0]["local"] != ln.Addr().String() || raw[0]["pid"] != float64(os.Getpid()) {
			t.Fatalf("JSON %s", out)
		}
	})
}

// lineWriter sends each line written to it on a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func TestStatesWatch(t *testing.T) {
	ln, port := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lineWriter{lines: make(chan string, 100)}
	stderr := &lineWriter{lines: make(chan string, 10)}
	done := make(chan int)
	go func() {
		done <- run(ctx, statesRoot(nil), []string{"states", "--watch", "--port", fmt.Sprint(port), "--interval", "5ms"}, stdout, stderr)
	}()
	expect := func(lines chan string, re string) string {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l := <-lines:
				if regexp.MustCompile(re).MatchString(l) {
					return l
				}
			case <-timeout:
				t.Fatalf("no line matching %s", re)
			}
		}
	}
	expect(stderr.lines, fmt.Sprintf(`^watching TCP port %d every 5ms (and on every socket-destroy notification|only \(no socket-destroy notifications: .*\)), 1 sockets now; Ctrl-C to stop$`, port))

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server := regexp.QuoteMeta(ln.Addr().String() + " -> " + c.LocalAddr().String())
	expect(stdout.lines, `^\d\d:\d\d:\d\d\.\d{3}  `+server+`  new -> ESTABLISHED$`)
	c.Close()
	expect(stdout.lines, server+`  new -> ESTABLISHED -> CLOSE_WAIT$`)
	s.Close()
	expect(stdout.lines, server+`  new -> ESTABLISHED -> CLOSE_WAIT( -> LAST_ACK)? -> gone$`)
	cancel()
	expect(stdout.lines, `^transitions seen:$`)
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/hubtest"
)

// runMainEnv makes the test binary run main instead of the tests, so that
// the tests can start netkit as a child process without building it.
const runMainEnv = "NETKIT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// netkit is a netkit child process with its stderr read line by line.
type netkit struct {
	cmd    *exec.Cmd
	lines  chan string // stderr lines; closed at EOF
	stdout *strings.Builder
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's result, set before exited is closed
}

// start runs netkit with args and stops it at the end of the test.
func start(t *testing.T, args ...string) *netkit {
	t.Helper()
	n := &netkit{
		cmd:    exec.Command(os.Args[0], args...),
		lines:  make(chan string, 100),
		stdout: &strings.Builder{},
		exited: make(chan struct{}),
	}
	n.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	n.cmd.Stdout = n.stdout
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		close(n.lines)
		// Wait only after the pipe is drained, as os/exec requires.
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		for range n.lines {
		}
		<-n.exited
	})
	return n
}

// waitLine returns the first submatch of the first stderr line matching re.
func (n *netkit) waitLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-n.lines:
			if !ok {
				t.Fatalf("netkit exited before logging a line matching %s", re)
			}
			t.Log(line)
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatalf("no stderr line matching %s within 10s", re)
		}
	}
}

// wait returns the exit code, with the rest of stderr.
func (n *netkit) wait(t *testing.T) (int, string) {
	t.Helper()
	var rest []string
	timeout := time.After(15 * time.Second)
	for {
		select {
		case line, ok := <-n.lines:
			if ok {
				rest = append(rest, line)
				continue
			}
			<-n.exited
			var ee *exec.ExitError
			if errors.As(n.err, &ee) {
				return ee.ExitCode(), strings.Join(rest, "\n")
			}
			if n.err != nil {
				t.Fatalf("wait: %v", n.err)
			}
			return 0, strings.Join(rest, "\n")
		case <-timeout:
			t.Fatalf("netkit did not exit within 15s; stderr so far:\n%s", strings.Join(rest, "\n"))
		}
	}
}

// TestSignalShutsDownGracefully checks that SIGINT and SIGTERM make the hub
// tell its clients "shutdown" and exit 0.
func TestSignalShutsDownGracefully(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			n := start(t, "hub", "--listen", "127.0.0.1:0", "--api-key", "k", "--shutdown-grace", "5s")
			url := n.waitLine(t, regexp.MustCompile(`msg=listening .*url=(ws://\S+)`))
			c := hubtest.DialURL(t, url)
			if m := c.Read(); m["push"] != "welcome" {
				t.Fatalf("first push = %v, want welcome", m)
			}
			if err := n.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if m := c.Read(); m["push"] != "disconnect" || m["code"] != "shutdown" {
				t.Fatalf("push after %v = %v, want a shutdown disconnect", sig, m)
			}
			if raw, err := c.ReadRaw(); err == nil {
				t.Fatalf("read after the shutdown push = %s, want the connection closed", raw)
			}
			code, rest := n.wait(t)
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr:\n%s", code, rest)
			}
			if !strings.Contains(rest, `msg="shutting down"`) {
				t.Errorf("stderr after the signal lacks the shutdown line:\n%s", rest)
			}
		})
	}
}

// TestSecondSignalExits checks that a second signal during a graceful
// shutdown ends the process at once. The client never answers the hub's
// close frame, so the shutdown waits for it. SIGTERM rather than SIGINT:
// a shell that runs the tests in the background ignores SIGINT for its
// children, and a second SIGINT is then ignored too.
func TestSecondSignalExits(t *testing.T) {
	n := start(t, "hub", "--listen", "127.0.0.1:0", "--api-key", "k", "--shutdown-grace", "1m")
	url := n.waitLine(t, regexp.MustCompile(`msg=listening .*url=(ws://\S+)`))
	c := hubtest.DialURL(t, url)
	if m := c.Read(); m["push"] != "welcome" {
		t.Fatalf("first push = %v, want welcome", m)
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n.waitLine(t, regexp.MustCompile(`(msg="shutting down")`))
	// main restores the default action just after the context ends, and a
	// signal that comes before is dropped, so signal until it takes.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(time.Second) // the hub waits longer for the client
	for done := false; !done; {
		select {
		case <-n.exited:
			done = true
		case <-tick.C:
			n.cmd.Process.Signal(syscall.SIGTERM)
		case <-timeout:
			t.Fatal("netkit still running 1s after the second signal")
		}
	}
	ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("process ended with %v, want killed by SIGTERM", n.cmd.ProcessState)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // prefix
		stderr string
	}{
		{"version", []string{"version"}, 0, "netkit ", ""},
		{"bad setting", []string{"hub", "--ping-interval", "10"}, 1, "", `netkit hub: hub.ping_interval: want a duration like "25s", got "10" (from --ping-interval)`},
		{"listen fails", []string{"hub", "--listen", "127.0.0.1:99999"}, 1, "", "netkit hub: listen tcp: address 99999: invalid port"},
		{"usage", []string{"hub", "--nope"}, 2, "", "netkit hub: unknown flag: --nope (see 'netkit hub --help')"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := start(t, tc.args...)
			code, stderr := n.wait(t)
			if code != tc.code || stderr != tc.stderr || !strings.HasPrefix(n.stdout.String(), tc.stdout) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q..., %q", code, n.stdout.String(), stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netkit/netkit/internal/tcp"
	"github.com/netkit/netkit/internal/testenv"
	"github.com/netkit/netkit/internal/udp"
)

// netRoot is netkit's root command with the udp and tcp commands, whose
// run functions are runUDP and runTCP if not nil. It replaces any udp or
// tcp command root.go already adds.
func netRoot(runUDP func(context.Context, *udpOptions) error, runTCP func(context.Context, *tcpOptions) error) *cobra.Command {
	root := newRootCmd(nil, nil)
	for _, c := range root.Commands() {
		if c.Name() == "udp" || c.Name() == "tcp" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newUDPCmd(nil, runUDP), newTCPCmd(nil, runTCP))
	return root
}

// netResult is what one run of a udp or tcp command produced.
type netResult struct {
	code           int
	stdout, stderr string
	udp            *udpOptions // what the udp run function got
	tcp            *tcpOptions // what the tcp run function got
}

// executeNet runs args with recording run functions, or the real ones with
// real set, and stdin.
func executeNet(ctx context.Context, real bool, stdin string, args ...string) netResult {
	var r netResult
	var ru func(context.Context, *udpOptions) error
	var rt func(context.Context, *tcpOptions) error
	if !real {
		ru = func(_ context.Context, o *udpOptions) error { r.udp = o; return nil }
		rt = func(_ context.Context, o *tcpOptions) error { r.tcp = o; return nil }
	}
	root := netRoot(ru, rt)
	root.SetIn(strings.NewReader(stdin))
	var stdout, stderr bytes.Buffer
	r.code = run(ctx, root, args, &stdout, &stderr)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

func TestNetHelp(t *testing.T) {
	tests := []struct {
		args   []string
		golden string
	}{
		{[]string{"udp", "--help"}, "help-udp.txt"},
		{[]string{"udp"}, "help-udp.txt"},
		{[]string{"udp", "serve", "--help"}, "help-udp-serve.txt"},
		{[]string{"udp", "dial", "--help"}, "help-udp-dial.txt"},
		{[]string{"udp", "bench", "--help"}, "help-udp-bench.txt"},
		{[]string{"tcp", "--help"}, "help-tcp.txt"},
		{[]string{"tcp", "serve", "--help"}, "help-tcp-serve.txt"},
		{[]string{"tcp", "dial", "--help"}, "help-tcp-dial.txt"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := executeNet(context.Background(), false, "", tc.args...)
			if r.code != 0 || r.stderr != "" || r.udp != nil || r.tcp != nil {
				t.Fatalf("exit %d, stderr %q, ran %v; want 0, no stderr, nothing run", r.code, r.stderr, r.udp != nil || r.tcp != nil)
			}
			testenv.Golden(t, tc.golden, r.stdout)
		})
	}
}

// TestNetHelpComplete checks that every udp and tcp command has a
// description, help on each flag, and help ending with its examples.
func TestNetHelpComplete(t *testing.T) {
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%s lacks a Short, Long or Example", c.CommandPath())
		}
		if out := c.UsageString(); !strings.HasSuffix(out, "Examples:\n"+c.Example+"\n") {
			t.Errorf("%s --help does not end with its examples", c.CommandPath())
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" {
				t.Errorf("%s --%s has no help", c.CommandPath(), f.Name)
			}
		})
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	for _, c := range netRoot(nil, nil).Commands() {
		if c.Name() == "udp" || c.Name() == "tcp" {
			check(c)
		}
	}
}

func TestNetUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown udp command", []string{"udp", "serv"}, `netkit udp: unknown command "serv"; did you mean "serve"? (see 'netkit udp --help')`},
		{"bad udp mode", []string{"udp", "serve", "--mode", "chat"}, `netkit udp serve: --mode "chat": want echo, print or discard (see 'netkit udp serve --help')`},
		{"udp serve argument", []string{"udp", "serve", "x"}, `netkit udp serve: unexpected argument "x" (see 'netkit udp serve --help')`},
		{"udp dial no address", []string{"udp", "dial"}, `netkit udp dial: missing HOST:PORT (see 'netkit udp dial --help')`},
		{"udp dial no port", []string{"udp", "dial", "localhost"}, `netkit udp dial: localhost: missing port; want HOST:PORT like localhost:8000 (see 'netkit udp dial --help')`},
		{"udp dial two addresses", []string{"udp", "dial", "a:1", "b:2"}, `netkit udp dial: unexpected argument "b:2" (see 'netkit udp dial --help')`},
		{"udp dial size without count", []string{"udp", "dial", "a:1", "--size", "10"}, `netkit udp dial: --size needs --count (see 'netkit udp dial --help')`},
		{"udp dial huge size", []string{"udp", "dial", "a:1", "--count", "1", "--size", "70000"}, `netkit udp dial: --size 70000: want 1 to 65507 bytes (see 'netkit udp dial --help')`},
		{"udp bench zero rate", []string{"udp", "bench", "a:1", "--rate", "0"}, `netkit udp bench: --rate 0: want at least 1 datagram per second (see 'netkit udp bench --help')`},
		{"udp bench small size", []string{"udp", "bench", "a:1", "--size", "8"}, `netkit udp bench: --size 8: want 20 to 65507 bytes (see 'netkit udp bench --help')`},
		{"udp bench bad duration", []string{"udp", "bench", "a:1", "--duration", "soon"}, `netkit udp bench: invalid argument "soon" for "--duration" flag: time: invalid duration "soon" (see 'netkit udp bench --help')`},
		{"bad tcp mode", []string{"tcp", "serve", "--mode", "relay"}, `netkit tcp serve: --mode "relay": want echo, print, discard or chat (see 'netkit tcp serve --help')`},
		{"bad allow", []string{"tcp", "serve", "--allow", "10.0.0.0/33"}, `netkit tcp serve: --allow: "10.0.0.0/33": want an address or CIDR like 10.0.0.0/8 (see 'netkit tcp serve --help')`},
		{"cert without tls", []string{"tcp", "serve", "--cert", "c.pem", "--key", "k.pem"}, `netkit tcp serve: --cert and --key need --tls (see 'netkit tcp serve --help')`},
		{"cert without key", []string{"tcp", "serve", "--tls", "--cert", "c.pem"}, `netkit tcp serve: --cert and --key go together; give neither for a self-signed certificate (see 'netkit tcp serve --help')`},
		{"chat queue without unit", []string{"tcp", "serve", "--chat-queue", "65536"}, `netkit tcp serve: --chat-queue "65536": want a size from 1KiB to 1GiB like 64KiB (see 'netkit tcp serve --help')`},
		{"chat queue max below", []string{"tcp", "serve", "--chat-queue", "1MiB", "--chat-queue-max", "512KiB"}, `netkit tcp serve: --chat-queue-max "512KiB": want at least --chat-queue (1MiB) plus 34KiB, and at most 1GiB, like 1MiB (see 'netkit tcp serve --help')`},
		{"chat stall zero", []string{"tcp", "serve", "--chat-stall", "0s"}, `netkit tcp serve: --chat-stall 0s: want a positive duration like 10s (see 'netkit tcp serve --help')`},
		{"insecure without tls", []string{"tcp", "dial", "a:1", "--insecure"}, `netkit tcp dial: --insecure and --ca need --tls (see 'netkit tcp dial --help')`},
		{"insecure and ca", []string{"tcp", "dial", "a:1", "--tls", "--insecure", "--ca", "x"}, `netkit tcp dial: --insecure and --ca don't go together (see 'netkit tcp dial --help')`},
		{"tcp dial bad port", []string{"tcp", "dial", "[::1]:99999"}, `netkit tcp dial: [::1]:99999: port "99999": want a number from 1 to 65535 (see 'netkit tcp dial --help')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := executeNet(context.Background(), false, "", tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d", r.code, exitUsage)
			}
			if got := strings.TrimSuffix(r.stderr, "\n"); got != tc.want {
				t.Errorf("stderr = %q\nwant     %q", got, tc.want)
			}
			if r.udp != nil || r.tcp != nil {
				t.Errorf("the command ran")
			}
		})
	}
}

func TestNetFlags(t *testing.T) {
	r := executeNet(context.Background(), false, "", "udp", "serve", "--listen", "[::1]:9", "--mode", "print")
	if o := r.udp; o == nil || o.Command != "serve" || o.Listen != "[::1]:9" || o.Serve.Mode != udp.ModePrint {
		t.Fatalf("udp serve options = %+v", o)
	}
	r = executeNet(context.Background(), false, "", "udp", "dial", "h:1", "--count", "3", "--size", "9", "--timeout", "2s")
	if o := r.udp; o == nil || o.Dial != (udp.DialConfig{Addr: "h:1", Count: 3, Size: 9, Timeout: 2 * time.Second}) {
		t.Fatalf("udp dial options = %+v", o)
	}
	r = executeNet(context.Background(), false, "", "udp", "bench", "h:1", "--rate", "5", "--size", "100", "--duration", "3s", "--json")
	want := udp.BenchConfig{Addr: "h:1", Rate: 5, Size: 100, Duration: 3 * time.Second, Wait: time.Second}
	if o := r.udp; o == nil || o.Bench != want || !o.JSON {
		t.Fatalf("udp bench options = %+v", o)
	}
	r = executeNet(context.Background(), false, "", "tcp", "serve", "--mode", "chat", "--max-conns", "7",
		"--idle-timeout", "1m", "--allow", "10.0.0.0/8,::1", "--deny", "10.1.0.0/16", "--tls")
	o := r.tcp
	if o == nil || o.Serve.Mode != tcp.ModeChat || o.Serve.MaxConns != 7 || o.Serve.IdleTimeout != time.Minute ||
		fmt.Sprint(o.Serve.Allow) != "[10.0.0.0/8 ::1/128]" || fmt.Sprint(o.Serve.Deny) != "[10.1.0.0/16]" || !o.TLS || o.Listen != ":8002" {
		t.Fatalf("tcp serve options = %+v", o)
	}
	if o.Serve.ChatSoftLimit != tcp.DefaultChatSoftLimit || o.Serve.ChatHardLimit != tcp.DefaultChatHardLimit ||
		o.Serve.ChatStallTimeout != tcp.DefaultChatStallTimeout {
		t.Fatalf("tcp serve chat limits = %d, %d, %v; want the defaults", o.Serve.ChatSoftLimit, o.Serve.ChatHardLimit, o.Serve.ChatStallTimeout)
	}
	r = executeNet(context.Background(), false, "", "tcp", "serve", "--mode", "chat", "--chat-queue", "256KiB", "--chat-queue-max", "4MiB", "--chat-stall", "30s")
	if o := r.tcp; o == nil || o.Serve.ChatSoftLimit != 256<<10 || o.Serve.ChatHardLimit != 4<<20 || o.Serve.ChatStallTimeout != 30*time.Second {
		t.Fatalf("tcp serve chat options = %+v", o)
	}
	r = executeNet(context.Background(), false, "", "tcp", "dial", "h:1", "--tls", "--ca", "ca.pem")
	if o := r.tcp; o == nil || o.Dial.Addr != "h:1" || !o.TLS || o.CAFile != "ca.pem" || o.Insecure {
		t.Fatalf("tcp dial options = %+v", o)
	}
}

// serveCmd runs "netkit ARGS..." (a server) until the test ends, and
// returns a function that stops it and returns its result.
func serveCmd(t *testing.T, args ...string) func() netResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan netResult, 1)
	go func() { done <- executeNet(ctx, true, "", args...) }()
	var once sync.Once
	var r netResult
	stop := func() netResult {
		once.Do(func() { cancel(); r = <-done })
		return r
	}
	t.Cleanup(func() { stop() })
	return stop
}

// freePort returns a port on 127.0.0.1 free a moment ago for network
// ("tcp" or "udp").
func freePort(t *testing.T, network string) string {
	t.Helper()
	var addr net.Addr
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr()
		c.Close()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr()
		ln.Close()
	}
	return addr.String()
}

// retry runs f until it returns nil, for up to 5s: the server command
// binds its port a moment after it starts.
func retry(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUDPCommands(t *testing.T) {
	addr := freePort(t, "udp")
	stop := serveCmd(t, "udp", "serve", "--listen", addr)
	var r netResult
	retry(t, func() error {
		r = executeNet(context.Background(), true, "", "udp", "dial", addr, "--count", "2", "--size", "12", "--timeout", "200ms")
		if r.code != 0 {
			return fmt.Errorf("udp dial: exit %d, stderr %q", r.code, r.stderr)
		}
		return nil
	})
	if r.stdout != "netkit 1 ...\nnetkit 2 ...\n" {
		t.Fatalf("udp dial stdout = %q", r.stdout)
	}
	r = executeNet(context.Background(), true, "", "udp", "bench", addr, "--rate", "1000", "--duration", "200ms", "--json")
	var rep udp.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil {
		t.Fatalf("udp bench: exit %d, %v, stdout %q, stderr %q", r.code, err, r.stdout, r.stderr)
	}
	if rep.Sent != 200 || rep.Received != 200 {
		t.Fatalf("bench report = %+v, want 200 sent and received", rep)
	}
	s := stop()
	if s.code != 0 || !strings.Contains(s.stderr, "level=INFO msg=stopped datagrams=") || !strings.Contains(s.stderr, " peers=") {
		t.Fatalf("udp serve: exit %d, stderr %q; want the totals logged", s.code, s.stderr)
	}
}

func TestTCPCommands(t *testing.T) {
	addr := freePort(t, "tcp")
	stop := serveCmd(t, "tcp", "serve", "--listen", addr, "--tls")
	var r netResult
	retry(t, func() error {
		r = executeNet(context.Background(), true, "ping\n", "tcp", "dial", "--tls", "--insecure", addr)
		if r.code != 0 {
			return fmt.Errorf("tcp dial: exit %d, stderr %q", r.code, r.stderr)
		}
		return nil
	})
	if r.stdout != "ping\n" {
		t.Fatalf("tcp dial stdout = %q, want the echo", r.stdout)
	}
	r = executeNet(context.Background(), true, "ping\n", "tcp", "dial", "--tls", addr)
	if r.code != exitError || !strings.Contains(r.stderr, "certificate") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("tcp dial without --insecure: exit %d, stderr %q; want one line about the certificate", r.code, r.stderr)
	}
	s := stop()
	if s.code != 0 || !strings.Contains(s.stderr, "sha256=") {
		t.Fatalf("tcp serve: exit %d, stderr %q; want the fingerprint logged", s.code, s.stderr)
	}
}

package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/zeebo/blake3"

	"github.com/netkit/netkit/internal/testenv"
	"github.com/netkit/netkit/internal/transfer"
)

// transferResult is what one run of "netkit send" or "netkit recv" produced.
type transferResult struct {
	code           int
	stdout, stderr string
	send           *sendOptions // what send's run function got; nil if not called
	recv           *recvOptions // what recv's run function got; nil if not called
}

// executeTransfer runs netkit with args; send and recv record their options
// instead of transferring.
func executeTransfer(t *testing.T, env []string, args ...string) transferResult {
	t.Helper()
	var r transferResult
	root := newRootCmd(env, nil)
	for _, c := range root.Commands() {
		if c.Name() == "send" || c.Name() == "recv" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(
		newSendCmd(env, func(_ context.Context, o *sendOptions) error { r.send = o; return nil }),
		newRecvCmd(env, func(_ context.Context, o *recvOptions) error { r.recv = o; return nil }),
	)
	var stdout, stderr bytes.Buffer
	r.code = run(context.Background(), root, args, &stdout, &stderr)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// tempFile writes a file in a temporary directory and returns its path.
func tempFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSendHelp(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"send", []string{"send", "--help"}, "help-send.txt"},
		{"help send", []string{"help", "send"}, "help-send.txt"},
		{"recv", []string{"recv", "--help"}, "help-recv.txt"},
		{"recv short flag", []string{"recv", "-h"}, "help-recv.txt"},
		{"relay", []string{"relay", "--help"}, "help-relay.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := executeTransfer(t, nil, tc.args...)
			if r.code != 0 || r.stderr != "" || r.send != nil || r.recv != nil {
				t.Fatalf("exit %d, stderr %q, ran: %v; want 0, no stderr, no transfer", r.code, r.stderr, r.send != nil || r.recv != nil)
			}
			testenv.Golden(t, tc.golden, r.stdout)
		})
	}
}

// TestSendRecvHelpFlags checks that every flag of send and recv is
// explained.
func TestSendRecvHelpFlags(t *testing.T) {
	for _, cmd := range []*cobra.Command{newSendCmd(nil, nil), newRecvCmd(nil, nil), newRelayCmd(nil)} {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if len(f.Usage) < 10 {
				t.Errorf("%s --%s: usage %q explains too little", cmd.Name(), f.Name, f.Usage)
			}
		})
	}
}

func TestSendFlags(t *testing.T) {
	file := tempFile(t, "notes.txt", []byte("hello\n"))
	defaults := transfer.SendConfig{IdleTimeout: 30 * time.Second}
	tests := []struct {
		name  string
		args  []string
		edit  func(*transfer.SendConfig)
		style transfer.ProgressStyle
	}{
		{
			name: "one path",
			args: []string{"--code", "7-abaci-abase-abbey", "a.txt", "host:8000"},
			edit: func(c *transfer.SendConfig) {
				c.Paths, c.Addr, c.Code = []string{"a.txt"}, "host:8000", "7-abaci-abase-abbey"
			},
		},
		{
			name: "open",
			args: []string{"--open", "a.txt", "host:8000"},
			edit: func(c *transfer.SendConfig) { c.Paths, c.Addr, c.Open = []string{"a.txt"}, "host:8000", true },
		},
		{
			name: "relay without a port",
			args: []string{"--relay", "relay.example", "a.txt", "b"},
			edit: func(c *transfer.SendConfig) { c.Paths, c.Relay = []string{"a.txt", "b"}, "relay.example:8009" },
		},
		{
			name: "paths and an IPv6 address",
			args: []string{"--open", "a.txt", "photos/", "b c.txt", "[::1]:9000"},
			edit: func(c *transfer.SendConfig) {
				c.Paths, c.Addr, c.Open = []string{"a.txt", "photos/", "b c.txt"}, "[::1]:9000", true
			},
		},
		{
			name: "empty host",
			args: []string{"--open", "a.txt", ":8000"},
			edit: func(c *transfer.SendConfig) { c.Paths, c.Addr, c.Open = []string{"a.txt"}, ":8000", true },
		},
		{
			name: "every flag",
			args: []string{"--follow", "--tls", "--code", "ABCD-EFGH-IJKL-MNOP", "--idle-timeout", "1m", "--quiet", "dir", "192.168.1.20:8000"},
			edit: func(c *transfer.SendConfig) {
				c.Paths, c.Addr, c.Follow, c.TLS, c.Code, c.IdleTimeout = []string{"dir"}, "192.168.1.20:8000", true, true, "ABCD-EFGH-IJKL-MNOP", time.Minute
			},
			style: transfer.ProgressQuiet,
		},
		{
			name: "classic",
			args: []string{"--classic", file, "host:8000"},
			edit: func(c *transfer.SendConfig) { c.Paths, c.Addr, c.Classic = []string{file}, "host:8000", true },
		},
		{
			name: "classic with a file that is not there: for Send to report",
			args: []string{"--classic", "missing.txt", "host:8000"},
			edit: func(c *transfer.SendConfig) { c.Paths, c.Addr, c.Classic = []string{"missing.txt"}, "host:8000", true },
		},
		{
			name: "json",
			args: []string{"--json", "--open", "--idle-timeout", "0s", "a", "host:1"},
			edit: func(c *transfer.SendConfig) {
				c.Paths, c.Addr, c.IdleTimeout, c.Open = []string{"a"}, "host:1", 0, true
			},
			style: transfer.ProgressJSON,
		},
		{
			name:  "json wins over quiet",
			args:  []string{"--json", "--quiet", "--open", "a", "host:1"},
			edit:  func(c *transfer.SendConfig) { c.Paths, c.Addr, c.Open = []string{"a"}, "host:1", true },
			style: transfer.ProgressJSON,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := executeTransfer(t, nil, append([]string{"send"}, tc.args...)...)
			if r.code != 0 || r.send == nil {
				t.Fatalf("exit %d, send ran %v, stderr %q", r.code, r.send != nil, r.stderr)
			}
			want := defaults
			tc.edit(&want)
			if !reflect.DeepEqual(r.send.Config, want) {
				t.Errorf("config =\n%+v\nwant\n%+v", r.send.Config, want)
			}
			// Output goes to buffers in tests, never a terminal: no bars.
			if tc.style == 0 {
				tc.style = transfer.ProgressLines
			}
			if r.send.Style != tc.style {
				t.Errorf("style = %v, want %v", r.send.Style, tc.style)
			}
		})
	}
}

func TestSendBadArgs(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil,
			`missing PATH... HOST:PORT: what to send and where (or --relay RELAY PATH...)`},
		{"relay and nothing", []string{"--relay", "r"},
			`missing PATH...: what to send`},
		{"no code", []string{"a.txt", "host:8000"},
			`missing --code: the code "netkit recv" printed, like 7-tiger-lamp-cloud (or --open for a receiver that runs with --open)`},
		{"bad code", []string{"--code", "7-river-lamp", "a.txt", "host:8000"},
			`--code "7-river-lamp": want the code netkit recv printed, a number and three words like 7-tiger-lamp-cloud`},
		{"relay with a code", []string{"--relay", "r", "--code", "7-abaci-abase-abbey", "a.txt"},
			`--relay makes a new code and prints it; --code is for sending to a receiver that printed one`},
		{"open with a code", []string{"--open", "--code", "7-abaci-abase-abbey", "a.txt", "h:1"},
			`--code and --open don't go together: an --open or classic receiver checks no code`},
		{"only an address", []string{"host:8000"},
			`nothing to send: give at least one PATH before host:8000`},
		{"only a path", []string{"a.txt"},
			`missing the receiver's HOST:PORT after a.txt (or send through a relay with --relay RELAY)`},
		{"no port", []string{"a.txt", "192.168.1.20"},
			`192.168.1.20: missing port; want HOST:PORT like 192.168.1.20:8000`},
		{"address first", []string{"host:8000", "a.txt"},
			`a.txt: missing port; want HOST:PORT like a.txt:8000`},
		{"IPv6 without brackets", []string{"a.txt", "::1"},
			`::1: want HOST:PORT like 192.168.1.20:8000 or [::1]:8000`},
		{"port name", []string{"a.txt", "host:http"},
			`host:http: port "http": want a number from 1 to 65535`},
		{"port 0", []string{"a.txt", "host:0"},
			`host:0: port "0": want a number from 1 to 65535`},
		{"port too large", []string{"a.txt", "host:65536"},
			`host:65536: port "65536": want a number from 1 to 65535`},
		{"classic with two paths", []string{"--classic", "a.txt", "b.txt", "host:8000"},
			`--classic sends exactly one file, got 2 paths`},
		{"classic with a directory", []string{"--classic", dir, "host:8000"},
			`--classic sends one regular file; ` + dir + ` is not one`},
		{"classic with TLS", []string{"--classic", "--tls", "--code", "X", "a.txt", "host:8000"},
			`--relay, --open, --classic and --tls are different ways to send: pick one`},
		{"tls without code", []string{"--tls", "a.txt", "host:8000"},
			`--tls needs --code, the fingerprint "netkit recv --tls" printed`},
		{"negative idle timeout", []string{"--idle-timeout", "-1s", "a.txt", "host:8000"},
			`--idle-timeout -1s: want a duration like 30s, or 0 for none`},
		{"idle timeout without unit", []string{"--idle-timeout", "30", "a.txt", "host:8000"},
			`invalid argument "30" for "--idle-timeout" flag: time: missing unit in duration "30"`},
		{"recv flag", []string{"--dir", "x", "a.txt", "host:8000"},
			`unknown flag: --dir`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := executeTransfer(t, nil, append([]string{"send"}, tc.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d", r.code, exitUsage)
			}
			want := "netkit send: " + tc.want + " (see 'netkit send --help')\n"
			if r.stderr != want {
				t.Errorf("stderr = %q, want %q", r.stderr, want)
			}
			if r.stdout != "" || r.send != nil {
				t.Errorf("stdout %q, send ran %v; want neither", r.stdout, r.send != nil)
			}
		})
	}
}

func TestRecvFlags(t *testing.T) {
	dir := t.TempDir()
	defaults := recvOptions{Listen: ":8000", Config: transfer.RecvConfig{Dir: ".", IdleTimeout: 30 * time.Second,
		Hold: 2 * time.Minute, MaxConns: 16, MaxFailures: 10}}
	tests := []struct {
		name  string
		args  []string
		edit  func(*recvOptions)
		style transfer.ProgressStyle
		stdin bool // --confirm: Stdin is set
		tty   bool // stdin is a terminal
	}{
		{name: "defaults"},
		{
			name: "every flag",
			args: []string{
				"--listen", "127.0.0.1:9000", "--dir", dir, "--once", "--overwrite",
				"--max-size", "10GiB", "--idle-timeout", "5m", "--tls", "--json",
				"--hold", "1m", "--max-conns", "4", "--max-failures", "3",
			},
			edit: func(o *recvOptions) {
				o.Listen = "127.0.0.1:9000"
				c := &o.Config
				c.Dir, c.Once, c.Overwrite, c.MaxSize, c.IdleTimeout, c.TLS = dir, true, true, 10<<30, 5*time.Minute, true
				c.Hold, c.MaxConns, c.MaxFailures = time.Minute, 4, 3
			},
			style: transfer.ProgressJSON,
		},
		{
			name: "classic, once, quiet",
			args: []string{"--classic", "--once", "--quiet", "--max-size", "512MiB"},
			edit: func(o *recvOptions) {
				o.Listen = "127.0.0.1:8000" // no code: this machine only, unless --listen
				o.Config.Classic, o.Config.Once, o.Config.MaxSize = true, true, 512<<20
			},
			style: transfer.ProgressQuiet,
		},
		{
			name: "open on every interface, asked for",
			args: []string{"--open", "--listen", ":8000"},
			edit: func(o *recvOptions) { o.Config.Open = true },
		},
		{
			name:  "confirm on a terminal",
			args:  []string{"--confirm"},
			edit:  func(o *recvOptions) { o.Confirm = true },
			stdin: true,
			tty:   true,
		},
		{
			name: "confirm with yes, no terminal",
			args: []string{"--confirm", "--yes"},
			edit: func(o *recvOptions) { o.Confirm, o.Yes = true, true },
		},
		{
			name: "yes alone",
			args: []string{"--yes"},
			edit: func(o *recvOptions) { o.Yes = true },
		},
		{
			name: "a code of our own",
			args: []string{"--code", "7-Abaci-abase abbey"},
			edit: func(o *recvOptions) { o.Config.Code = "7-Abaci-abase abbey" },
		},
		{
			name: "relay",
			args: []string{"--relay", "relay.example", "7-abaci-abase-abbey"},
			edit: func(o *recvOptions) {
				o.Config.Relay, o.Config.Code, o.Config.Once = "relay.example:8009", "7-abaci-abase-abbey", true
			},
		},
		{
			name: "IPv6 listen address",
			args: []string{"--listen", "[::1]:0"},
			edit: func(o *recvOptions) { o.Listen = "[::1]:0" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fakeTerminal(t, tc.tty)
			r := executeTransfer(t, nil, append([]string{"recv"}, tc.args...)...)
			if r.code != 0 || r.recv == nil {
				t.Fatalf("exit %d, recv ran %v, stderr %q", r.code, r.recv != nil, r.stderr)
			}
			want := defaults
			if tc.edit != nil {
				tc.edit(&want)
			}
			got := *r.recv
			if (got.Stdin != nil) != tc.stdin {
				t.Errorf("stdin set %v, want %v", got.Stdin != nil, tc.stdin)
			}
			got.Stdout, got.Stderr, got.Style, got.Stdin = nil, nil, 0, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("options =\n%+v\nwant\n%+v", got, want)
			}
			if tc.style == 0 {
				tc.style = transfer.ProgressLines
			}
			if r.recv.Style != tc.style {
				t.Errorf("style = %v, want %v", r.recv.Style, tc.style)
			}
		})
	}
}

func TestRecvBadFlags(t *testing.T) {
	dir := t.TempDir()
	file := tempFile(t, "f", nil)
	tests := []struct {
		name string
		args []string
		code int
		want string // the whole of stderr, without the trailing newline
	}{
		{"size without unit", []string{"--max-size", "100"}, exitUsage,
			`netkit recv: --max-size "100": want a size like 10GiB, in B, KiB, MiB, GiB or TiB (powers of 1024) (see 'netkit recv --help')`},
		{"decimal size", []string{"--max-size", "10GB"}, exitUsage,
			`netkit recv: --max-size "10GB": want a size like 10GiB, in B, KiB, MiB, GiB or TiB (powers of 1024) (see 'netkit recv --help')`},
		{"listen without port", []string{"--listen", "8000"}, exitUsage,
			`netkit recv: --listen "8000": want HOST:PORT or :PORT, like :8000 (see 'netkit recv --help')`},
		{"negative idle timeout", []string{"--idle-timeout", "-5s"}, exitUsage,
			`netkit recv: --idle-timeout -5s: want a duration like 30s, or 0 for none (see 'netkit recv --help')`},
		{"classic with TLS", []string{"--classic", "--tls"}, exitUsage,
			`netkit recv: --relay, --open, --classic and --tls are different ways to receive: pick one (see 'netkit recv --help')`},
		{"argument", []string{"photos"}, exitUsage,
			`netkit recv: unexpected argument "photos" (recv takes flags only; with --relay, the code) (see 'netkit recv --help')`},
		{"bad code", []string{"--code", "X"}, exitUsage,
			`netkit recv: code "X": want a number and three words like 7-tiger-lamp-cloud (see 'netkit recv --help')`},
		{"open with a code", []string{"--open", "--code", "7-abaci-abase-abbey"}, exitUsage,
			`netkit recv: --code goes with the default mode or --relay: --open, --classic and --tls take files without a code (see 'netkit recv --help')`},
		{"relay without the code", []string{"--relay", "r"}, exitUsage,
			`netkit recv: --relay RELAY needs the CODE that netkit send --relay printed, like 7-tiger-lamp-cloud (see 'netkit recv --help')`},
		{"relay and listen", []string{"--relay", "r", "--listen", ":1", "7-abaci-abase-abbey"}, exitUsage,
			`netkit recv: --relay and --listen don't go together: through a relay recv listens on no port (see 'netkit recv --help')`},
		{"confirm without a terminal", []string{"--confirm"}, exitUsage,
			`netkit recv: --confirm asks y/n on the terminal, and stdin is not one: add --yes to accept every offer (each is still shown), or run recv in a terminal (see 'netkit recv --help')`},
		{"code argument without a relay", []string{"7-abaci-abase-abbey"}, exitUsage,
			`netkit recv: a code argument fetches through a relay: give --relay RELAY (or set a default: [transfer] relay in --config, or NETKIT_TRANSFER_RELAY); to require this code from senders, use --code 7-abaci-abase-abbey (see 'netkit recv --help')`},
		{"send flag", []string{"--follow"}, exitUsage,
			`netkit recv: unknown flag: --follow (see 'netkit recv --help')`},
		{"dir missing", []string{"--dir", filepath.Join(dir, "nope")}, exitError,
			`netkit recv: --dir ` + filepath.Join(dir, "nope") + `: no such directory`},
		{"dir is a file", []string{"--dir", file}, exitError,
			`netkit recv: --dir ` + file + `: not a directory`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := executeTransfer(t, nil, append([]string{"recv"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			if got := strings.TrimSuffix(r.stderr, "\n"); got != tc.want {
				t.Errorf("stderr = %q, want %q", got, tc.want)
			}
			if r.stdout != "" || r.recv != nil {
				t.Errorf("stdout %q, recv ran %v; want neither", r.stdout, r.recv != nil)
			}
		})
	}
}

// TestRecvListenError runs the real receiver on an address in use.
func TestRecvListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := Execute(context.Background(), []string{"recv", "--listen", ln.Addr().String(), "--dir", t.TempDir()}, &stdout, &stderr)
	want := "netkit recv: listen tcp " + ln.Addr().String() + ": bind: address already in use\n"
	if code != exitError || stderr.String() != want || stdout.Len() != 0 {
		t.Fatalf("exit %d, stderr %q, stdout %q; want %d, %q, nothing", code, stderr.String(), stdout.String(), exitError, want)
	}
}

func TestSendTally(t *testing.T) {
	file := func(kind string) transfer.Event { return transfer.Event{Kind: kind, File: "f", Reason: "r"} }
	tests := []struct {
		name            string
		events          []transfer.Event
		summaryRejected int
		summaryFailed   int
		want            string // "" for no error
	}{
		{name: "all well", events: []transfer.Event{file(transfer.EventDone), file(transfer.EventSkip), file(transfer.EventWarning)}},
		{name: "one rejected", events: []transfer.Event{file(transfer.EventDone), file(transfer.EventReject)}, want: "1 file rejected (reasons above)"},
		{name: "rejected per the summary", summaryRejected: 2, want: "2 files rejected (reasons above)"},
		{name: "failed per the summary", summaryFailed: 1, want: "1 file failed (reasons above)"},
		{name: "two failed", events: []transfer.Event{file(transfer.EventError), file(transfer.EventError)}, want: "2 files failed (reasons above)"},
		{name: "both", events: []transfer.Event{file(transfer.EventReject), file(transfer.EventError)}, want: "2 files not transferred: 1 rejected, 1 failed (reasons above)"},
		{name: "an error about no file", events: []transfer.Event{{Kind: transfer.EventError, Reason: "connection reset"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tl tally
			var passed int
			count := tl.count(func(transfer.Event) { passed++ })
			for _, e := range tc.events {
				count(e)
			}
			if passed != len(tc.events) {
				t.Errorf("passed on %d events, want %d", passed, len(tc.events))
			}
			if got := errString(tl.err(tc.summaryRejected, tc.summaryFailed)); got != tc.want {
				t.Errorf("err = %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSendRecvEndToEnd runs "netkit recv --once --json" and "netkit send
// --json" through Execute on loopback and checks that the file arrives,
// verified, and that both print only JSON events on stdout.
func TestSendRecvEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	content := make([]byte, 3<<20+17)
	rand.Read(content)
	src := tempFile(t, "data.bin", content)
	dir := t.TempDir()

	// The receiver's stdout is a pipe, read line by line, so that the test
	// learns the port from its "listening" event.
	pr, pw := io.Pipe()
	var recvStderr bytes.Buffer
	recvCode := make(chan int, 1)
	go func() {
		code := Execute(ctx, []string{"recv", "--listen", "127.0.0.1:0", "--dir", dir, "--once", "--json"}, pw, &recvStderr)
		pw.Close()
		recvCode <- code
	}()
	type recvOutput struct {
		events  []transfer.Event
		badLine string // the first line that is not a JSON event
	}
	listening := make(chan transfer.Event, 1)
	recvOut := make(chan recvOutput, 1)
	go func() {
		var o recvOutput
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var e transfer.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				o.badLine = cmp.Or(o.badLine, sc.Text())
				continue
			}
			if e.Kind == transfer.EventListening && len(o.events) == 0 {
				listening <- e
			}
			o.events = append(o.events, e)
		}
		io.Copy(io.Discard, pr) // after a line too long: don't block recv
		recvOut <- o
	}()
	var ready transfer.Event
	select {
	case ready = <-listening:
	case o := <-recvOut:
		// Until internal/transfer implements Receive, recv stops here
		// with "transfer: not implemented".
		t.Fatalf("recv printed no listening event; exit %d, stderr %q, events %+v", <-recvCode, recvStderr.String(), o.events)
	}

	var stdout, stderr bytes.Buffer
	if ready.Code == "" {
		t.Fatalf("listening event %+v has no code", ready)
	}
	code := Execute(ctx, []string{"send", "--json", "--code", ready.Code, src, ready.Addr}, &stdout, &stderr)
	if code != exitOK || stderr.Len() != 0 {
		t.Fatalf("send: exit %d, stderr %q; want 0 and nothing", code, stderr.String())
	}
	if code := <-recvCode; code != exitOK || recvStderr.Len() != 0 {
		t.Fatalf("recv: exit %d, stderr %q; want 0 and nothing", code, recvStderr.String())
	}
	o := <-recvOut
	if o.badLine != "" {
		t.Fatalf("recv printed a line that is not a JSON event: %q", o.badLine)
	}

	got, err := os.ReadFile(filepath.Join(dir, "data.bin"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("received file: %d bytes, error %v; want the %d bytes sent", len(got), err, len(content))
	}
	sum := blake3.Sum256(content)
	hash := hex.EncodeToString(sum[:])

	sendEvents := parseEvents(t, "send", stdout.String())
	for _, side := range []struct {
		name   string
		events []transfer.Event
	}{{"send", sendEvents}, {"recv", o.events}} {
		done := findEvent(side.events, transfer.EventDone)
		if done == nil || done.File != "data.bin" || done.Size != int64(len(content)) || done.Hash != hash {
			t.Errorf("%s done event = %+v, want data.bin, %d bytes, blake3 %s", side.name, done, len(content), hash)
		}
		s := findEvent(side.events, transfer.EventSummary)
		if s == nil || s.Files != 1 || s.Verified != 1 {
			t.Errorf("%s summary event = %+v, want 1 file, 1 verified", side.name, s)
		}
	}
}

// parseEvents parses JSON lines, failing on anything else.
func parseEvents(t *testing.T, who, out string) []transfer.Event {
	t.Helper()
	var events []transfer.Event
	for line := range strings.Lines(out) {
		var e transfer.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%s printed a line that is not a JSON event: %q", who, line)
		}
		events = append(events, e)
	}
	return events
}

// findEvent returns the last event of kind, or nil.
func findEvent(events []transfer.Event, kind string) *transfer.Event {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Kind == kind {
			return &events[i]
		}
	}
	return nil
}

func TestRelayFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want relayOptions // Stderr is not compared
		err  string       // "" for success
	}{
		{name: "defaults", want: relayOptions{Listen: ":8009", Config: transfer.RelayConfig{
			MaxRooms: 100, RoomBytes: 64 << 30, RoomTime: 6 * time.Hour, WaitTime: 10 * time.Minute}}},
		{name: "every flag", args: []string{"--listen", "127.0.0.1:9000", "--max-rooms", "3", "--room-bytes", "1GiB", "--room-time", "1h", "--wait", "1m"},
			want: relayOptions{Listen: "127.0.0.1:9000", Config: transfer.RelayConfig{
				MaxRooms: 3, RoomBytes: 1 << 30, RoomTime: time.Hour, WaitTime: time.Minute}}},
		{name: "bad size", args: []string{"--room-bytes", "lots"},
			err: `netkit relay: --room-bytes "lots": want a size like 4GiB, in B, KiB, MiB, GiB or TiB (powers of 1024) (see 'netkit relay --help')`},
		{name: "no rooms", args: []string{"--max-rooms", "0"},
			err: `netkit relay: --max-rooms: want a number of at least 1 (see 'netkit relay --help')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *relayOptions
			root := newRootCmd(nil, nil)
			for _, c := range root.Commands() {
				if c.Name() == "relay" {
					root.RemoveCommand(c)
				}
			}
			root.AddCommand(newRelayCmd(func(_ context.Context, o *relayOptions) error { got = o; return nil }))
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), root, append([]string{"relay"}, tc.args...), &stdout, &stderr)
			if tc.err != "" {
				if code != exitUsage || strings.TrimSuffix(stderr.String(), "\n") != tc.err {
					t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr.String(), exitUsage, tc.err)
				}
				return
			}
			if code != 0 || got == nil {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			g := *got
			g.Stderr = nil
			if !reflect.DeepEqual(g, tc.want) {
				t.Errorf("options =\n%+v\nwant\n%+v", g, tc.want)
			}
		})
	}
}

// fakeTerminal makes recv see its stdin as a terminal, or not, for the
// rest of the test.
func fakeTerminal(t *testing.T, tty bool) {
	t.Helper()
	old := inputIsTerminal
	inputIsTerminal = func(io.Reader) bool { return tty }
	t.Cleanup(func() { inputIsTerminal = old })
}

func TestAcceptShown(t *testing.T) {
	var out bytes.Buffer
	offer := transfer.Offer{Peer: "10.0.0.5:51234", Entries: 1, Files: 1, Bytes: 6,
		Names: []transfer.OfferedFile{{Name: "a.txt", Size: 6}}}
	if !acceptShown(&out)(offer) {
		t.Fatal("declined, want accepted")
	}
	want := "10.0.0.5:51234 offers 1 file, 6 B:\n  a.txt (6 B)\naccepted (--yes)\n"
	if out.String() != want {
		t.Errorf("shown %q, want %q", out.String(), want)
	}
}

func TestConfirmer(t *testing.T) {
	offer := transfer.Offer{Peer: "10.0.0.5:51234", Entries: 23, Files: 22, Bytes: 3 << 20,
		Names: []transfer.OfferedFile{{Name: "photos", Dir: true}, {Name: "photos/a.jpg", Size: 1 << 20}}}
	tests := []struct {
		in   string
		want bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"", false}}
	for _, tc := range tests {
		var out bytes.Buffer
		if got := confirmer(strings.NewReader(tc.in), &out)(offer); got != tc.want {
			t.Errorf("answer %q: %v, want %v", tc.in, got, tc.want)
		}
		want := "10.0.0.5:51234 offers 22 files, 3.0 MiB:\n  photos/\n  photos/a.jpg (1.0 MiB)\n  and 21 more\naccept? [y/N] "
		if !strings.HasPrefix(out.String(), want) {
			t.Errorf("prompt %q, want %q", out.String(), want)
		}
	}
}

// TestRelayEndToEnd runs "netkit send --relay" and "netkit recv --relay"
// through Execute against a relay on 127.0.0.1: the sender prints a
// code, the receiver fetches with it, neither listens. With --confirm
// --yes, recv shows the offer once (the confirmation, no separate
// "offers" line) and accepts it.
func TestRelayEndToEnd(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		check func(t *testing.T, stderr string)
	}{
		{"quiet", []string{"--quiet"}, func(t *testing.T, stderr string) {}},
		{"confirm --yes", []string{"--confirm", "--yes"}, func(t *testing.T, stderr string) {
			if n := strings.Count(stderr, " offers "); n != 1 {
				t.Errorf("recv showed the offer %d times, want once:\n%s", n, stderr)
			}
			if !strings.Contains(stderr, " offers 1 file, 1.0 MiB:\n  via-relay.bin (1.0 MiB)\naccepted (--yes)\n") {
				t.Errorf("recv's stderr:\n%s\nwant the offer with its file, then accepted (--yes)", stderr)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			relayDone := make(chan error, 1)
			go func() {
				relayDone <- transfer.Relay(ctx, ln, transfer.RelayConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			}()
			defer func() { cancel(); <-relayDone }()
			relay := ln.Addr().String()
			content := make([]byte, 1<<20+3)
			rand.Read(content)
			src := tempFile(t, "via-relay.bin", content)
			dir := t.TempDir()

			pr, pw := io.Pipe()
			var sendStderr bytes.Buffer
			sendCode := make(chan int, 1)
			go func() {
				code := Execute(ctx, []string{"send", "--relay", relay, "--json", src}, pw, &sendStderr)
				pw.Close()
				sendCode <- code
			}()
			codes := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					var e transfer.Event
					if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind == transfer.EventCode {
						codes <- e.Code
					}
				}
				io.Copy(io.Discard, pr)
			}()
			var code string
			select {
			case code = <-codes:
			case c := <-sendCode:
				t.Fatalf("send exited %d before printing a code: %s", c, sendStderr.String())
			}
			var stdout, stderr bytes.Buffer
			args := append([]string{"recv", "--relay", relay, "--dir", dir}, tc.flags...)
			if c := Execute(ctx, append(args, code), &stdout, &stderr); c != exitOK {
				t.Fatalf("recv --relay: exit %d, stderr %q", c, stderr.String())
			}
			if c := <-sendCode; c != exitOK {
				t.Fatalf("send --relay: exit %d, stderr %q", c, sendStderr.String())
			}
			if got, err := os.ReadFile(filepath.Join(dir, "via-relay.bin")); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("received %d bytes, %v; want the %d sent", len(got), err, len(content))
			}
			tc.check(t, stderr.String())
		})
	}
}

// TestDefaultRelay: [transfer] relay from --config or NETKIT_TRANSFER_RELAY
// is used by send without a mode flag and by recv with a code argument;
// --relay and --no-relay override it; a broken setting is an error.
func TestDefaultRelay(t *testing.T) {
	file := filepath.Join(t.TempDir(), "netkit.toml")
	if err := os.WriteFile(file, []byte("[transfer]\nrelay = \"file.example:9000\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[transfer]\nrelays = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"NETKIT_TRANSFER_RELAY=env.example"}
	code := "7-abaci-abase-abbey"
	tests := []struct {
		name      string
		env       []string
		args      []string
		wantRelay string // the relay send or recv got
		wantErr   string // a part of stderr, when the command fails
	}{
		{name: "send, variable", env: env, args: []string{"send", "a.txt"}, wantRelay: "env.example:8009"},
		{name: "send, file", args: []string{"send", "--config", file, "a.txt", "b"}, wantRelay: "file.example:9000"},
		{name: "send, the variable beats the file", env: env, args: []string{"send", "--config", file, "a.txt"}, wantRelay: "env.example:8009"},
		{name: "send, --relay beats both", env: env, args: []string{"send", "--relay", "flag.example", "a.txt"}, wantRelay: "flag.example:8009"},
		{name: "send with a code goes direct", env: env, args: []string{"send", "--code", code, "a.txt", "host:8000"}},
		{name: "send --open goes direct", env: env, args: []string{"send", "--open", "a.txt", "host:8000"}},
		{name: "send --no-relay", env: env, args: []string{"send", "--no-relay", "a.txt", "host:8000"}, wantErr: "missing --code"},
		{name: "send --relay empty", env: env, args: []string{"send", "--relay", "", "a.txt", "host:8000"}, wantErr: "missing --code"},
		{name: "send --relay and --no-relay", env: env, args: []string{"send", "--no-relay", "--relay", "r", "a.txt"}, wantErr: "--relay and --no-relay don't go together"},
		{name: "send, no default", args: []string{"send", "a.txt"}, wantErr: "missing the receiver's HOST:PORT"},
		{name: "recv CODE, variable", env: env, args: []string{"recv", code}, wantRelay: "env.example:8009"},
		{name: "recv CODE, file", args: []string{"recv", "--config", file, code}, wantRelay: "file.example:9000"},
		{name: "recv without a code listens", env: env, args: []string{"recv"}},
		{name: "recv --code listens", env: env, args: []string{"recv", "--code", code}},
		{name: "recv --no-relay CODE", env: env, args: []string{"recv", "--no-relay", code}, wantErr: "a code argument fetches through a relay"},
		{name: "bad variable", env: []string{"NETKIT_TRANSFER_RELAY=a b"}, args: []string{"send", "a.txt"}, wantErr: "transfer.relay: want a host or host:port"},
		{name: "bad port", env: []string{"NETKIT_TRANSFER_RELAY=r:99999"}, args: []string{"recv", code}, wantErr: "transfer.relay: port"},
		{name: "unknown variable", env: []string{"NETKIT_TRANSFER_RELAYS=r"}, args: []string{"send", "a.txt"}, wantErr: "NETKIT_TRANSFER_RELAYS"},
		{name: "unknown key in the file", args: []string{"recv", "--config", bad}, wantErr: "relays"},
		{name: "missing file", args: []string{"send", "--config", file + ".nope", "a.txt"}, wantErr: "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := executeTransfer(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				if r.code == 0 || !strings.Contains(r.stderr, tc.wantErr) {
					t.Fatalf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tc.wantErr)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			var got string
			switch {
			case r.send != nil:
				got = r.send.Config.Relay
			case r.recv != nil:
				got = r.recv.Config.Relay
			}
			if got != tc.wantRelay {
				t.Errorf("relay %q, want %q", got, tc.wantRelay)
			}
		})
	}
}

package cli

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

// writeFile writes content to a file in a temporary directory and returns
// its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHubSettings(t *testing.T) {
	const file = `
[hub]
listen = "127.0.0.1:1"
api_key = "from-file"
max_message_size = "128KiB"
ping_interval = "1m"
join_leave = false

[log]
format = "json"
`
	tests := []struct {
		name string
		file string // content of --config, if not ""
		env  []string
		args []string
		edit func(*hubConfig) // applied to the defaults to get the want
	}{
		{name: "defaults"},
		{
			name: "every flag",
			args: []string{
				"--listen", "127.0.0.1:1", "--ws-path", "/socket", "--api-key", "secret",
				"--node-id", "n1", "--join-leave=false", "--max-message-size", "1MiB",
				"--queue-messages", "10", "--queue-bytes", "2MiB", "--max-subscriptions", "5",
				"--max-connections", "0", "--ping-interval", "1m", "--pong-timeout", "5s",
				"--write-timeout", "2s", "--shutdown-grace", "1h30m",
				"--log-level", "debug", "--log-format", "json",
			},
			edit: func(c *hubConfig) {
				h := &c.Hub
				h.Listen, h.WSPath, h.APIKey, h.NodeID, h.JoinLeave = "127.0.0.1:1", "/socket", "secret", "n1", false
				h.MaxMessageSize, h.QueueMessages, h.QueueBytes = 1<<20, 10, 2<<20
				h.MaxSubscriptions, h.MaxConnections = 5, 0
				h.PingInterval, h.PongTimeout, h.WriteTimeout, h.ShutdownGrace = time.Minute, 5*time.Second, 2*time.Second, 90*time.Minute
				c.Log = LogConfig{Level: "debug", Format: "json"}
			},
		},
		{
			name: "environment",
			env: []string{
				"NETKIT_HUB_API_KEY=secret", "NETKIT_HUB_MAX_MESSAGE_SIZE=1MiB",
				"NETKIT_HUB_JOIN_LEAVE=false", "NETKIT_HUB_SHUTDOWN_GRACE=3s", "NETKIT_LOG_LEVEL=warn",
				"NETKIT_PEERS=a,b", "NETKIT_BROWSER=chromium", "PATH=/bin",
			},
			edit: func(c *hubConfig) {
				c.Hub.APIKey, c.Hub.MaxMessageSize, c.Hub.JoinLeave, c.Hub.ShutdownGrace = "secret", 1<<20, false, 3*time.Second
				c.Log.Level = "warn"
			},
		},
		{
			name: "file",
			file: file,
			edit: func(c *hubConfig) {
				c.Hub.Listen, c.Hub.APIKey, c.Hub.MaxMessageSize, c.Hub.PingInterval, c.Hub.JoinLeave = "127.0.0.1:1", "from-file", 128<<10, time.Minute, false
				c.Log.Format = "json"
			},
		},
		{
			name: "flag over environment over file",
			file: file,
			env:  []string{"NETKIT_HUB_API_KEY=from-env", "NETKIT_HUB_LISTEN=127.0.0.1:2"},
			args: []string{"--api-key", "from-flag", "--join-leave"},
			edit: func(c *hubConfig) {
				c.Hub.Listen, c.Hub.APIKey, c.Hub.MaxMessageSize, c.Hub.PingInterval, c.Hub.JoinLeave = "127.0.0.1:2", "from-flag", 128<<10, time.Minute, true
				c.Log.Format = "json"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"hub"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, tc.file))
			}
			r := execute(t, tc.env, args...)
			if r.code != 0 || r.hub == nil {
				t.Fatalf("exit %d, hub ran %v, stderr %q", r.code, r.hub != nil, r.stderr)
			}
			want := defaultHubConfig()
			if tc.edit != nil {
				tc.edit(&want)
			}
			if !reflect.DeepEqual(r.hub.Config, want) {
				t.Fatalf("config =\n%+v\nwant\n%+v", r.hub.Config, want)
			}
		})
	}
}

func TestHubBadSettings(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want []string // stderr lines; FILE stands for the --config path
	}{
		{
			name: "size flag",
			args: []string{"--max-message-size", "big"},
			want: []string{`netkit hub: hub.max_message_size: want a size like "64KiB", got "big" (from --max-message-size)`},
		},
		{
			name: "duration variable",
			env:  []string{"NETKIT_HUB_PING_INTERVAL=10"},
			want: []string{`netkit hub: hub.ping_interval: want a duration like "25s", got "10" (from NETKIT_HUB_PING_INTERVAL)`},
		},
		{
			name: "duration in the file",
			file: "[hub]\nping_interval = 10\n",
			want: []string{`netkit hub: hub.ping_interval: want a duration like "25s", got 10 (in FILE)`},
		},
		{
			name: "bool flag",
			args: []string{"--join-leave=yes please"},
			want: []string{`netkit hub: hub.join_leave: want true or false, got "yes please" (from --join-leave)`},
		},
		{
			name: "int variable",
			env:  []string{"NETKIT_HUB_MAX_CONNECTIONS=lots"},
			want: []string{`netkit hub: hub.max_connections: want an integer like 100000, got "lots" (from NETKIT_HUB_MAX_CONNECTIONS)`},
		},
		{
			name: "unknown key and section",
			file: "[hub]\nlisen = \":1\"\n[foo]\nx = 1\n",
			want: []string{
				`netkit hub: foo: unknown section (in FILE); want one of hub, log`,
				`netkit hub: hub.lisen: unknown key (in FILE); did you mean hub.listen?`,
			},
		},
		{
			name: "unknown variable",
			env:  []string{"NETKIT_HUB_APIKEY=x"},
			want: []string{`netkit hub: NETKIT_HUB_APIKEY: unknown variable; did you mean NETKIT_HUB_API_KEY?`},
		},
		{
			name: "validation",
			args: []string{"--max-message-size", "100B", "--log-level", "loud", "--log-format", "xml"},
			want: []string{
				`netkit hub: hub.max_message_size: want at least 256B, got 100B`,
				`netkit hub: log.level: want debug, info, warn or error, got "loud"`,
				`netkit hub: log.format: want text or json, got "xml"`,
			},
		},
		{
			name: "nats broker without a URL",
			args: []string{"--broker", "nats", "--nats-user", "u"},
			want: []string{
				`netkit hub: hub.nats.url: hub.broker = "nats" needs at least one URL like "nats://127.0.0.1:4222"`,
				`netkit hub: hub.nats.user: want hub.nats.user and hub.nats.password both set or both empty`,
			},
		},
		{
			name: "unknown broker",
			env:  []string{"NETKIT_HUB_BROKER=redis"},
			want: []string{`netkit hub: hub.broker: want "memory", "nats" or "nats-embedded", got "redis"`},
		},
		{
			name: "embedded listen",
			args: []string{"--nats-embedded", "--nats-embedded-listen", "4222"},
			want: []string{`netkit hub: hub.nats.embedded_listen: want an address like "127.0.0.1:4222", got "4222"`},
		},
		{
			name: "missing file",
			args: []string{"--config", "/nonexistent/hub.toml"},
			want: []string{`netkit hub: config: open /nonexistent/hub.toml: no such file or directory`},
		},
		{
			name: "print-config checks too",
			args: []string{"--print-config", "--queue-bytes", "1MB"},
			want: []string{`netkit hub: hub.queue_bytes: want a size like "1MiB" in B, KiB, MiB, GiB or TiB (powers of 1024), got "1MB" (from --queue-bytes)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"hub"}, tc.args...)
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
				args = append(args, "--config", path)
			}
			r := execute(t, tc.env, args...)
			if r.code != exitError || r.hub != nil || r.stdout != "" {
				t.Errorf("exit %d, hub ran %v, stdout %q; want exit %d and nothing else", r.code, r.hub != nil, r.stdout, exitError)
			}
			got := r.stderr
			if path != "" {
				got = strings.ReplaceAll(got, path, "FILE")
			}
			if want := strings.Join(tc.want, "\n") + "\n"; got != want {
				t.Errorf("stderr =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestHubPrintConfig(t *testing.T) {
	r := execute(t, nil, "hub", "--print-config")
	if r.code != 0 || r.stderr != "" || r.hub != nil {
		t.Fatalf("exit %d, stderr %q, hub ran %v", r.code, r.stderr, r.hub != nil)
	}
	testenv.Golden(t, "print-config.toml", r.stdout)
}

// TestHubPrintConfigRoundTrip feeds --print-config's output back with
// --config and expects the same settings.
func TestHubPrintConfigRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{name: "defaults"},
		{
			name: "changed",
			env:  []string{`NETKIT_HUB_API_KEY=a "quoted" \ key` + "\twith a tab", "NETKIT_LOG_FORMAT=json"},
			args: []string{
				"--listen", "[::1]:0", "--node-id", "nœud-1", "--queue-bytes", "1536B",
				"--max-message-size", "1GiB", "--ping-interval", "1m30s", "--pong-timeout", "1500ms",
				"--join-leave=false", "--max-connections", "0",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			direct := execute(t, tc.env, append([]string{"hub"}, tc.args...)...)
			printed := execute(t, tc.env, append([]string{"hub", "--print-config"}, tc.args...)...)
			if direct.code != 0 || printed.code != 0 {
				t.Fatalf("exit %d and %d, stderr %q %q", direct.code, printed.code, direct.stderr, printed.stderr)
			}
			back := execute(t, nil, "hub", "--config", writeFile(t, printed.stdout))
			if back.code != 0 {
				t.Fatalf("reading --print-config output: exit %d, stderr %q\n%s", back.code, back.stderr, printed.stdout)
			}
			if !reflect.DeepEqual(back.hub.Config, direct.hub.Config) {
				t.Fatalf("round trip =\n%+v\nwant\n%+v\nfile:\n%s", back.hub.Config, direct.hub.Config, printed.stdout)
			}
		})
	}
}

// TestHubServes runs the real hub command: it logs where it listens, serves
// a WebSocket client, and on cancel tells the client "shutdown" and exits 0.
func TestHubServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logR, logW := io.Pipe()
	lines := make(chan string, 100)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			t.Log(sc.Text())
			select {
			case lines <- sc.Text():
			default: // nobody is waiting for more lines
			}
		}
	}()
	exit := make(chan int, 1)
	go func() {
		args := []string{"hub", "--listen", "127.0.0.1:0", "--api-key", "k", "--shutdown-grace", "5s"}
		exit <- run(ctx, newRootCmd(nil, nil), args, io.Discard, logW)
		logW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-readDone
	})

	url := waitForLine(t, lines, regexp.MustCompile(`msg=listening addr=127\.0\.0\.1:\d+ url=(ws://127\.0\.0\.1:\d+/ws)`))
	c := hubtest.DialURL(t, url)
	if m := c.Read(); m["push"] != "welcome" {
		t.Fatalf("first push = %v, want welcome", m)
	}

	cancel()
	if m := c.Read(); m["push"] != "disconnect" || m["code"] != "shutdown" {
		t.Fatalf("push after cancel = %v, want a shutdown disconnect", m)
	}
	// Reading on answers the hub's close frame, as a well-behaved client does.
	if raw, err := c.ReadRaw(); err == nil {
		t.Fatalf("read after the shutdown push = %s, want the connection closed", raw)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hub did not exit within 10s of cancel")
	}
}

// waitForLine returns the first submatch of the first line matching re.
func waitForLine(t *testing.T, lines <-chan string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatalf("no log line matching %s within 10s", re)
		}
	}
}

func TestWSURL(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"[::]:9999", "ws://localhost:9999/ws"},
		{"0.0.0.0:9999", "ws://localhost:9999/ws"},
		{"127.0.0.1:1234", "ws://127.0.0.1:1234/ws"},
		{"[::1]:1234", "ws://[::1]:1234/ws"},
	}
	for _, tc := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := wsURL(addr, "/ws"); got != tc.want {
			t.Errorf("wsURL(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

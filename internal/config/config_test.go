package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
	"github.com/spf13/pflag"
)

// testConfig has one key of each kind, in the shape of the real ones.
type testConfig struct {
	Hub testHub `koanf:"hub"`
	Log testLog `koanf:"log"`
}

type testHub struct {
	Listen         string        `koanf:"listen" help:"address to listen on (host:port)"`
	APIKey         string        `koanf:"api_key" help:"bearer key for the HTTP API; empty generates one at start and logs it once, which is a long help text that wraps"`
	JoinLeave      bool          `koanf:"join_leave" help:"send join and leave pushes"`
	QueueMessages  int           `koanf:"queue_messages" help:"outbound queue limit per connection, in messages"`
	Weight         int8          `koanf:"weight" help:"a small integer"`
	MaxMessageSize int64         `koanf:"max_message_size" unit:"size" help:"largest inbound message"`
	PingInterval   time.Duration `koanf:"ping_interval" help:"how often the hub pings each connection"`
}

func (h *testHub) Validate() error {
	if h.QueueMessages < 1 {
		return fmt.Errorf("hub.queue_messages: want at least 1, got %d", h.QueueMessages)
	}
	return nil
}

type testLog struct {
	Level string `koanf:"level" help:"least severe level logged: debug, info, warn or error"`
}

func (l *testLog) Validate() error {
	switch l.Level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("log.level: want debug, info, warn or error, got %q", l.Level)
}

func defaultTestConfig() testConfig {
	return testConfig{
		Hub: testHub{
			Listen:         ":9999",
			JoinLeave:      true,
			QueueMessages:  1024,
			MaxMessageSize: 64 << 10,
			PingInterval:   25 * time.Second,
		},
		Log: testLog{Level: "info"},
	}
}

// load runs a Loader over a file with the given content (none if ""), env
// and command-line args, as the cli does.
func load(t *testing.T, file string, env, args []string) (testConfig, error) {
	t.Helper()
	cfg := defaultTestConfig()
	l, err := New(&cfg, "NETKIT")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	if err := l.BindFlags(fs, "hub"); err != nil {
		t.Fatalf("BindFlags: %v", err)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	path := ""
	if file != "" {
		path = filepath.Join(t.TempDir(), "netkit.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err = l.Load(path, env)
	return cfg, err
}

func TestLoadPrecedence(t *testing.T) {
	const file = `
[hub]
listen = "127.0.0.1:1"
api_key = "file-key"
join_leave = false
queue_messages = 1
weight = -1
max_message_size = "1MiB"
ping_interval = "1s"

[log]
level = "debug"
`
	env := []string{
		"NETKIT_HUB_LISTEN=127.0.0.1:2",
		"NETKIT_HUB_API_KEY=env-key",
		"NETKIT_HUB_JOIN_LEAVE=true",
		"NETKIT_HUB_QUEUE_MESSAGES=2",
		"NETKIT_HUB_WEIGHT=-2",
		"NETKIT_HUB_MAX_MESSAGE_SIZE=2MiB",
		"NETKIT_HUB_PING_INTERVAL=2m",
		"NETKIT_LOG_LEVEL=warn",
	}
	flags := []string{
		"--listen", "127.0.0.1:3",
		"--api-key=flag-key",
		"--join-leave=false",
		"--queue-messages", "3",
		"--weight=-3",
		"--max-message-size", "3GiB",
		"--ping-interval", "3h",
		"--log-level", "error",
	}
	fromFile := testConfig{
		Hub: testHub{"127.0.0.1:1", "file-key", false, 1, -1, 1 << 20, time.Second},
		Log: testLog{"debug"},
	}
	fromEnv := testConfig{
		Hub: testHub{"127.0.0.1:2", "env-key", true, 2, -2, 2 << 20, 2 * time.Minute},
		Log: testLog{"warn"},
	}
	fromFlags := testConfig{
		Hub: testHub{"127.0.0.1:3", "flag-key", false, 3, -3, 3 << 30, 3 * time.Hour},
		Log: testLog{"error"},
	}
	someFromEach := fromFile
	someFromEach.Hub.APIKey = "env-key"
	someFromEach.Hub.PingInterval = 3 * time.Hour

	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want testConfig
	}{
		{name: "defaults", want: defaultTestConfig()},
		{name: "file over defaults", file: file, want: fromFile},
		{name: "env over defaults", env: env, want: fromEnv},
		{name: "flags over defaults", args: flags, want: fromFlags},
		{name: "env over file", file: file, env: env, want: fromEnv},
		{name: "flags over env and file", file: file, env: env, args: flags, want: fromFlags},
		{
			name: "only what is set overrides",
			file: file,
			env:  []string{"NETKIT_HUB_API_KEY=env-key"},
			args: []string{"--ping-interval=3h"},
			want: someFromEach,
		},
		{
			name: "empty file keeps defaults",
			file: "# nothing here\n[hub]\n",
			want: defaultTestConfig(),
		},
		{
			name: "empty variable sets an empty string",
			file: file,
			env:  []string{"NETKIT_HUB_API_KEY="},
			want: func() testConfig { c := fromFile; c.Hub.APIKey = ""; return c }(),
		},
		{
			name: "bool flag without a value is true",
			file: file,
			args: []string{"--join-leave"},
			want: func() testConfig { c := fromFile; c.Hub.JoinLeave = true; return c }(),
		},
		{
			name: "other variables are ignored",
			env: []string{
				"NETKIT_PEERS=a,b", "NETKIT_BROWSER=chromium", "NETKIT_HUBX=1",
				"netkit_hub_listen=x", "HOME=/root", "NETKIT_HUB",
			},
			want: defaultTestConfig(),
		},
		{
			name: "last variable wins",
			env:  []string{"NETKIT_HUB_LISTEN=:1", "NETKIT_HUB_LISTEN=:2"},
			want: func() testConfig { c := defaultTestConfig(); c.Hub.Listen = ":2"; return c }(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(t, tc.file, tc.env, tc.args)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got != tc.want {
				t.Fatalf("config =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want []string // each must be a line of the error, after the path of the file
	}{
		{
			name: "size not a size",
			file: "[hub]\nmax_message_size = \"big\"\n",
			want: []string{`hub.max_message_size: want a size like "64KiB", got "big" (in FILE)`},
		},
		{
			name: "size as a bare integer",
			file: "[hub]\nmax_message_size = 65536\n",
			want: []string{`hub.max_message_size: want a size like "64KiB", got 65536 (in FILE)`},
		},
		{
			name: "size as a bare number string",
			env:  []string{"NETKIT_HUB_MAX_MESSAGE_SIZE=65536"},
			want: []string{`hub.max_message_size: want a size like "64KiB" in B, KiB, MiB, GiB or TiB (powers of 1024), got "65536" (from NETKIT_HUB_MAX_MESSAGE_SIZE)`},
		},
		{
			name: "size in decimal units",
			args: []string{"--max-message-size=64KB"},
			want: []string{`hub.max_message_size: want a size like "64KiB" in B, KiB, MiB, GiB or TiB (powers of 1024), got "64KB" (from --max-message-size)`},
		},
		{
			name: "size too large",
			args: []string{"--max-message-size=8388608TiB"},
			want: []string{`hub.max_message_size: want a size like "64KiB" in B, KiB, MiB, GiB or TiB (powers of 1024), got "8388608TiB" (from --max-message-size)`},
		},
		{
			name: "duration as a bare integer",
			file: "[hub]\nping_interval = 10\n",
			want: []string{`hub.ping_interval: want a duration like "25s", got 10 (in FILE)`},
		},
		{
			name: "duration as a bare number string",
			env:  []string{"NETKIT_HUB_PING_INTERVAL=10"},
			want: []string{`hub.ping_interval: want a duration like "25s", got "10" (from NETKIT_HUB_PING_INTERVAL)`},
		},
		{
			name: "duration zero without unit",
			args: []string{"--ping-interval", "0"},
			want: []string{`hub.ping_interval: want a duration like "25s", got "0" (from --ping-interval)`},
		},
		{
			name: "bool as a string in the file",
			file: "[hub]\njoin_leave = \"true\"\n",
			want: []string{`hub.join_leave: want true or false, got "true" (in FILE)`},
		},
		{
			name: "bool not a bool",
			env:  []string{"NETKIT_HUB_JOIN_LEAVE=maybe"},
			want: []string{`hub.join_leave: want true or false, got "maybe" (from NETKIT_HUB_JOIN_LEAVE)`},
		},
		{
			name: "int as a string in the file",
			file: "[hub]\nqueue_messages = \"10\"\n",
			want: []string{`hub.queue_messages: want an integer like 1024, got "10" (in FILE)`},
		},
		{
			name: "int as a float",
			file: "[hub]\nqueue_messages = 10.5\n",
			want: []string{`hub.queue_messages: want an integer like 1024, got 10.5 (in FILE)`},
		},
		{
			name: "int not a number",
			args: []string{"--queue-messages", "many"},
			want: []string{`hub.queue_messages: want an integer like 1024, got "many" (from --queue-messages)`},
		},
		{
			name: "int out of range of its field",
			file: "[hub]\nweight = 300\n",
			want: []string{`hub.weight: want an integer from -128 to 127, got 300 (in FILE)`},
		},
		{
			name: "int out of range of int64",
			env:  []string{"NETKIT_HUB_QUEUE_MESSAGES=99999999999999999999"},
			want: []string{`hub.queue_messages: want an integer from -9223372036854775808 to 9223372036854775807, got "99999999999999999999" (from NETKIT_HUB_QUEUE_MESSAGES)`},
		},
		{
			name: "string as an integer",
			file: "[hub]\nlisten = 9999\n",
			want: []string{`hub.listen: want a string, got 9999 (in FILE)`},
		},
		{
			name: "table for a key",
			file: "[hub.listen]\nport = 1\n",
			want: []string{`hub.listen: want a string, got a table (in FILE)`},
		},
		{
			name: "unknown key with a suggestion",
			file: "[hub]\nlisen = \":1\"\n",
			want: []string{`hub.lisen: unknown key (in FILE); did you mean hub.listen?`},
		},
		{
			name: "unknown key",
			file: "[hub]\ncolour = \"blue\"\n",
			want: []string{`hub.colour: unknown key (in FILE)`},
		},
		{
			name: "key outside its table",
			file: "listen = \":1\"\n",
			want: []string{`listen: unknown key (in FILE); did you mean hub.listen?`},
		},
		{
			name: "unknown section",
			file: "[foo]\nbar = 1\n",
			want: []string{`foo: unknown section (in FILE); want one of hub, log`},
		},
		{
			name: "misspelt section",
			file: "[hbu]\nlisten = \":1\"\n",
			want: []string{`hbu: unknown section (in FILE); did you mean [hub]?`},
		},
		{
			name: "section not a table",
			file: "hub = 1\n",
			want: []string{`hub: want a table [hub], got 1 (in FILE)`},
		},
		{
			name: "unknown variable with a suggestion",
			env:  []string{"NETKIT_HUB_LISEN=:1"},
			want: []string{`NETKIT_HUB_LISEN: unknown variable; did you mean NETKIT_HUB_LISTEN?`},
		},
		{
			name: "unknown variable",
			env:  []string{"NETKIT_LOG_COLOUR=blue"},
			want: []string{`NETKIT_LOG_COLOUR: unknown variable; no setting has this name`},
		},
		{
			name: "validate fails",
			args: []string{"--queue-messages=0", "--log-level=loud"},
			want: []string{
				`hub.queue_messages: want at least 1, got 0`,
				`log.level: want debug, info, warn or error, got "loud"`,
			},
		},
		{
			name: "every error at once",
			file: "[hub]\nmax_message_size = \"big\"\nlisen = 1\n",
			env:  []string{"NETKIT_HUB_PING_INTERVAL=10", "NETKIT_HUB_X=1"},
			args: []string{"--join-leave=maybe"},
			want: []string{
				`hub.lisen: unknown key (in FILE); did you mean hub.listen?`,
				`hub.max_message_size: want a size like "64KiB", got "big" (in FILE)`,
				`hub.ping_interval: want a duration like "25s", got "10" (from NETKIT_HUB_PING_INTERVAL)`,
				`NETKIT_HUB_X: unknown variable; no setting has this name`,
				`hub.join_leave: want true or false, got "maybe" (from --join-leave)`,
			},
		},
		{
			name: "toml syntax",
			file: "[hub]\nlisten = \n",
			want: []string{`config: FILE:2:10: toml: unexpected character U+000A at start of value`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(t, tc.file, tc.env, tc.args)
			if err == nil {
				t.Fatalf("Load: no error, want %q", tc.want)
			}
			if got != defaultTestConfig() {
				t.Errorf("config changed on error: %+v", got)
			}
			lines := strings.Split(err.Error(), "\n")
			for i, line := range lines {
				// Replace the temporary file's path.
				if i := strings.Index(line, string(filepath.Separator)+"netkit.toml"); i >= 0 {
					start := strings.LastIndexAny(line[:i], " (")
					line = line[:start+1] + "FILE" + line[i+len("/netkit.toml"):]
				}
				lines[i] = line
			}
			if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("error =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg := defaultTestConfig()
	l, err := New(&cfg, "NETKIT")
	if err != nil {
		t.Fatal(err)
	}
	err = l.Load(filepath.Join(t.TempDir(), "nope.toml"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestBindFlags(t *testing.T) {
	cfg := defaultTestConfig()
	l, err := New(&cfg, "NETKIT")
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	if err := l.BindFlags(fs, "hub"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, typ, def, usage string
	}{
		{"listen", "string", ":9999", "address to listen on (host:port)"},
		{"api-key", "string", "", "bearer key for the HTTP API; empty generates one at start and logs it once, which is a long help text that wraps"},
		{"join-leave", "bool", "true", "send join and leave pushes"},
		{"queue-messages", "int", "1024", "outbound queue limit per connection, in messages"},
		{"max-message-size", "size", "64KiB", "largest inbound message"},
		{"ping-interval", "duration", "25s", "how often the hub pings each connection"},
		{"log-level", "string", "info", "least severe level logged: debug, info, warn or error"},
	}
	for _, tc := range tests {
		f := fs.Lookup(tc.name)
		if f == nil {
			t.Errorf("no flag --%s", tc.name)
			continue
		}
		if f.Value.Type() != tc.typ || f.DefValue != tc.def || f.Usage != tc.usage {
			t.Errorf("--%s: type %q, default %q, usage %q; want %q, %q, %q",
				tc.name, f.Value.Type(), f.DefValue, f.Usage, tc.typ, tc.def, tc.usage)
		}
	}
	if err := l.BindFlags(fs, "hub"); err == nil {
		t.Errorf("second BindFlags on the same FlagSet: no error, want a duplicate flag error")
	}
}

func TestNewErrors(t *testing.T) {
	type noHelp struct {
		X string `koanf:"x"`
	}
	type unitOnString struct {
		X string `koanf:"x" unit:"size" help:"x"`
	}
	type badType struct {
		X float64 `koanf:"x" help:"x"`
	}
	type noTag struct {
		X string `help:"x"`
	}
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"not a pointer", testConfig{}, "want a non-nil pointer to a struct"},
		{"not a struct", new(int), "want a struct of section structs"},
		{"section not a struct", &struct {
			S int `koanf:"s"`
		}{}, "section s: want a struct"},
		{"missing help", &struct {
			S noHelp `koanf:"s"`
		}{}, "s.x: missing help tag"},
		{"unit on a string", &struct {
			S unitOnString `koanf:"s"`
		}{}, `s.x: unit "size" on a string`},
		{"unsupported type", &struct {
			S badType `koanf:"s"`
		}{}, "s.x: unsupported type float64"},
		{"missing koanf tag", &struct {
			S noTag `koanf:"s"`
		}{}, `field X: want a lower-case koanf tag without dots, got ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.dst, "NETKIT")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

const testHeader = "Test configuration.\n\nSizes are like \"64KiB\"."

func TestWriteTOMLGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTOML(&buf, defaultTestConfig(), testHeader); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "default.toml", buf.String())
}

func TestWriteTOMLRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  testConfig
	}{
		{"defaults", defaultTestConfig()},
		{"zero", testConfig{Hub: testHub{QueueMessages: 1}, Log: testLog{"warn"}}},
		{"odd values", testConfig{
			Hub: testHub{
				Listen:         `"quoted" \back\slash 'single'`,
				APIKey:         "tab\tnew\nline\r\x00\x7f\u2028 é 😀 # not a comment",
				JoinLeave:      false,
				QueueMessages:  -5 + 6,
				Weight:         -128,
				MaxMessageSize: 1000,
				PingInterval:   90*time.Minute + 1500*time.Millisecond,
			},
			Log: testLog{"error"},
		}},
		{"large values", testConfig{
			Hub: testHub{
				QueueMessages:  1<<31 - 1,
				Weight:         127,
				MaxMessageSize: 3 << 40,
				PingInterval:   time.Nanosecond,
			},
			Log: testLog{"debug"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteTOML(&buf, &tc.cfg, testHeader); err != nil {
				t.Fatal(err)
			}
			got, err := load(t, buf.String(), nil, nil)
			if err != nil {
				t.Fatalf("Load(WriteTOML output): %v\n%s", err, buf.String())
			}
			if got != tc.cfg {
				t.Fatalf("round trip =\n%+v\nwant\n%+v\nfile:\n%s", got, tc.cfg, buf.String())
			}
		})
	}
}

func TestWriteTOMLInvalidUTF8(t *testing.T) {
	cfg := defaultTestConfig()
	cfg.Hub.APIKey = "\xff"
	err := WriteTOML(&bytes.Buffer{}, cfg, "")
	if err == nil || !strings.Contains(err.Error(), "hub.api_key: value is not valid UTF-8") {
		t.Fatalf("WriteTOML = %v, want an invalid UTF-8 error naming hub.api_key", err)
	}
}

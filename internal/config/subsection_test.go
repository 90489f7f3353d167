package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// subConfig has a subsection, [hub.nats], after a plain key and before an
// array of tables.
type subConfig struct {
	Hub subHub `koanf:"hub"`
}

type subHub struct {
	Broker     string   `koanf:"broker" help:"how nodes share channels"`
	NATS       subNATS  `koanf:"nats" help:"NATS settings"`
	Namespaces []listNS `koanf:"namespaces" help:"channel namespaces"`
}

type subNATS struct {
	URL  []string      `koanf:"url" help:"NATS server URLs"`
	User string        `koanf:"user" help:"user name for NATS"`
	TTL  time.Duration `koanf:"presence_ttl" help:"presence entries live this long"`
}

func defaultSubConfig() subConfig {
	return subConfig{Hub: subHub{Broker: "memory", NATS: subNATS{URL: []string{}, TTL: 30 * time.Second}}}
}

func loadSub(t *testing.T, file string, env, args []string) (subConfig, error) {
	t.Helper()
	cfg := defaultSubConfig()
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

func TestSubsections(t *testing.T) {
	const file = `[hub]
broker = "nats"

[hub.nats]
url = ["nats://127.0.0.1:1", "nats://127.0.0.1:2"]
user = "hub"
`
	def := defaultSubConfig().Hub
	withNATS := func(n subNATS) subHub { h := def; h.Broker = "nats"; h.NATS = n; return h }
	tests := []struct {
		name    string
		file    string
		env     []string
		args    []string
		want    subHub
		wantErr string
	}{
		{name: "defaults", want: def},
		{name: "file", file: file, want: withNATS(subNATS{URL: []string{"nats://127.0.0.1:1", "nats://127.0.0.1:2"}, User: "hub", TTL: 30 * time.Second})},
		{name: "dotted keys in [hub]", file: "[hub]\nbroker = \"nats\"\nnats.url = [\"nats://127.0.0.1:1\"]\n",
			want: withNATS(subNATS{URL: []string{"nats://127.0.0.1:1"}, TTL: 30 * time.Second})},
		{name: "env over file", file: file, env: []string{"NETKIT_HUB_NATS_USER=other", "NETKIT_HUB_NATS_PRESENCE_TTL=5s"},
			want: withNATS(subNATS{URL: []string{"nats://127.0.0.1:1", "nats://127.0.0.1:2"}, User: "other", TTL: 5 * time.Second})},
		{name: "flags over env", file: file, env: []string{"NETKIT_HUB_NATS_URL=nats://127.0.0.1:3"}, args: []string{"--nats-url", "nats://127.0.0.1:4,nats://127.0.0.1:5"},
			want: withNATS(subNATS{URL: []string{"nats://127.0.0.1:4", "nats://127.0.0.1:5"}, User: "hub", TTL: 30 * time.Second})},
		{name: "unknown key", file: "[hub.nats]\nusr = \"x\"\n", wantErr: "did you mean hub.nats.user?"},
		{name: "bad value", file: "[hub.nats]\npresence_ttl = 5\n", wantErr: `hub.nats.presence_ttl: want a duration like "30s", got 5`},
		{name: "not a table", file: "[hub]\nnats = \"nats://x\"\n", wantErr: `hub.nats: want a table [hub.nats], got "nats://x"`},
		{name: "unknown variable", env: []string{"NETKIT_HUB_NATS_URLS=x"}, wantErr: "NETKIT_HUB_NATS_URLS: unknown variable; did you mean NETKIT_HUB_NATS_URL?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadSub(t, tc.file, tc.env, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got.Hub, tc.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got.Hub, tc.want)
			}
		})
	}
}

func TestSubsectionFlagNames(t *testing.T) {
	cfg := defaultSubConfig()
	l, err := New(&cfg, "NETKIT")
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	if err := l.BindFlags(fs, "hub"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"broker", "nats-url", "nats-user", "nats-presence-ttl"} {
		if fs.Lookup(name) == nil {
			t.Errorf("no flag --%s", name)
		}
	}
}

func TestSubsectionRoundTrip(t *testing.T) {
	cfg := subConfig{Hub: subHub{
		Broker:     "nats",
		NATS:       subNATS{URL: []string{"nats://127.0.0.1:1"}, User: "u", TTL: time.Minute},
		Namespaces: []listNS{{Name: "chat", Publish: "clients", HistoryTTL: time.Second, Size: 3, Tags: []string{}}},
	}}
	var buf bytes.Buffer
	if err := WriteTOML(&buf, &cfg, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\n[hub.nats]\n") {
		t.Fatalf("WriteTOML has no [hub.nats] table:\n%s", buf.String())
	}
	got, err := loadSub(t, buf.String(), nil, nil)
	if err != nil {
		t.Fatalf("Load(WriteTOML output): %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip =\n%+v\nwant\n%+v\nfile:\n%s", got, cfg, buf.String())
	}
}

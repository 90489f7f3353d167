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

// listConfig has a string list and an array of tables whose keys inherit
// from the section's keys of the same name.
type listConfig struct {
	Hub listHub `koanf:"hub"`
}

type listHub struct {
	Origins    []string      `koanf:"allowed_origins" help:"origins browsers may connect from"`
	Publish    string        `koanf:"publish" help:"who may publish"`
	HistoryTTL time.Duration `koanf:"history_ttl" help:"how long messages are kept"`
	Namespaces []listNS      `koanf:"namespaces" help:"channel namespaces"`
}

type listNS struct {
	Name       string        `koanf:"name" help:"the namespace"`
	Publish    string        `koanf:"publish" help:"who may publish"`
	HistoryTTL time.Duration `koanf:"history_ttl" help:"how long messages are kept"`
	Size       int           `koanf:"history_size" help:"messages kept"`
	Tags       []string      `koanf:"tags" help:"labels"`
}

func loadList(t *testing.T, file string, env, args []string) (listConfig, error) {
	t.Helper()
	cfg := listConfig{Hub: listHub{Publish: "clients", HistoryTTL: 10 * time.Minute, Origins: []string{}}}
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

func TestListsAndTables(t *testing.T) {
	const file = `[hub]
allowed_origins = ["http://localhost:*", "https://app.example.com"]
publish = "subscribers"

[[hub.namespaces]]
name = "chat"
history_size = 50
tags = ["a", "b"]

[[hub.namespaces]]
name = "feed"
publish = "api"
history_ttl = "1h"
`
	tests := []struct {
		name    string
		file    string
		env     []string
		args    []string
		want    listHub
		wantErr string
	}{
		{name: "defaults", want: listHub{Publish: "clients", HistoryTTL: 10 * time.Minute, Origins: []string{}}},
		{name: "file", file: file, want: listHub{
			Origins: []string{"http://localhost:*", "https://app.example.com"}, Publish: "subscribers", HistoryTTL: 10 * time.Minute,
			Namespaces: []listNS{
				{Name: "chat", Publish: "subscribers", HistoryTTL: 10 * time.Minute, Size: 50, Tags: []string{"a", "b"}},
				{Name: "feed", Publish: "api", HistoryTTL: time.Hour},
			},
		}},
		{name: "env list and inheritance from a flag", file: file,
			env:  []string{"NETKIT_HUB_ALLOWED_ORIGINS= http://a:1 ,,http://b:2"},
			args: []string{"--history-ttl", "2m"},
			want: listHub{
				Origins: []string{"http://a:1", "http://b:2"}, Publish: "subscribers", HistoryTTL: 2 * time.Minute,
				Namespaces: []listNS{
					{Name: "chat", Publish: "subscribers", HistoryTTL: 2 * time.Minute, Size: 50, Tags: []string{"a", "b"}},
					{Name: "feed", Publish: "api", HistoryTTL: time.Hour},
				},
			}},
		{name: "flag list", args: []string{"--allowed-origins", "http://x:*"}, want: listHub{Publish: "clients", HistoryTTL: 10 * time.Minute, Origins: []string{"http://x:*"}}},
		{name: "unknown key in a table", file: "[[hub.namespaces]]\nname = \"x\"\npublsh = \"api\"\n", wantErr: "hub.namespaces[0].publsh: unknown key; did you mean publish?"},
		{name: "bad value in a table", file: "[[hub.namespaces]]\nhistory_ttl = 5\n", wantErr: `hub.namespaces[0].history_ttl: want a duration like "10s", got 5`},
		{name: "table from env", env: []string{"NETKIT_HUB_NAMESPACES=x"}, wantErr: "set it in the config file as [[hub.namespaces]] tables"},
		{name: "not tables", file: "[hub]\nnamespaces = 3\n", wantErr: "hub.namespaces: want [[hub.namespaces]] tables, got 3"},
		{name: "list of numbers", file: "[hub]\nallowed_origins = [1]\n", wantErr: "hub.allowed_origins: item 0: want a string, got 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadList(t, tc.file, tc.env, tc.args)
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

func TestTablesRoundTrip(t *testing.T) {
	cfg := listConfig{Hub: listHub{
		Origins: []string{"http://localhost:*", `we"ird`}, Publish: "api", HistoryTTL: time.Minute,
		Namespaces: []listNS{{Name: "chat", Publish: "clients", HistoryTTL: time.Second, Size: 3, Tags: []string{}}},
	}}
	var buf bytes.Buffer
	if err := WriteTOML(&buf, &cfg, ""); err != nil {
		t.Fatal(err)
	}
	got, err := loadList(t, buf.String(), nil, nil)
	if err != nil {
		t.Fatalf("Load(WriteTOML output): %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip =\n%+v\nwant\n%+v\nfile:\n%s", got, cfg, buf.String())
	}
	if !strings.Contains(buf.String(), "[[hub.namespaces]]: channel namespaces.") {
		t.Fatalf("WriteTOML does not describe the tables:\n%s", buf.String())
	}
}

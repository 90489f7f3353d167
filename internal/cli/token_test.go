package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/auth"
	"github.com/netkit/netkit/internal/testenv"
)

func TestTokenHelp(t *testing.T) {
	r := execute(t, nil, "token", "--help")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	testenv.Golden(t, "help-token.txt", r.stdout)
}

// writeHubConfig writes a hub settings file with body and returns its path.
func writeHubConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestToken(t *testing.T) {
	cfgFile := writeHubConfig(t, "[hub]\nlisten = \"127.0.0.1:9999\"\njwt_secret = \"from-file\"\n\n[log]\nlevel = \"debug\"\n")
	tests := []struct {
		name   string
		env    []string
		args   []string
		secret string // the token verifies with it
		want   auth.Claims
		ttl    time.Duration // 0: no exp
	}{
		{"flag secret", nil, []string{"--user", "alice", "--secret", "s1"}, "s1", auth.Claims{User: "alice"}, time.Hour},
		{"env secret", []string{tokenSecretEnv + "=s2"}, []string{"--user", "alice"}, "s2", auth.Claims{User: "alice"}, time.Hour},
		{"config secret", nil, []string{"--user", "alice", "--config", cfgFile}, "from-file", auth.Claims{User: "alice"}, time.Hour},
		{"flag beats env", []string{tokenSecretEnv + "=s2"}, []string{"--user", "alice", "--secret", "s1"}, "s1", auth.Claims{User: "alice"}, time.Hour},
		{"env beats config", []string{tokenSecretEnv + "=s2"}, []string{"--user", "alice", "--config", cfgFile}, "s2", auth.Claims{User: "alice"}, time.Hour},
		{"channels", nil, []string{"--user", "alice", "--secret", "s", "--channels", "room, chat:*,dm#*"}, "s",
			auth.Claims{User: "alice", Channels: []string{"room", "chat:*", "dm#*"}}, time.Hour},
		{"no channels", nil, []string{"--user", "alice", "--secret", "s", "--channels", ""}, "s", auth.Claims{User: "alice", Channels: []string{}}, time.Hour},
		{"ttl", nil, []string{"--user", "bob", "--secret", "s", "--ttl", "24h"}, "s", auth.Claims{User: "bob"}, 24 * time.Hour},
		{"no expiry", nil, []string{"--user", "bob", "--secret", "s", "--ttl", "0"}, "s", auth.Claims{User: "bob"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			r := execute(t, tc.env, append([]string{"token"}, tc.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			token, ok := strings.CutSuffix(r.stdout, "\n")
			if !ok || strings.ContainsAny(token, " \n") {
				t.Fatalf("stdout = %q, want one token and a newline", r.stdout)
			}
			v, err := auth.NewVerifier(auth.VerifierConfig{Secret: tc.secret})
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(token, time.Now())
			if err != nil {
				t.Fatalf("Verify with secret %q: %v", tc.secret, err)
			}
			if tc.ttl == 0 {
				if !got.Expires.IsZero() {
					t.Fatalf("Expires = %v, want none", got.Expires)
				}
			} else if got.Expires.Before(before.Add(tc.ttl)) || got.Expires.After(time.Now().Add(tc.ttl)) {
				t.Fatalf("Expires = %v, want %v from now", got.Expires, tc.ttl)
			}
			got.Expires = time.Time{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("claims = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.toml")
	noSecret := writeHubConfig(t, "[hub]\nlisten = \":9999\"\n")
	publicKey := writeHubConfig(t, "[hub]\njwt_public_key = \"/etc/netkit/jwt.pem\"\n")
	badTOML := writeHubConfig(t, "[hub\n")
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string // stderr, one line
	}{
		{"no secret", nil, []string{"--user", "alice"}, exitUsage,
			"netkit token: no secret: give --secret, set NETKIT_HUB_JWT_SECRET, or --config with the hub's settings file (see 'netkit token --help')"},
		{"empty env secret", []string{tokenSecretEnv + "="}, []string{"--user", "alice"}, exitUsage,
			"netkit token: no secret: give --secret, set NETKIT_HUB_JWT_SECRET, or --config with the hub's settings file (see 'netkit token --help')"},
		{"config without secret", nil, []string{"--user", "alice", "--config", noSecret}, exitUsage,
			"netkit token: no secret: " + noSecret + " has no [hub] jwt_secret; give --secret or set NETKIT_HUB_JWT_SECRET (see 'netkit token --help')"},
		{"config with a public key", nil, []string{"--user", "alice", "--config", publicKey}, exitUsage,
			"netkit token: no secret: " + publicKey + " sets [hub] jwt_public_key, so the hub takes RS256 or ES256 tokens signed with its private key; netkit token signs HS256 with jwt_secret only (see 'netkit token --help')"},
		{"config missing", nil, []string{"--user", "alice", "--config", missing}, exitError,
			"netkit token: --config: open " + missing + ": no such file or directory"},
		{"config not TOML", nil, []string{"--user", "alice", "--config", badTOML}, exitError, "netkit token: --config " + badTOML + ": toml:"},
		{"no user", nil, []string{"--secret", "s"}, exitUsage,
			"netkit token: --user: missing; give the user id the token is for (see 'netkit token --help')"},
		{"user too long", nil, []string{"--secret", "s", "--user", strings.Repeat("u", 256)}, exitUsage,
			"netkit token: --user: sub: user id is 256 bytes, want at most 255 (see 'netkit token --help')"},
		{"bad channel pattern", nil, []string{"--secret", "s", "--user", "a", "--channels", "room,a b"}, exitUsage,
			`netkit token: --channels: channel pattern "a b": allowed are A-Z a-z 0-9 _ . : @ # / - , and * (see 'netkit token --help')`},
		{"negative ttl", nil, []string{"--secret", "s", "--user", "a", "--ttl", "-1h"}, exitUsage,
			"netkit token: --ttl -1h0m0s: want a duration like 1h, or 0 for no expiry (see 'netkit token --help')"},
		{"argument", nil, []string{"alice"}, exitUsage, `netkit token: unexpected argument "alice" (see 'netkit token --help')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := execute(t, tc.env, append([]string{"token"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			if r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, tc.want) {
				t.Errorf("stdout %q, stderr %q; want no stdout and one line starting %q", r.stdout, r.stderr, tc.want)
			}
		})
	}
}

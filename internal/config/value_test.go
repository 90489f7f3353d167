package config

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gotoml "github.com/pelletier/go-toml/v2"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string // "" for success
	}{
		{in: "0B", want: 0},
		{in: "512B", want: 512},
		{in: "64KiB", want: 64 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "0064KiB", want: 64 << 10},
		{in: "8388607TiB", want: 8388607 << 40},
		{in: "9223372036854775807B", want: math.MaxInt64},
		{in: "8388608TiB", wantErr: "too large"},
		{in: "99999999999999999999B", wantErr: "too large"},
		{in: "", wantErr: "want an integer and a unit"},
		{in: "big", wantErr: "want an integer and a unit"},
		{in: "KiB", wantErr: "want an integer and a unit"},
		{in: "-1KiB", wantErr: "want an integer and a unit"},
		{in: "+1KiB", wantErr: "want an integer and a unit"},
		{in: " 1KiB", wantErr: "want an integer and a unit"},
		{in: "64", wantErr: "missing unit"},
		{in: "64 KiB", wantErr: `unknown unit " KiB"`},
		{in: "1.5MiB", wantErr: `unknown unit ".5MiB"`},
		{in: "64kib", wantErr: `unknown unit "kib"`},
		{in: "64KiB ", wantErr: `unknown unit "KiB "`},
		{in: "64K", wantErr: `unknown unit "K"`},
		{in: "64KB", wantErr: `"KB" is ambiguous`},
		{in: "64kB", wantErr: `"kB" is ambiguous`},
		{in: "1MB", wantErr: `"MB" is ambiguous`},
		{in: "1GB", wantErr: `"GB" is ambiguous`},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseSize(%q): %v", tc.in, err)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("ParseSize(%q) = %d, want %d", tc.in, got, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1000, "1000B"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{64 << 10, "64KiB"},
		{1 << 20, "1MiB"},
		{1025 << 20, "1025MiB"},
		{1 << 30, "1GiB"},
		{5 << 40, "5TiB"},
		{1 << 50, "1024TiB"},
		{math.MaxInt64, "9223372036854775807B"},
	}
	for _, tc := range tests {
		if got := FormatSize(tc.in); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{time.Nanosecond, "1ns"},
		{500 * time.Millisecond, "500ms"},
		{1500 * time.Millisecond, "1.5s"},
		{25 * time.Second, "25s"},
		{10 * time.Minute, "10m"},
		{10*time.Minute + time.Second, "10m1s"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{-time.Hour, "-1h"},
	}
	for _, tc := range tests {
		got := FormatDuration(tc.in)
		if got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := ParseDuration(got); err != nil || back != tc.in {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.in)
		}
	}
	for _, bad := range []string{"0", "-0", "+0", "10", "1.5", "", "s", "10 s", "ten seconds"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

func FuzzSize(f *testing.F) {
	for _, s := range []string{"0B", "64KiB", "1MiB", "1536B", "8388607TiB", "64KB", "1.5MiB", "-1B", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, want >= 0", s, n)
		}
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	})
}

func FuzzQuoteTOML(f *testing.F) {
	// Quotes, escapes, control characters, non-ASCII, TOML syntax.
	for _, s := range []string{"", ":9999", `a"b`, `a\b`, "'", "\t\n\r\b\f", "\x00\x1f\x7f", "é😀\u2028", "# x", `"""`, "a = 1\n[b]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		q := quoteTOML(s)
		var m map[string]string
		if err := gotoml.Unmarshal([]byte("k = "+q+"\n"), &m); err != nil {
			t.Fatalf("quoteTOML(%q) = %s, which TOML cannot parse: %v", s, q, err)
		}
		if m["k"] != s {
			t.Fatalf("quoteTOML(%q) = %s, which parses as %q", s, q, m["k"])
		}
	})
}

func TestSuggest(t *testing.T) {
	keys := []string{"hub.listen", "hub.api_key", "hub.ws_path", "log.level"}
	tests := []struct{ in, want string }{
		{"hub.lisen", "hub.listen"},
		{"hub.apikey", "hub.api_key"},
		{"hub.api-key", "hub.api_key"},
		{"log.levle", "log.level"},
		{"hub.colour", ""},
		{"x", ""},
		{"foo", ""},
		{"log.lvel", "log.level"},
	}
	for _, tc := range tests {
		if got := suggest(tc.in, keys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

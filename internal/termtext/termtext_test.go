package termtext

import "testing"

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"text", "hello, wörld", "hello, wörld"},
		{"newline and tab", "a\nb\tc", `a\nb\tc`},
		{"escape sequence", "\x1b[2Jboom", `\x1b[2Jboom`},
		{"invalid utf-8", "ok\xff\xfe", `ok\xff\xfe`},
		{"nul", "\x00", `\x00`},
		{"backslash", `a\b`, `a\\b`},
		{"zero width", "a\u200bb", `a\u200bb`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Escape([]byte(tc.in)); got != tc.want {
				t.Fatalf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSafeAndQuote(t *testing.T) {
	tests := []struct{ in, safe, quote string }{
		{"plain", "plain", "plain"},
		{"café 日本", "café 日本", "café 日本"},
		{`back\slash`, `back\slash`, `back\slash`},
		{"esc\x1b[2J", `esc\x1b[2J`, `"esc\x1b[2J"`},
		{"bad\xff", `bad\xff`, `"bad\xff"`},
		{"tab\there \"q\"", `tab\there "q"`, `"tab\there \"q\""`},
	}
	for _, tc := range tests {
		if got := Safe(tc.in); got != tc.safe {
			t.Errorf("Safe(%q) = %q, want %q", tc.in, got, tc.safe)
		}
		if got := Quote(tc.in); got != tc.quote {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.quote)
		}
	}
}

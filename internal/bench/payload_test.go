package bench

import (
	"encoding/json"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    int
		seq  uint64
		ts   int64
		size int
	}{
		{"smallest", 1, 1, 1767225600000000000, MinSize},
		{"default size", 3, 123456, 1767225600123456789, 100},
		{"large numbers at the minimum", 9999, 99999999999, 1767225600000000000, MinSize},
		{"big", 17, 42, 1, 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendPayload([]byte("prefix"), tc.p, tc.seq, tc.ts, tc.size)
			b = b[len("prefix"):]
			if len(b) != tc.size {
				t.Fatalf("size = %d, want %d: %s", len(b), tc.size, b)
			}
			if !json.Valid(b) {
				t.Fatalf("not valid JSON: %s", b)
			}
			// What follows the value in a server's object must not matter.
			p, seq, ts, ok := parsePayload(append(b, `,"offset":7}`...))
			if !ok || p != tc.p || seq != tc.seq || ts != tc.ts {
				t.Fatalf("parsePayload = %d, %d, %d, %v; want %d, %d, %d, true", p, seq, ts, ok, tc.p, tc.seq, tc.ts)
			}
		})
	}
}

func TestParsePayloadRejects(t *testing.T) {
	for _, in := range []string{
		``,
		`{"text":"hello"}`,
		`{"p":1,"seq":0,"ts":5}`,
		`{"p":1,"ts":5}`,
		`{"p":"1","seq":1,"ts":5}`,
		`{"p":1,"seq":99999999999999999999999,"ts":5}`,
		`"p":`,
	} {
		if p, seq, ts, ok := parsePayload([]byte(in)); ok {
			t.Errorf("parsePayload(%q) = %d, %d, %d, true; want false", in, p, seq, ts)
		}
	}
}

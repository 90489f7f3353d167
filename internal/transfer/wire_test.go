package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestManifestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"empty", []entry{}},
		{"one file", []entry{{Kind: kindFile, Name: "a.txt", Mode: 0o644, MTime: 1, Size: 5}}},
		{"tree", []entry{
			{Kind: kindDir, Name: "café", Mode: 0o755, MTime: -5},
			{Kind: kindFile, Name: "café/naïve 日本.txt", Mode: 0o600, MTime: math.MaxInt64, Size: math.MaxInt64},
			{Kind: kindFile, Name: "café/empty", Mode: 0o7777, MTime: 0, Size: 0},
		}},
		{"longest name", []entry{{Kind: kindFile, Name: strings.Repeat("n", maxNameLen), Size: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeManifest(encodeManifest(tc.entries))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.entries) {
				t.Errorf("round trip = %+v, want %+v", got, tc.entries)
			}
		})
	}
}

func TestManifestDecodeErrors(t *testing.T) {
	good := encodeManifest([]entry{{Kind: kindFile, Name: "a", Mode: 0o644, Size: 1}})
	patch := func(off int, b ...byte) []byte {
		p := bytes.Clone(good)
		copy(p[off:], b)
		return p
	}
	count := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"no count", []byte{0, 0}, "truncated count"},
		{"too many entries", count(maxEntries + 1), "entries, limit"},
		{"count beyond data", count(2), "entry 0 truncated"},
		{"entry truncated", good[:len(good)-1], "entry 0 truncated"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"unknown kind", patch(4, 9), "unknown kind 9"},
		{"empty name", patch(5, 0, 0), "name of 0 bytes"},
		{"name too long", patch(5, 0xff, 0xff), "name of 65535 bytes"},
		{"mode too big", patch(8, 0, 0, 0x10, 0), "mode"},
		{"size over int64", patch(20, 0x80), "size"},
		{"directory with a size", patch(4, kindDir), "size 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeManifest(tc.in)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decode = %v, want a protocol error with %q", err, tc.want)
			}
		})
	}
}

func TestReadFrameLimits(t *testing.T) {
	frame := func(typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{typ}, n)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type", frame(99, 0), ErrProtocol},
		{"keepalive with payload", frame(fKeepalive, 1), ErrProtocol},
		{"answer too big", frame(fAnswer, maxFrame+1), ErrProtocol},
		{"manifest too big", frame(fManifest, maxManifest+1), ErrProtocol},
		{"header cut", []byte{fAnswer, 0}, io.ErrUnexpectedEOF},
		{"payload cut", append(frame(fAnswer, 10), 1, 2), io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, _, err := readFrame(bytes.NewReader(tc.in), &buf)
			if !errors.Is(err, tc.want) {
				t.Errorf("readFrame = %v, want %v", err, tc.want)
			}
		})
	}
	// A manifest frame that claims 64 MiB but sends 3 bytes allocates
	// for what arrived, not for the claim.
	var buf bytes.Buffer
	readFrame(io.MultiReader(bytes.NewReader(frame(fManifest, maxManifest)), bytes.NewReader([]byte{1, 2, 3})), &buf)
	if buf.Cap() > 1<<20 {
		t.Errorf("buffer grew to %d bytes for 3 bytes of payload", buf.Cap())
	}
}

func TestPayloadRoundTrips(t *testing.T) {
	var h [hashLen]byte
	for i := range h {
		h[i] = byte(i)
	}
	answers := []answer{
		{Index: 1, Verdict: vSend, Offset: 12345, Hash: h},
		{Index: 2, Verdict: vCheck, Hash: h, Overwrite: true},
		{Index: 3, Verdict: vReject, Reason: "exists; use --overwrite"},
		{Index: 4, Verdict: vDir},
	}
	for _, a := range answers {
		got, err := decodeAnswer(appendAnswer(nil, a))
		if err != nil || got != a {
			t.Errorf("answer round trip: %+v, %v; want %+v", got, err, a)
		}
	}
	for _, r := range []result{{Index: 7, OK: true, Hash: h}, {Index: 8, Reason: "checksum mismatch"}} {
		got, err := decodeResult(appendResult(nil, r))
		if err != nil || got != r {
			t.Errorf("result round trip: %+v, %v; want %+v", got, err, r)
		}
	}
	for _, s := range []skip{{Index: 1, Why: skipIdentical}, {Index: 2, Why: skipFailed, Reason: "cannot read"}} {
		got, err := decodeSkip(appendSkip(nil, s))
		if err != nil || got != s {
			t.Errorf("skip round trip: %+v, %v; want %+v", got, err, s)
		}
	}
	idle, auth, err := parseHello(appendHello(nil, 1500*time.Millisecond, authCode))
	if err != nil || idle != 1500*time.Millisecond || auth != authCode {
		t.Errorf("hello round trip: %v, %d, %v", idle, auth, err)
	}
	if _, _, err := parseHello([]byte("netkit\x01\x00\x00\x00\x00\x00")); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "v1") {
		t.Errorf("hello of version 1: %v, want a version error", err)
	}
	if _, _, err := parseHello([]byte("netkit\x02\x07\x00\x00\x00\x00")); !errors.Is(err, ErrProtocol) {
		t.Errorf("hello with auth 7: %v, want a protocol error", err)
	}
}

func TestSafeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"café 日本", "café 日本"},
		{"esc\x1b[2J", `esc\x1b[2J`},
		{"bad\xff", `bad\xff`},
		{"tab\there", `tab\there`},
	}
	for _, tc := range tests {
		if got := safeText(tc.in); got != tc.want {
			t.Errorf("safeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", maxReason)
	if got := clipReason(long); len(got) > maxReason || !strings.HasPrefix(long, got) {
		t.Errorf("clipReason cut to %d bytes, not on a rune boundary", len(got))
	}
}

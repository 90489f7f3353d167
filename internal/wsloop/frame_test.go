package wsloop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// clientFrame encodes a frame as a client sends it: masked with key.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = binary.BigEndian.AppendUint16(append(out, 0x80|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, 0x80|127), uint64(n))
	}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= key[i&3]
	}
	return out
}

func TestParseHeader(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	long := bytes.Repeat([]byte("x"), 70000)
	tests := []struct {
		name    string
		in      []byte
		wantOK  bool
		wantErr bool
		want    header
	}{
		{name: "small text", in: clientFrame(true, opText, []byte("hi"), key), wantOK: true, want: header{fin: true, op: opText, mask: key, length: 2, size: 6}},
		{name: "16-bit length", in: clientFrame(false, opBinary, long[:300], key), wantOK: true, want: header{op: opBinary, mask: key, length: 300, size: 8}},
		{name: "64-bit length", in: clientFrame(true, opContinuation, long, key), wantOK: true, want: header{fin: true, op: opContinuation, mask: key, length: 70000, size: 14}},
		{name: "ping", in: clientFrame(true, opPing, []byte("p"), key), wantOK: true, want: header{fin: true, op: opPing, mask: key, length: 1, size: 6}},
		{name: "empty", in: nil},
		{name: "one byte", in: []byte{0x81}},
		{name: "no mask key yet", in: clientFrame(true, opText, nil, key)[:3]},
		{name: "16-bit length cut", in: clientFrame(true, opText, long[:300], key)[:3]},
		{name: "unmasked", in: []byte{0x81, 0x02, 'h', 'i'}, wantErr: true},
		{name: "reserved bit", in: append([]byte{0xC1}, clientFrame(true, opText, nil, key)[1:]...), wantErr: true},
		{name: "unknown opcode", in: clientFrame(true, 0x3, nil, key), wantErr: true},
		{name: "fragmented ping", in: clientFrame(false, opPing, nil, key), wantErr: true},
		{name: "long close", in: clientFrame(true, opClose, long[:126], key), wantErr: true},
		{name: "top length bit", in: append([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, key[:]...), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ok, err := parseHeader(tc.in)
			if tc.wantErr {
				if !errors.Is(err, errProtocol) {
					t.Fatalf("parseHeader = %+v, %v, %v; want errProtocol", h, ok, err)
				}
				return
			}
			if err != nil || ok != tc.wantOK {
				t.Fatalf("parseHeader = %+v, ok %v, err %v; want ok %v", h, ok, err, tc.wantOK)
			}
			if ok && h != tc.want {
				t.Fatalf("header = %+v, want %+v", h, tc.want)
			}
		})
	}
}

func TestUnmask(t *testing.T) {
	key := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	for n := range 40 {
		payload := bytes.Repeat([]byte("netkit!"), 6)[:n]
		frame := clientFrame(true, opText, payload, key)
		h, ok, err := parseHeader(frame)
		if !ok || err != nil {
			t.Fatalf("n=%d: parseHeader: %v %v", n, ok, err)
		}
		got := frame[h.size:]
		unmask(got, h.mask)
		if !bytes.Equal(got, payload) {
			t.Fatalf("n=%d: unmasked %q, want %q", n, got, payload)
		}
	}
}

func TestServerFrames(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xFFFF, 0x10000} {
		b := appendHeader(nil, opText, n)
		if b[0] != 0x81 {
			t.Fatalf("n=%d: first byte %#x, want 0x81", n, b[0])
		}
		var got int
		switch b[1] {
		case 126:
			got = int(binary.BigEndian.Uint16(b[2:]))
		case 127:
			got = int(binary.BigEndian.Uint64(b[2:]))
		default:
			got = int(b[1])
		}
		if got != n || b[1]&0x80 != 0 {
			t.Fatalf("n=%d: header %x encodes %d (mask bit %v)", n, b, got, b[1]&0x80 != 0)
		}
	}
	c := appendClose(nil, 1009, string(bytes.Repeat([]byte("r"), 200)))
	if len(c) != 2+125 || binary.BigEndian.Uint16(c[2:]) != 1009 {
		t.Fatalf("close frame %x: want 127 bytes with status 1009", c[:8])
	}
	c = appendClose(nil, 1000, "rr"+strings.Repeat("é", 100)) // a 2-byte character across the 123rd byte
	if reason := c[4:]; len(reason) != 122 || !utf8.Valid(reason) {
		t.Fatalf("close reason of %d bytes, valid UTF-8 %v: want the 122 bytes of whole characters", len(reason), utf8.Valid(reason))
	}
}

// FuzzParseHeader checks that no input panics the header parser, that a
// parsed header fits its input, and that every client frame it accepts
// re-encodes to the same header.
func FuzzParseHeader(f *testing.F) {
	key := [4]byte{9, 8, 7, 6}
	f.Add(clientFrame(true, opText, []byte(`{"op":"ping"}`), key))
	f.Add(clientFrame(false, opBinary, bytes.Repeat([]byte{0}, 300), key))
	f.Add(clientFrame(true, opClose, []byte{3, 0xE8}, key))
	f.Add([]byte{0x81, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x81, 0x02, 'h', 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, err := parseHeader(b)
		if err != nil || !ok {
			return
		}
		if h.size > len(b) || h.length < 0 {
			t.Fatalf("header %+v does not fit %d bytes", h, len(b))
		}
		if h.op >= opClose && (h.length > 125 || !h.fin) {
			t.Fatalf("accepted control frame %+v", h)
		}
		if h.length > 1<<16 {
			return
		}
		// Re-encoded with the shortest length form, which a client
		// need not use: compare all but the header size.
		again, ok, err := parseHeader(clientFrame(h.fin, h.op, make([]byte, h.length), h.mask))
		again.size = h.size
		if !ok || err != nil || again != h {
			t.Fatalf("re-encoded header %+v, %v, %v; want %+v", again, ok, err, h)
		}
	})
}

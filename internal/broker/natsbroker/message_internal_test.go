package natsbroker

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestMessageRoundTrip encodes stream messages as the broker publishes
// them and parses them back.
func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    message
	}{
		{"one publication", message{prevSeq: 7, offset: 3, epoch: "e1", pubs: []pub{{"alice", json.RawMessage(`{"a":1}`)}}}},
		{"one from the API", message{offset: 1, epoch: "e1", pubs: []pub{{"", json.RawMessage(`null`)}}}},
		{"a batch", message{prevSeq: 9, offset: 12, epoch: "e2", pubs: []pub{
			{"alice", json.RawMessage(`"x"`)}, {"", json.RawMessage(`[]`)}, {"bob", json.RawMessage(`{"long":"` + string(bytes.Repeat([]byte("y"), 300)) + `"}`)},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nm := encodeMessage("netkit.ch.x", tc.m)
			got, err := parse(nm.Header, nm.Data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got.offset != tc.m.offset || got.prevSeq != tc.m.prevSeq || got.epoch != tc.m.epoch || len(got.pubs) != len(tc.m.pubs) {
				t.Fatalf("parsed %+v, want %+v", got, tc.m)
			}
			for i, p := range got.pubs {
				if p.from != tc.m.pubs[i].from || !bytes.Equal(p.data, tc.m.pubs[i].data) {
					t.Fatalf("publication %d = %q %s, want %q %s", i, p.from, p.data, tc.m.pubs[i].from, tc.m.pubs[i].data)
				}
			}
			if want := tc.m.offset - uint64(len(tc.m.pubs)) + 1; got.first() != want {
				t.Fatalf("first() = %d, want %d", got.first(), want)
			}
		})
	}
}

// TestParseRejects lists headers and bodies parse must refuse.
func TestParseRejects(t *testing.T) {
	batch := appendBatch(nil, []pub{{"a", json.RawMessage(`1`)}, {"b", json.RawMessage(`2`)}})
	tests := []struct {
		name   string
		offset string
		count  string
		body   []byte
	}{
		{"no offset", "", "", []byte(`1`)},
		{"count 0", "5", "0", nil},
		{"count over the bound", "500", strconv.Itoa(maxBatchCount + 1), batch},
		{"count not a number", "5", "two", batch},
		{"fewer publications than the count", "5", "3", batch},
		{"more bytes than the count", "5", "1", batch},
		{"more publications than the offset", "1", "2", batch},
		{"length past the end", "5", "1", []byte{0x01, 'a', 0x09, '1'}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := nats.Header{}
			if tc.offset != "" {
				h.Set(hdrOffset, tc.offset)
			}
			if tc.count != "" {
				h.Set(hdrCount, tc.count)
			}
			if _, err := parse(h, tc.body); err == nil {
				t.Fatalf("parse accepted it")
			}
		})
	}
}

// FuzzDecodeBatch: decodeBatch never panics, returns n publications or
// errBadBatch, and what it accepts encodes and decodes back the same.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(appendBatch(nil, []pub{{"alice", json.RawMessage(`{"a":1}`)}}), 1)                       // one
	f.Add(appendBatch(nil, []pub{{"", json.RawMessage(`1`)}, {"b", json.RawMessage(`"two"`)}}), 2) // two, one without a publisher
	f.Add(appendBatch(nil, []pub{{"", json.RawMessage(bytes.Repeat([]byte("1"), 200))}}), 1)       // a two-byte length
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1)             // a varint overflow
	f.Add([]byte{0x80}, 1)                                                                         // a truncated varint
	f.Add(appendBatch(nil, []pub{{"a", json.RawMessage(`1`)}}), 2)                                 // fewer than n
	f.Add(append(appendBatch(nil, []pub{{"a", json.RawMessage(`1`)}}), 0), 1)                      // a byte after
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 1 || n > maxBatchCount {
			return
		}
		pubs, err := decodeBatch(body, n)
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				t.Fatalf("error %v is not errBadBatch", err)
			}
			return
		}
		if len(pubs) != n {
			t.Fatalf("%d publications, want %d", len(pubs), n)
		}
		// Round trip: what it decoded encodes to bytes that decode the
		// same (not always body's bytes: a varint may be non-minimal).
		again, err := decodeBatch(appendBatch(nil, pubs), n)
		if err != nil {
			t.Fatalf("re-encoded batch: %v", err)
		}
		for i := range pubs {
			if again[i].from != pubs[i].from || !bytes.Equal(again[i].data, pubs[i].data) {
				t.Fatalf("round trip publication %d = %q %q, want %q %q", i, again[i].from, again[i].data, pubs[i].from, pubs[i].data)
			}
		}
		if batchSize(pubs) < len(body) {
			t.Fatalf("batchSize %d < encoded %d", batchSize(pubs), len(body))
		}
	})
}

package bench

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
)

// Every message the generator publishes is a JSON object of exactly the
// configured size:
//
//	{"p":1,"seq":123,"ts":1767225600000000000,"pad":"xxxxxxxx"}
//
// p numbers the publisher (from 1), seq its messages (from 1), ts is the
// send time in Unix nanoseconds, and pad fills the object up to the size.

// MinSize is the smallest message size the generator can build: the object
// without padding, with room for large numbers.
const MinSize = len(`{"p":9999,"seq":99999999999,"ts":1767225600000000000,"pad":""}`)

// padding returns the string sliced to fill messages; sizes are limited to
// its length. Made on first use, so that other commands do not pay for it
// at start-up.
var padding = sync.OnceValue(func() string { return strings.Repeat("x", MaxSize) })

// MaxSize is the largest message size the generator builds.
const MaxSize = 60 << 10

// appendPayload appends a message of the given size (>= MinSize) to dst.
func appendPayload(dst []byte, p int, seq uint64, ts int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"p":`...)
	dst = strconv.AppendInt(dst, int64(p), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `,"pad":"`...)
	if n := size - (len(dst) - start) - len(`"}`); n > 0 {
		dst = append(dst, padding()[:n]...)
	}
	return append(dst, `"}`...)
}

var (
	keyP   = []byte(`"p":`)
	keySeq = []byte(`"seq":`)
	keyTS  = []byte(`"ts":`)
)

// parsePayload reads the publisher, sequence number and send time from a
// message built by appendPayload. b starts at the message and may run past
// its end (the rest of the server's object). ok is false for anything
// else, such as messages from other publishers on the same channel.
func parsePayload(b []byte) (p int, seq uint64, ts int64, ok bool) {
	pv, ok1 := uintAfter(b, keyP)
	seq, ok2 := uintAfter(b, keySeq)
	tv, ok3 := uintAfter(b, keyTS)
	if !ok1 || !ok2 || !ok3 || seq == 0 || pv > 1<<20 {
		return 0, 0, 0, false
	}
	return int(pv), seq, int64(tv), true
}

// uintAfter parses the decimal number that follows the first key in b.
func uintAfter(b, key []byte) (uint64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	v, _, ok := parseUint(b[i+len(key):])
	return v, ok
}

// parseUint parses the decimal digits at the start of b and returns the
// rest. ok is false if b does not start with a digit or the number
// overflows.
func parseUint(b []byte) (v uint64, rest []byte, ok bool) {
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if v > (1<<63)/10 {
			return 0, b, false
		}
		v = v*10 + uint64(b[i]-'0')
	}
	return v, b[i:], i > 0
}

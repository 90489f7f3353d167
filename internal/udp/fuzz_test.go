package udp

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzParseEcho checks that no datagram makes the bench decoder panic, and
// that what it accepts is in range: a sequence number that was sent and a
// round trip that is not negative.
func FuzzParseEcho(f *testing.F) {
	ours := make([]byte, MinBenchSize)
	copy(ours, benchMagic[:])
	binary.BigEndian.PutUint64(ours[4:], 7)
	binary.BigEndian.PutUint64(ours[12:], uint64(time.Millisecond))
	f.Add(ours, int64(100), int64(time.Second))
	f.Add(ours[:MinBenchSize-1], int64(100), int64(time.Second)) // too short
	huge := append([]byte(nil), ours...)
	binary.BigEndian.PutUint64(huge[4:], 1<<62) // never sent
	f.Add(huge, int64(100), int64(time.Second))
	f.Add([]byte("hello"), int64(10), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, limit, now int64) {
		seq, rtt, ok := parseEcho(b, limit, time.Duration(now))
		if !ok {
			return
		}
		if seq < 0 || seq >= limit || rtt < 0 {
			t.Fatalf("accepted seq %d (limit %d), rtt %v", seq, limit, rtt)
		}
	})
}

//go:build unix

package history

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/protocol"
)

// offsetsOnly is the store the hub had before history: a mutex, a map of
// offsets and a clock read per Append; the hub then encoded the push
// itself. It is the baseline of BenchmarkAppend.
type offsetsOnly struct {
	mu       sync.Mutex
	channels map[string]*struct {
		pos  Position
		used time.Time
	}
}

func (s *offsetsOnly) append(channel, from string, data json.RawMessage) []byte {
	s.mu.Lock()
	ch := s.channels[channel]
	if ch == nil {
		ch = &struct {
			pos  Position
			used time.Time
		}{pos: Position{Epoch: NewEpoch()}}
		s.channels[channel] = ch
	}
	ch.used = time.Now()
	ch.pos.Offset++
	off := ch.pos.Offset
	s.mu.Unlock()
	return protocol.AppendMessage(nil, channel, off, from, data)
}

// reportCPU adds the process's CPU time per op (user and system, GC
// included) to b's results, a figure that the noise of other processes on a
// shared machine disturbs less than wall time. Call it with the function
// run returned by startCPU after the loop.
func startCPU(b *testing.B) func() {
	cpu := func() int64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return ru.Utime.Nano() + ru.Stime.Nano()
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

var benchData = json.RawMessage(`{"seq":1,"pad":"` + strings.Repeat("x", 100-len(`{"seq":1,"pad":""}`)) + `"}`)

// BenchmarkAppend measures one publication's cost in the store, push
// encoding included: the baseline (offsets only, push encoded by the hub),
// history off (Size 0) and on (the default 100 messages, 10 minutes), on
// one busy channel and spread over 10,000 channels (whose full history,
// 10,000 x 100 messages, is over the default 64 MiB cap, so every Append
// also evicts for the cap).
func BenchmarkAppend(b *testing.B) {
	for _, channels := range []int{1, 10_000} {
		names := make([]string, channels)
		for i := range names {
			names[i] = "room:" + strconv.Itoa(i)
		}
		b.Run("before/channels="+strconv.Itoa(channels), func(b *testing.B) {
			s := &offsetsOnly{channels: map[string]*struct {
				pos  Position
				used time.Time
			}{}}
			b.ReportAllocs()
			defer startCPU(b)()
			i := 0
			for b.Loop() {
				s.append(names[i%channels], "anon-5a1b2c3d", benchData)
				i++
			}
		})
		for _, tc := range []struct {
			name string
			lim  Limits
		}{
			{"off", Limits{}},
			{"on", DefaultLimits},
		} {
			b.Run("history="+tc.name+"/channels="+strconv.Itoa(channels), func(b *testing.B) {
				m := NewMemory(MemoryConfig{Limits: func(string) Limits { return tc.lim }})
				// Fill history first: the steady state of a running hub,
				// where every Append also evicts, not the heap's growth.
				for i := range channels * max(tc.lim.Size, 1) {
					m.Append(ctx, names[i%channels], "anon-5a1b2c3d", benchData)
				}
				b.ReportAllocs()
				defer startCPU(b)()
				i := 0
				for b.Loop() {
					if _, _, err := m.Append(ctx, names[i%channels], "anon-5a1b2c3d", benchData); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkRead measures the reads a subscribe makes: the last 100
// messages, a recovery of the 50 missed ones, and a position only.
func BenchmarkRead(b *testing.B) {
	m := NewMemory(MemoryConfig{})
	var pos Position
	for range 150 {
		pos, _, _ = m.Append(ctx, "room", "anon-5a1b2c3d", benchData)
	}
	seen := Position{Offset: pos.Offset - 50, Epoch: pos.Epoch}
	for _, tc := range []struct {
		name string
		q    Query
	}{
		{"last=100", Query{Limit: 100}},
		{"recover=50", Query{Since: &seen}},
		{"position", Query{Limit: 1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer startCPU(b)()
			for b.Loop() {
				if res, _ := m.Read(ctx, "room", tc.q); len(res.Messages) == 0 {
					b.Fatal("no messages")
				}
			}
		})
	}
}

package history

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzMemory runs a sequence of store operations decoded from the input
// under a small cap and checks after each one that the accounting matches
// the structures, the cap holds, and every read is a run of consecutive
// offsets that a recovery never reports with a gap.
func FuzzMemory(f *testing.F) {
	// Each op is two bytes: an operation and a channel (with a size).
	f.Add([]byte{0, 1, 0, 1, 0, 1, 1, 1, 2, 1})                         // appends, then reads
	f.Add([]byte{3, 2, 0, 2, 5, 0, 0, 2, 6, 0, 4, 2, 5, 0, 0, 2})       // pin, clock, sweep, unpin
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 2, 0}) // many channels
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 600 {
			return
		}
		runOps(t, ops)
	})
}

func runOps(t *testing.T, ops []byte) {
	{
		clock := newFakeClock()
		const maxBytes = 8 << 10
		m := NewMemory(MemoryConfig{Now: clock.Now, MaxBytes: maxBytes, IdleTTL: time.Minute,
			Limits: func(ch string) Limits {
				return Limits{Size: int(ch[0]-'a') % 4 * 3, TTL: time.Duration(ch[0]-'a') % 3 * time.Minute}
			}})
		pinned := map[string]int{}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%7, ops[i+1]
			ch := string(rune('a'+arg%8)) + strconv.Itoa(int(arg/8))
			switch op {
			case 0:
				m.Append(ctx, ch, "u", json.RawMessage(`"`+strings.Repeat("x", int(arg)%40)+`"`))
			case 1, 2:
				var q Query
				pos, _ := m.Position(ctx, ch)
				if op == 2 {
					q.Since = &Position{Offset: pos.Offset - min(pos.Offset, uint64(arg%5)), Epoch: pos.Epoch}
				}
				q.Limit = int(arg % 4)
				res, _ := m.Read(ctx, ch, q)
				got := offsets(t, res.Messages)
				for j := 1; j < len(got); j++ {
					if got[j] != got[j-1]+1 {
						t.Fatalf("Read %+v = offsets %v: not consecutive", q, got)
					}
				}
				if res.Recovered && q.Limit == 0 && !slices.Equal(got, span(q.Since.Offset+1, res.Position.Offset)) {
					t.Fatalf("recovered since %d at %d with offsets %v: a gap", q.Since.Offset, res.Position.Offset, got)
				}
			case 3:
				m.Pin(ch)
				pinned[ch]++
			case 4:
				if pinned[ch] > 0 {
					m.Unpin(ch)
					pinned[ch]--
				}
			case 5:
				clock.Advance(time.Duration(arg) * time.Second)
			case 6:
				m.Sweep()
			}
			checkAccounting(t, m)
			if st := m.Stats(); st.Bytes > maxBytes && st.Messages > 0 {
				t.Fatalf("store over its cap with %d messages it could evict: %+v", st.Messages, st)
			}
		}
	}
}

package hub_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

// historyOf runs the history command and returns its result.
func historyOf(t *testing.T, c *hubtest.Client, cmd map[string]any) (epoch string, offset float64, recovered any, offsets []float64) {
	t.Helper()
	cmd["op"] = "history"
	res := quiet(t, c, cmd)
	for _, m := range res["messages"].([]any) {
		msg := m.(map[string]any)
		if msg["push"] != "message" {
			t.Fatalf("history holds %v, want message pushes", msg)
		}
		offsets = append(offsets, msg["offset"].(float64))
	}
	return res["epoch"].(string), res["offset"].(float64), res["recovered"], offsets
}

func publishN(t *testing.T, h *hubtest.Hub, channel string, n int) {
	t.Helper()
	for i := range n {
		if status, m := h.API(t, "POST", "/api/publish", map[string]any{"channel": channel, "data": i}); status != http.StatusOK {
			t.Fatalf("publish: %d %v", status, m)
		}
	}
}

func TestHistoryCommand(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	publishN(t, h, "h", 5)
	epoch, off, rec, got := historyOf(t, c, map[string]any{"id": 1, "channel": "h", "limit": 3})
	if off != 5 || rec != nil || fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("history limit 3 = offset %v recovered %v messages %v, want 5, none, [3 4 5]", off, rec, got)
	}
	_, _, _, got = historyOf(t, c, map[string]any{"id": 2, "channel": "h"})
	if fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("history = %v, want all five", got)
	}
	_, _, rec, got = historyOf(t, c, map[string]any{"id": 3, "channel": "h", "since": map[string]any{"offset": 2, "epoch": epoch}, "limit": 2})
	if rec != true || fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("history since 2 limit 2 = %v %v, want recovered and [3 4]", rec, got)
	}
	_, _, rec, _ = historyOf(t, c, map[string]any{"id": 4, "channel": "h", "since": map[string]any{"offset": 2, "epoch": "other"}})
	if rec != false {
		t.Fatalf("history since another epoch: recovered %v, want false", rec)
	}
	// The HTTP API answers the same.
	status, m := h.API(t, "GET", "/api/history?channel=h&limit=2&since_offset=1&since_epoch="+epoch, nil)
	if status != http.StatusOK || m["recovered"] != true || len(m["messages"].([]any)) != 2 || m["epoch"] != epoch {
		t.Fatalf("GET /api/history = %d %v", status, m)
	}
	for _, q := range []string{"channel=h&since_offset=1", "channel=h&limit=-1", "channel=h&since_offset=x&since_epoch=e", "channel=a%20b", "channel=h&what=1"} {
		if status, m := h.API(t, "GET", "/api/history?"+q, nil); status != http.StatusBadRequest {
			t.Fatalf("GET /api/history?%s = %d %v, want 400", q, status, m)
		}
	}
}

// TestSubscribeLast subscribes with last: the reply, then the last
// messages, then live ones.
func TestSubscribeLast(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JoinLeave = false })
	publishN(t, h, "l", 5)
	c := h.Dial(t)
	res := quiet(t, c, map[string]any{"id": 1, "op": "subscribe", "channel": "l", "last": 2})
	if res["offset"] != 5.0 || res["recovered"] != nil {
		t.Fatalf("subscribe last 2 = %v, want offset 5 and no recovered", res)
	}
	publishN(t, h, "l", 1)
	for _, want := range []uint64{4, 5, 6} {
		if m := readMessage(t, c); m.Offset != want {
			t.Fatalf("got offset %d, want %d", m.Offset, want)
		}
	}
}

// TestRecovery drops a subscriber's connection at different points while
// publishers keep publishing, and resubscribes with since: it must get
// every message exactly once, in order, whatever the interleaving.
func TestRecovery(t *testing.T) {
	const total = 300
	for _, cut := range []int{0, 1, 50, 150, 299} {
		t.Run(fmt.Sprintf("cut after %d", cut), func(t *testing.T) {
			h := hubtest.Start(t, func(c *hub.Config) {
				c.JoinLeave = false
				c.HistorySize = total
			})
			first := h.Dial(t)
			res := quiet(t, first, subscribeCmd(1, "r"))
			epoch := res["epoch"].(string)

			var wg sync.WaitGroup
			start := make(chan struct{})
			for p := range 2 { // two publishers, interleaved
				wg.Go(func() {
					<-start
					pub := h.Dial(t)
					for i := range total / 2 {
						pub.Send(publishCmd(i+1, "r", fmt.Sprintf("%d-%d", p, i)))
						if m := pub.Read(); m["result"] == nil {
							t.Errorf("publish: %v", m)
							return
						}
					}
				})
			}
			close(start)
			last := uint64(0)
			for last < uint64(cut) {
				m := readMessage(t, first)
				if m.Offset != last+1 {
					t.Fatalf("before the cut: offset %d after %d", m.Offset, last)
				}
				last = m.Offset
			}
			first.Conn.Close() // the cut, while publishers go on

			second := h.Dial(t)
			second.Send(map[string]any{"id": 2, "op": "subscribe", "channel": "r", "since": map[string]any{"offset": last, "epoch": epoch}})
			reply := second.Read()
			if res := result(t, reply); res["recovered"] != true || res["epoch"] != epoch {
				t.Fatalf("resubscribe = %v, want recovered in epoch %s", reply, epoch)
			}
			for last < total {
				m := readMessage(t, second)
				if m.Offset != last+1 {
					t.Fatalf("after the cut: offset %d after %d (gap or duplicate)", m.Offset, last)
				}
				last = m.Offset
			}
			wg.Wait()
		})
	}
}

// TestRecoveryEvicted: when the messages a recovery needs are gone (by
// size, by age, or by the memory cap) the reply says recovered:false and
// no stale message follows.
func TestRecoveryEvicted(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) {
		c.JoinLeave = false
		c.HistoryMaxBytes = 64 << 10
		c.Namespaces = append(c.Namespaces,
			hub.Namespace{Name: "small", Publish: hub.PublishClients, HistorySize: 3, HistoryTTL: time.Hour, AllowAnonymous: true},
			hub.Namespace{Name: "brief", Publish: hub.PublishClients, HistorySize: 100, HistoryTTL: 50 * time.Millisecond, AllowAnonymous: true},
		)
	})
	c := h.Dial(t)
	epochOf := func(channel string) string {
		e, _, _, _ := historyOf(t, c, map[string]any{"id": 9, "channel": channel, "limit": 1})
		return e
	}
	expectNotRecovered := func(channel string, since uint64, epoch string) {
		t.Helper()
		s := h.Dial(t)
		res := quiet(t, s, map[string]any{"id": 1, "op": "subscribe", "channel": channel, "since": map[string]any{"offset": since, "epoch": epoch}})
		if res["recovered"] != false {
			t.Fatalf("%s since %d: %v, want recovered false", channel, since, res)
		}
		// Nothing follows the reply but what is published next.
		publishN(t, h, channel, 1)
		if m := readMessage(t, s); m.Offset != uint64(res["offset"].(float64))+1 {
			t.Fatalf("%s: after recovered:false got offset %d, want the next live one", channel, m.Offset)
		}
	}

	publishN(t, h, "small:a", 10) // keeps 8..10
	expectNotRecovered("small:a", 2, epochOf("small:a"))

	publishN(t, h, "brief:a", 3)
	epoch := epochOf("brief:a")
	testenv.WaitFor(t, 10*time.Second, func() error {
		if _, _, _, got := historyOf(t, c, map[string]any{"id": 8, "channel": "brief:a"}); len(got) > 0 {
			return fmt.Errorf("history still holds %v", got)
		}
		return nil
	})
	expectNotRecovered("brief:a", 1, epoch)

	publishN(t, h, "capped", 2)
	epoch = epochOf("capped")
	big := strings.Repeat("x", 4<<10)
	for i := range 40 { // 160 KiB into other channels: over the 64 KiB cap
		if status, m := h.API(t, "POST", "/api/publish", map[string]any{"channel": fmt.Sprintf("filler%d", i), "data": big}); status != http.StatusOK {
			t.Fatalf("publish: %d %v", status, m)
		}
	}
	expectNotRecovered("capped", 1, epoch)
}

// TestHistoryMessagesAreMessages checks that history returns the very
// pushes subscribers got.
func TestHistoryMessagesAreMessages(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JoinLeave = false })
	c := h.Dial(t)
	quiet(t, c, subscribeCmd(1, "same"))
	c.Send(publishCmd(2, "same", map[string]any{"a": []int{1, 2}}))
	live, _ := c.ReadRaw()
	c.Read() // the publish reply
	c.Send(map[string]any{"id": 3, "op": "history", "channel": "same"})
	raw, _ := c.ReadRaw()
	var reply struct {
		Result struct{ Messages []json.RawMessage }
	}
	if err := json.Unmarshal(raw, &reply); err != nil || len(reply.Result.Messages) != 1 || string(reply.Result.Messages[0]) != string(live) {
		t.Fatalf("history = %s, want the live push %s", raw, live)
	}
}

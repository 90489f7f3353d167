package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

func TestWelcome(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)

	want := []string{"client", "node", "push", "user", "version"}
	if got := keys(a.Welcome); !reflect.DeepEqual(got, want) {
		t.Fatalf("welcome keys = %v, want %v", got, want)
	}
	for _, c := range []*hubtest.Client{a, b} {
		w := c.Welcome
		if !strings.HasPrefix(c.User(), "anon-") || len(c.User()) <= len("anon-") {
			t.Errorf("user = %q, want anon-<random>", w["user"])
		}
		if c.ID() == "" {
			t.Errorf("client = %q, want a client id", w["client"])
		}
		if w["node"] != "test-node" || w["version"] != "test" {
			t.Errorf("node, version = %v, %v; want test-node, test", w["node"], w["version"])
		}
	}
	if a.ID() == b.ID() || a.User() == b.User() {
		t.Fatalf("two connections share ids: %v and %v", a.Welcome, b.Welcome)
	}
}

func TestSubscribe(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)

	first := quiet(t, a, subscribeCmd(1, "room"))
	if first["channel"] != "room" || first["offset"] != 0.0 || first["epoch"] == "" || first["epoch"] == nil {
		t.Fatalf("subscribe to a fresh channel = %v, want channel room, offset 0 and an epoch", first)
	}
	for i := 1; i <= 3; i++ {
		quiet(t, b, publishCmd(i, "room", i))
		a.Expect("message")
	}
	second := quiet(t, b, subscribeCmd(4, "room"))
	if second["offset"] != 3.0 || second["epoch"] != first["epoch"] {
		t.Fatalf("subscribe after 3 messages = %v, want offset 3 and epoch %v", second, first["epoch"])
	}
	a.Expect("join")

	// Subscribing again succeeds with the current position and no second join.
	third := quiet(t, b, subscribeCmd(5, "room"))
	if !reflect.DeepEqual(third, second) {
		t.Fatalf("second subscribe = %v, want %v", third, second)
	}
	quiet(t, b, pingCmd(6)) // b's commands are done: any join push is queued for a
	quiet(t, a, pingCmd(7))
	if n := presenceCount(t, h, "room"); n != 2 {
		t.Fatalf("presence after a double subscribe lists %d clients, want 2", n)
	}
}

func TestUnsubscribe(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)
	quiet(t, a, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(1, "room"))
	a.Expect("join")

	if res := quiet(t, b, unsubscribeCmd(2, "room")); len(res) != 0 {
		t.Fatalf("unsubscribe result = %v, want {}", res)
	}
	a.Expect("leave")
	if _, skipped := a.Call(publishCmd(2, "room", "after")); len(skipped) != 1 || skipped[0]["push"] != "message" {
		t.Fatalf("publisher read %v before its reply, want its message", skipped)
	}
	// The message is queued for every subscriber before a's reply; b's
	// pong coming first proves b got none.
	quiet(t, b, pingCmd(3))

	if res := quiet(t, b, unsubscribeCmd(4, "never-subscribed")); len(res) != 0 {
		t.Fatalf("unsubscribe from a channel not subscribed = %v, want {}", res)
	}
	if res := quiet(t, b, unsubscribeCmd(5, "room")); len(res) != 0 {
		t.Fatalf("second unsubscribe = %v, want {}", res)
	}
}

func TestPublish(t *testing.T) {
	h := hubtest.Start(t, nil)
	pub, sub, outsider := h.Dial(t), h.Dial(t), h.Dial(t)
	quiet(t, pub, subscribeCmd(1, "room"))
	quiet(t, sub, subscribeCmd(1, "room"))
	pub.Expect("join")

	for i := 1; i <= 5; i++ {
		reply, skipped := pub.Call(publishCmd(10+i, "room", map[string]any{"n": i}))
		if off := result(t, reply)["offset"]; off != float64(i) {
			t.Fatalf("publish %d: offset = %v, want %d", i, off, i)
		}
		// The publisher is subscribed: its own message comes before the reply.
		if len(skipped) != 1 {
			t.Fatalf("publish %d: publisher read %v before the reply, want its message", i, skipped)
		}
		for who, m := range map[string]map[string]any{"publisher": skipped[0], "subscriber": sub.Expect("message")} {
			want := map[string]any{"push": "message", "channel": "room", "offset": float64(i), "from": pub.User(), "data": map[string]any{"n": float64(i)}}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("%s got %v, want %v", who, m, want)
			}
		}
	}

	// A connection need not be subscribed to publish; it gets only the reply.
	if off := quiet(t, outsider, publishCmd(20, "room", "x"))["offset"]; off != 6.0 {
		t.Fatalf("offset = %v, want 6", off)
	}
	if m := sub.Expect("message"); m["from"] != outsider.User() {
		t.Fatalf("from = %v, want %v", m["from"], outsider.User())
	}
	// Offsets are per channel.
	if off := quiet(t, outsider, publishCmd(21, "other", "x"))["offset"]; off != 1.0 {
		t.Fatalf("first offset of another channel = %v, want 1", off)
	}
}

func TestPublishData(t *testing.T) {
	h := hubtest.Start(t, nil)
	pub, sub := h.Dial(t), h.Dial(t)
	quiet(t, sub, subscribeCmd(1, "data"))

	tests := []struct {
		name string
		data string // raw JSON
	}{
		{"null", `null`},
		{"true", `true`},
		{"false", `false`},
		{"zero", `0`},
		{"decimal keeps its digits", `-1.50`},
		{"integer beyond float64", `12345678901234567890`},
		{"exponent", `1e-7`},
		{"string with escapes", `"h\u00e9llo \"q\" \\ \n ✓"`},
		{"empty string", `""`},
		{"empty array", `[]`},
		{"empty object", `{}`},
		{"nested", `{"a":[1,{"b":null,"c":[true,"x"]}],"d":{"e":{"f":{}}}}`},
		{"spaces", `{ "a" : [ 1, 2 ] }`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub.Send(fmt.Sprintf(`{"id":%d,"op":"publish","channel":"data","data":%s}`, i, tc.data))
			if reply := pub.Read(); reply["id"] != float64(i) || reply["result"] == nil {
				t.Fatalf("reply = %v, want a result with id %d", reply, i)
			}
			got := readMessage(t, sub)
			if !sameJSON(t, got.Data, []byte(tc.data)) {
				t.Fatalf("data = %s, want %s", got.Data, tc.data)
			}
		})
	}

	t.Run("one command over several lines", func(t *testing.T) {
		pub.Send("{\n  \"id\": 99,\n  \"op\": \"publish\",\n  \"channel\": \"data\",\n  \"data\": {\n    \"a\": [\n      1,\n      2\n    ]\n  }\n}\n")
		reply := pub.Read()
		if reply["id"] != 99.0 || reply["result"] == nil {
			t.Fatalf("reply = %v, want a result with id 99", reply)
		}
		quiet(t, pub, pingCmd(100)) // one reply only
		got := readMessage(t, sub)  // the reader splits on "\n": a raw line break would fail here
		if string(got.Data) != `{"a":[1,2]}` {
			t.Fatalf("data = %s, want compact {\"a\":[1,2]}", got.Data)
		}
	})
}

func TestSend(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)

	tests := []struct {
		name          string
		from, to      *hubtest.Client
		data          any
		wantDelivered float64
	}{
		{"to another user", a, b, map[string]any{"text": "psst"}, 1},
		{"null data", a, b, nil, 1},
		{"to oneself", a, a, []any{1.0, "two"}, 1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply, skipped := tc.from.Call(map[string]any{"id": i, "op": "send", "to": tc.to.User(), "data": tc.data})
			if got := result(t, reply)["delivered"]; got != tc.wantDelivered {
				t.Fatalf("delivered = %v, want %v", got, tc.wantDelivered)
			}
			var push map[string]any
			if tc.to == tc.from {
				if len(skipped) != 1 {
					t.Fatalf("sender read %v before the reply, want its direct push", skipped)
				}
				push = skipped[0]
			} else {
				if len(skipped) != 0 {
					t.Fatalf("sender read %v before the reply", skipped)
				}
				push = tc.to.Expect("direct")
			}
			want := map[string]any{"push": "direct", "from": tc.from.User(), "data": tc.data}
			if !reflect.DeepEqual(push, want) {
				t.Fatalf("push = %v, want %v", push, want)
			}
		})
	}

	t.Run("to a user with no connection", func(t *testing.T) {
		res := quiet(t, a, map[string]any{"id": 9, "op": "send", "to": "anon-nobody", "data": 1})
		if res["delivered"] != 0.0 {
			t.Fatalf("delivered = %v, want 0", res["delivered"])
		}
		quiet(t, b, pingCmd(10))
	})
}

func TestPresence(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b, c := h.Dial(t), h.Dial(t), h.Dial(t)

	if got := presenceCmd(t, c, 1, "room"); len(got) != 0 {
		t.Fatalf("presence of an empty channel = %v, want []", got)
	}
	quiet(t, a, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(1, "room"))
	a.Expect("join")

	want := []map[string]any{
		{"client": a.ID(), "user": a.User()},
		{"client": b.ID(), "user": b.User()},
	}
	if want[0]["client"].(string) > want[1]["client"].(string) {
		want[0], want[1] = want[1], want[0]
	}
	if got := presenceCmd(t, c, 2, "room"); !reflect.DeepEqual(got, want) {
		t.Fatalf("presence = %v, want %v (sorted by client id)", got, want)
	}

	quiet(t, b, unsubscribeCmd(3, "room"))
	a.Expect("leave")
	if got := presenceCmd(t, c, 4, "room"); len(got) != 1 || got[0]["client"] != a.ID() {
		t.Fatalf("presence after b unsubscribed = %v, want only a", got)
	}

	quiet(t, b, subscribeCmd(5, "room"))
	quiet(t, b, pingCmd(6))
	a.Expect("join")
	a.Conn.Close()
	b.Expect("leave") // sent after a left the presence
	if got := presenceCmd(t, c, 7, "room"); len(got) != 1 || got[0]["client"] != b.ID() {
		t.Fatalf("presence after a disconnected = %v, want only b", got)
	}
}

func TestJoinLeave(t *testing.T) {
	tests := []struct {
		name      string
		joinLeave bool
	}{
		{"on", true},
		{"off", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hubtest.Start(t, func(c *hub.Config) { c.JoinLeave = tc.joinLeave })
			watcher, b := h.Dial(t), h.Dial(t)
			quiet(t, watcher, subscribeCmd(1, "room"))

			// The subject gets no push about itself: its reply comes alone.
			quiet(t, b, subscribeCmd(1, "room"))
			quiet(t, b, pingCmd(2))
			expectPushes(t, watcher, tc.joinLeave, "join", b)

			quiet(t, b, unsubscribeCmd(3, "room"))
			expectPushes(t, watcher, tc.joinLeave, "leave", b)

			quiet(t, b, subscribeCmd(4, "room"))
			quiet(t, b, pingCmd(5))
			expectPushes(t, watcher, tc.joinLeave, "join", b)

			b.Conn.Close()
			if tc.joinLeave {
				expectPushes(t, watcher, true, "leave", b)
				return
			}
			testenv.WaitFor(t, 5*time.Second, func() error {
				if n := presenceCount(t, h, "room"); n != 1 {
					return fmt.Errorf("presence lists %d clients, want 1", n)
				}
				return nil
			})
			quiet(t, watcher, pingCmd(6)) // no leave push queued before the pong
		})
	}
}

// expectPushes reads a join or leave push about subject from c when want is
// set, and otherwise checks with a ping that none is queued.
func expectPushes(t *testing.T, c *hubtest.Client, want bool, push string, subject *hubtest.Client) {
	t.Helper()
	if !want {
		quiet(t, c, pingCmd(1000))
		return
	}
	got := c.Expect(push)
	wantPush := map[string]any{"push": push, "channel": "room", "client": subject.ID(), "user": subject.User()}
	if !reflect.DeepEqual(got, wantPush) {
		t.Fatalf("got %v, want %v", got, wantPush)
	}
}

func TestPingIDs(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	tests := []struct {
		name  string
		frame string
		want  string // exact reply
	}{
		{"small", `{"id":6,"op":"ping"}`, `{"id":6,"result":{}}`},
		{"zero is an id", `{"id":0,"op":"ping"}`, `{"id":0,"result":{}}`},
		{"negative", `{"id":-5,"op":"ping"}`, `{"id":-5,"result":{}}`},
		{"beyond float64", `{"id":9007199254740993,"op":"ping"}`, `{"id":9007199254740993,"result":{}}`},
		{"none", `{"op":"ping"}`, `{"result":{}}`},
		{"null", `{"id":null,"op":"ping"}`, `{"result":{}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(tc.frame)
			raw, err := c.ReadRaw()
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tc.want {
				t.Fatalf("reply = %s, want %s", raw, tc.want)
			}
		})
	}
}

func TestSeveralCommandsInOneFrame(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	c.Send(strings.Join([]string{
		`{"id":1,"op":"subscribe","channel":"room"}`,
		`{"id":2,"op":"publish","channel":"room","data":"hi"}`,
		``, // blank lines are skipped
		`{"op":"ping"}`,
		`nope`,
		`{"id":5,"op":"presence","channel":"room"}`,
		"{\"id\":6,\"op\":\"ping\"}\r",
	}, "\n"))
	want := []struct {
		id   any // nil: no id key
		kind string
	}{{1.0, "result"}, {nil, "message"}, {2.0, "result"}, {nil, "result"}, {nil, "error"}, {5.0, "result"}, {6.0, "result"}}
	for i, w := range want {
		m := c.Read()
		id, hasID := m["id"]
		if kind(m) != w.kind || hasID != (w.id != nil) || id != w.id {
			t.Fatalf("object %d = %v, want a %s with id %v", i, m, w.kind, w.id)
		}
	}
}

// kind names a server object: its push, or "result" or "error".
func kind(m map[string]any) string {
	if p, ok := m["push"].(string); ok {
		return p
	}
	if _, ok := m["error"]; ok {
		return "error"
	}
	return "result"
}

func TestEmptyFrames(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	for _, frame := range []string{"", "\n", "  \n\t\n\r\n"} {
		c.Send(frame)
	}
	quiet(t, c, pingCmd(1)) // no command, no reply: the pong comes first
}

// TestFramesOneObjectEach checks the default framing: a publish to a
// channel the publisher subscribed to makes two server objects due at
// once (the message and the reply), and each arrives in a text frame of
// its own, so `JSON.parse(ev.data)` works. With frames=joined a client
// may get them in one frame, separated by "\n".
func TestFramesOneObjectEach(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JoinLeave = false })
	for _, tc := range []struct {
		name, query string
	}{{"default", ""}, {"joined", "?frames=joined"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := hubtest.DialURL(t, h.URL+tc.query)
			var objects []map[string]any
			for len(objects) < 4 { // welcome, subscribe reply, message, publish reply
				if len(objects) == 1 {
					c.Send(subscribeCmd(1, "own"))
				}
				if len(objects) == 2 {
					c.Send(publishCmd(2, "own", "hi"))
				}
				typ, frame, err := c.Conn.ReadMessage()
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if typ != websocket.TextMessage {
					t.Fatalf("frame type %d, want text", typ)
				}
				for obj := range bytes.SplitSeq(frame, []byte{'\n'}) {
					var m map[string]any
					if err := json.Unmarshal(obj, &m); err != nil {
						t.Fatalf("frame %q: object %q is not JSON: %v", frame, obj, err)
					}
					objects = append(objects, m)
				}
				if tc.query == "" {
					var one any
					if err := json.Unmarshal(frame, &one); err != nil {
						t.Fatalf("frame %q is not one JSON value: %v", frame, err)
					}
				}
			}
			if objects[2]["push"] != "message" || objects[3]["id"] != 2.0 {
				t.Fatalf("objects = %v, want the message, then the publish reply", objects)
			}
		})
	}
}

package hub_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

func TestBadCommands(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	long := strings.Repeat("a", 256)
	tests := []struct {
		name    string
		frame   string
		wantID  any    // nil: the reply has no id
		wantMsg string // in the error message
	}{
		{"malformed JSON", `{"id":1,"op":`, nil, "malformed JSON"},
		{"trailing garbage", `{"id":1,"op":"ping"} x`, nil, "malformed JSON"},
		{"not an object", `[1,2]`, nil, "want a JSON object"},
		{"a string", `"ping"`, nil, "want a JSON object"},
		{"unknown op", `{"id":2,"op":"dance"}`, 2.0, `unknown op "dance"`},
		{"missing op", `{"id":3,"channel":"room"}`, 3.0, "op: missing"},
		{"empty op", `{"id":3,"op":""}`, 3.0, "op: missing"},
		{"mistyped op", `{"id":4,"op":1}`, 4.0, "op: want a string"},
		{"subscribe without channel", `{"id":5,"op":"subscribe"}`, 5.0, "channel: missing"},
		{"unsubscribe without channel", `{"id":5,"op":"unsubscribe"}`, 5.0, "channel: missing"},
		{"presence without channel", `{"id":5,"op":"presence"}`, 5.0, "channel: missing"},
		{"publish without channel", `{"id":5,"op":"publish","data":1}`, 5.0, "channel: missing"},
		{"empty channel", `{"id":5,"op":"subscribe","channel":""}`, 5.0, "channel: missing"},
		{"numeric channel", `{"id":6,"op":"subscribe","channel":5}`, 6.0, "channel: want a string, got number"},
		{"array channel", `{"id":6,"op":"publish","channel":["a"],"data":1}`, 6.0, "channel: want a string, got array"},
		{"space in channel", `{"id":7,"op":"subscribe","channel":"a b"}`, 7.0, "channel: invalid byte 0x20 at 1"},
		{"bang in channel", `{"id":7,"op":"publish","channel":"a!","data":1}`, 7.0, `channel: invalid byte '!' at 1`},
		{"non-ASCII channel", `{"id":7,"op":"subscribe","channel":"ä"}`, 7.0, "channel: invalid byte 0xc3 at 0"},
		{"256-byte channel", `{"id":8,"op":"subscribe","channel":"` + long + `"}`, 8.0, "channel: 256 bytes, want at most 255"},
		{"publish without data", `{"id":9,"op":"publish","channel":"room"}`, 9.0, "data: missing"},
		{"send without to", `{"id":10,"op":"send","data":1}`, 10.0, "to: missing"},
		{"send to a number", `{"id":10,"op":"send","to":7,"data":1}`, 10.0, "to: want a string"},
		{"send to a 256-byte user", `{"id":10,"op":"send","to":"` + long + `","data":1}`, 10.0, "to: user id is 256 bytes"},
		{"send without data", `{"id":11,"op":"send","to":"anon-x"}`, 11.0, "data: missing"},
		{"fractional id", `{"id":1.5,"op":"ping"}`, nil, "id: want an integer, got 1.5"},
		{"string id", `{"id":"x","op":"ping"}`, nil, `id: want an integer, got "x"`},
		{"boolean id", `{"id":true,"op":"ping"}`, nil, "id: want an integer"},
		{"id beyond int64", `{"id":9223372036854775808,"op":"ping"}`, nil, "id: want an integer"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(tc.frame)
			m := c.Read()
			id, hasID := m["id"]
			if tc.wantID == nil && hasID || tc.wantID != nil && id != tc.wantID {
				t.Errorf("reply id = %v (present %v), want %v", id, hasID, tc.wantID)
			}
			e, _ := m["error"].(map[string]any)
			if e["code"] != "bad_request" || !strings.Contains(fmt.Sprint(e["message"]), tc.wantMsg) {
				t.Fatalf("reply = %v, want error bad_request with %q", m, tc.wantMsg)
			}
			quiet(t, c, pingCmd(1000+i)) // the connection stays open
		})
	}
}

// TestChannelNames checks which names are valid. Valid private names
// (with "#") are forbidden to an anonymous client: it is none of the users
// they list (auth_test.go covers their users).
func TestChannelNames(t *testing.T) {
	const all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@/-"
	h := hubtest.Start(t, func(c *hub.Config) {
		c.Namespaces = append(c.Namespaces, c.NewNamespace(strings.Split(all, ":")[0]))
	})
	c := h.Dial(t)
	tests := []struct {
		name      string
		channel   string
		valid     bool
		forbidden bool
	}{
		{"every allowed byte", all, true, false},
		{"one byte", "x", true, false},
		{"255 bytes", strings.Repeat("x", 255), true, false},
		{"private channel", "dm#alice,bob", true, true},
		{"commas after the last hash", "a#b#c,d,e", true, true},
		{"comma right after hash", "#,", true, true},
		{"comma before the hash", "dm,x#alice", false, false},
		{"comma between hashes", "a#b,c#d", false, false},
		{"comma without hash", "alice,bob", false, false},
		{"256 bytes", strings.Repeat("x", 256), false, false},
		{"tab", "a\tb", false, false},
		{"star", "a*", false, false},
		{"plus", "a+b", false, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply, _ := c.Call(subscribeCmd(i, tc.channel))
			if !tc.valid {
				if e, _ := reply["error"].(map[string]any); e["code"] != "bad_request" || !strings.HasPrefix(fmt.Sprint(e["message"]), "channel: ") {
					t.Fatalf("subscribe %q = %v, want bad_request about the channel", tc.channel, reply)
				}
				return
			}
			if tc.forbidden {
				if e, _ := reply["error"].(map[string]any); e["code"] != "forbidden" {
					t.Fatalf("subscribe %q = %v, want forbidden", tc.channel, reply)
				}
				return
			}
			if res := result(t, reply); res["channel"] != tc.channel {
				t.Fatalf("subscribe %q = %v, want the channel echoed", tc.channel, res)
			}
			reply, skipped := c.Call(publishCmd(500+i, tc.channel, 1))
			if off := result(t, reply)["offset"]; off != 1.0 {
				t.Fatalf("publish to %q: offset %v, want 1", tc.channel, off)
			}
			if len(skipped) != 1 || skipped[0]["channel"] != tc.channel {
				t.Fatalf("publisher read %v before its reply, want its message on %q", skipped, tc.channel)
			}
		})
	}
}

func TestMaxSubscriptions(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.MaxSubscriptions = 2 })
	c := h.Dial(t)
	quiet(t, c, subscribeCmd(1, "a"))
	quiet(t, c, subscribeCmd(2, "b"))

	reply, _ := c.Call(subscribeCmd(3, "c"))
	if e, _ := reply["error"].(map[string]any); e["code"] != "too_many_requests" || reply["id"] != 3.0 {
		t.Fatalf("third subscription = %v, want too_many_requests with id 3", reply)
	}
	quiet(t, c, subscribeCmd(4, "a")) // already subscribed: not a new subscription
	quiet(t, c, unsubscribeCmd(5, "b"))
	quiet(t, c, subscribeCmd(6, "c"))
	if n := presenceCount(t, h, "c"); n != 1 {
		t.Fatalf("presence of c lists %d clients, want 1", n)
	}
}

func TestBinaryFrame(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	if err := c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"id":1,"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	m := c.Read()
	if e, _ := m["error"].(map[string]any); e["code"] != "bad_request" || m["id"] != nil {
		t.Fatalf("reply to a binary frame = %v, want bad_request without id", m)
	}
	quiet(t, c, pingCmd(2))
}

func TestInvalidUTF8(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	c.Send([]byte("{\"id\":1,\"op\":\"publish\",\"channel\":\"a\",\"data\":\"\xff\xfe\"}"))
	expectDisconnect(t, c, "bad_request", websocket.CloseInvalidFramePayloadData)
}

func TestMaxMessageSize(t *testing.T) {
	const max = 1024
	h := hubtest.Start(t, func(c *hub.Config) { c.MaxMessageSize = max })
	c := h.Dial(t)

	// Exactly the limit passes (unknown fields are ignored).
	fits := padded(`{"id":1,"op":"ping","pad":"`, `"}`, max)
	c.Send(fits)
	if m := c.Read(); m["id"] != 1.0 || m["result"] == nil {
		t.Fatalf("reply to a %d-byte command = %v, want a result", len(fits), m)
	}

	// One byte more: queued replies are flushed, then the disconnect.
	c.Send(`{"id":2,"op":"ping"}`)
	c.Send(padded(`{"id":3,"op":"ping","pad":"`, `"}`, max+1))
	if m := c.Read(); m["id"] != 2.0 {
		t.Fatalf("got %v, want the reply to the ping sent before", m)
	}
	expectDisconnect(t, c, "too_large", websocket.CloseMessageTooBig)

	// Other connections are not affected.
	quiet(t, h.Dial(t), pingCmd(4))
}

func TestMaxConnections(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.MaxConnections = 2 })
	a := h.Dial(t)
	h.Dial(t)

	third := hubtest.DialURL(t, h.URL)
	expectDisconnect(t, third, "policy", websocket.CloseTryAgainLater)

	a.Conn.Close()
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := connections(t, h); n != 1 {
			return fmt.Errorf("connections = %d, want 1", n)
		}
		return nil
	})
	quiet(t, h.Dial(t), pingCmd(1)) // a freed place is taken again
}

func TestUpgrade(t *testing.T) {
	h := hubtest.Start(t, nil)
	tests := []struct {
		name       string
		origin     string
		wantStatus int    // 0: the upgrade succeeds
		wantCode   string // of the JSON error
	}{
		{"no origin", "", 0, ""},
		{"same origin", "http://" + h.Addr, 0, ""},
		{"other origin", "http://evil.example", http.StatusForbidden, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			ws, resp, err := websocket.DefaultDialer.Dial(h.URL, hdr)
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				ws.Close()
				return
			}
			if err == nil {
				ws.Close()
				t.Fatal("dial succeeded")
			}
			if resp == nil {
				t.Fatalf("dial: %v, want an HTTP answer", err)
			}
			var body struct{ Error struct{ Code string } }
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || body.Error.Code != tc.wantCode {
				t.Fatalf("dial: %d with code %q, want %d with code %q", resp.StatusCode, body.Error.Code, tc.wantStatus, tc.wantCode)
			}
		})
	}

	t.Run("plain GET", func(t *testing.T) {
		status, _, body := apiDo(t, newAPIRequest(t, h, "GET", "/ws", ""))
		expectAPIError(t, status, body, http.StatusBadRequest, "bad_request", "websocket")
	})

	// RFC 6455 section 4.4: another version gets 426 and the version the
	// hub speaks.
	t.Run("version 8", func(t *testing.T) {
		req := newAPIRequest(t, h, "GET", "/ws", "")
		req.Header.Del("Authorization") // a bearer here is a client token
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "8")
		status, header, body := apiDo(t, req)
		expectAPIError(t, status, body, http.StatusUpgradeRequired, "bad_request", "unsupported version")
		if v := header.Get("Sec-WebSocket-Version"); v != "13" {
			t.Fatalf("Sec-WebSocket-Version = %q, want 13", v)
		}
	})
}

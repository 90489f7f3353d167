package hub_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hubtest"
)

func subscribeCmd(id int, channel string) map[string]any {
	return map[string]any{"id": id, "op": "subscribe", "channel": channel}
}

func unsubscribeCmd(id int, channel string) map[string]any {
	return map[string]any{"id": id, "op": "unsubscribe", "channel": channel}
}

func publishCmd(id int, channel string, data any) map[string]any {
	return map[string]any{"id": id, "op": "publish", "channel": channel, "data": data}
}

func pingCmd(id int) map[string]any { return map[string]any{"id": id, "op": "ping"} }

// result returns the result of a reply and fails the test on anything else.
func result(t *testing.T, reply map[string]any) map[string]any {
	t.Helper()
	res, ok := reply["result"].(map[string]any)
	if !ok {
		t.Fatalf("reply = %.300v, want a result", reply)
	}
	return res
}

// quiet sends cmd and returns its result; a push read before the reply
// fails the test.
func quiet(t *testing.T, c *hubtest.Client, cmd map[string]any) map[string]any {
	t.Helper()
	reply, skipped := c.Call(cmd)
	if len(skipped) > 0 {
		t.Fatalf("%v: read %.300v before the reply, want nothing", cmd, skipped)
	}
	return result(t, reply)
}

// presenceCmd asks for channel's presence over c.
func presenceCmd(t *testing.T, c *hubtest.Client, id int, channel string) []map[string]any {
	t.Helper()
	res := quiet(t, c, map[string]any{"id": id, "op": "presence", "channel": channel})
	list, ok := res["clients"].([]any)
	if !ok {
		t.Fatalf("presence result = %v, want a clients array", res)
	}
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

// presenceCount asks the API how many clients channel has.
func presenceCount(t *testing.T, h *hubtest.Hub, channel string) int {
	t.Helper()
	status, m := h.API(t, "GET", "/api/presence?channel="+channel, nil)
	list, ok := m["clients"].([]any)
	if status != http.StatusOK || !ok {
		t.Fatalf("GET /api/presence: %d %v", status, m)
	}
	return len(list)
}

// connections asks the API how many connections the hub has.
func connections(t *testing.T, h *hubtest.Hub) int {
	t.Helper()
	status, m := h.API(t, "GET", "/api/info", nil)
	n, ok := m["connections"].(float64)
	if status != http.StatusOK || !ok {
		t.Fatalf("GET /api/info: %d %v", status, m)
	}
	return int(n)
}

// serverObject is any server object, for exact decoding.
type serverObject struct {
	ID      *int64          `json:"id"`
	Push    string          `json:"push"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	From    *string         `json:"from"`
	Data    json.RawMessage `json:"data"`
	Code    string          `json:"code"`
}

// readMessage reads the next object from c, which must be a message push.
func readMessage(t *testing.T, c *hubtest.Client) serverObject {
	t.Helper()
	raw, err := c.ReadRaw()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m serverObject
	if err := json.Unmarshal(raw, &m); err != nil || m.Push != "message" || m.From == nil {
		t.Fatalf("got %.300s, want a message push", raw)
	}
	return m
}

// sameJSON reports whether a and b are the same JSON value, numbers
// compared by their digits.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

// expectDisconnect reads a disconnect push with code, then the close frame
// with status.
func expectDisconnect(t *testing.T, c *hubtest.Client, code string, status int) {
	t.Helper()
	m := c.Read()
	if m["push"] != "disconnect" || m["code"] != code || m["reason"] == "" || m["reason"] == nil {
		t.Fatalf("got %v, want a disconnect push with code %s and a reason", m, code)
	}
	_, err := c.ReadRaw()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != status {
		t.Fatalf("read after the disconnect push: %v, want close %d", err, status)
	}
}

// padded returns prefix + x... + suffix, n bytes long.
func padded(prefix, suffix string, n int) string {
	return prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pump reads a client's objects in a goroutine until its connection ends:
// objs gets each object and is closed at the end, done then gets the read
// error. Nothing else may read the client meanwhile.
type pump struct {
	objs chan map[string]any
	done chan error
}

func startPump(t *testing.T, c *hubtest.Client) *pump {
	p := &pump{objs: make(chan map[string]any, 1024), done: make(chan error, 1)}
	go func() {
		defer close(p.objs)
		for {
			raw, err := c.ReadRaw()
			if err != nil {
				p.done <- err
				return
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				p.done <- fmt.Errorf("server object is not JSON: %q", raw)
				return
			}
			p.objs <- m
		}
	}()
	t.Cleanup(func() {
		c.Conn.Close()
		for range p.objs {
		}
	})
	return p
}

// next returns the pump's next object.
func (p *pump) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-p.objs:
		if !ok {
			t.Fatalf("connection ended: %v", <-p.done)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no object within 10s")
		return nil
	}
}

// stacks returns every goroutine's stack.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

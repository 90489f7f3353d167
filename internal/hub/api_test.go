package hub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hubtest"
)

// endpoints are the API calls with a valid request each.
var endpoints = []struct {
	method, path, body string
}{
	{"POST", "/api/publish", `{"channel":"room","data":1}`},
	{"POST", "/api/broadcast", `{"channels":["room","b"],"data":1}`},
	{"POST", "/api/send", `{"to":"anon-x","data":1}`},
	{"POST", "/api/disconnect", `{"user":"anon-x"}`},
	{"GET", "/api/presence?channel=room", ""},
	{"GET", "/api/channels", ""},
	{"GET", "/api/info", ""},
}

func TestAPIAuth(t *testing.T) {
	h := hubtest.Start(t, nil)
	sub := h.Dial(t)
	quiet(t, sub, subscribeCmd(1, "room"))

	refused := []struct {
		name, auth string
	}{
		{"no header", ""},
		{"wrong key", "Bearer wrong"},
		{"prefix of the key", "Bearer test"},
		{"key and more", "Bearer test-key2"},
		{"two spaces", "Bearer  test-key"},
		{"no scheme", "test-key"},
		{"basic", "Basic dGVzdC1rZXk6"},
		{"empty bearer", "Bearer "},
	}
	for _, tc := range refused {
		for _, e := range append(endpoints, struct{ method, path, body string }{"GET", "/api/nope", ""}) {
			t.Run(tc.name+" "+e.method+" "+e.path, func(t *testing.T) {
				req := newAPIRequest(t, h, e.method, e.path, e.body)
				setAuth(req, tc.auth)
				status, _, body := apiDo(t, req)
				expectAPIError(t, status, body, http.StatusUnauthorized, "unauthorized", "Authorization")
			})
		}
	}
	// None of the refused calls published or disconnected anything.
	quiet(t, sub, pingCmd(2))

	for _, auth := range []string{"Bearer test-key", "bearer test-key", "BEARER test-key"} {
		t.Run("accepted "+auth, func(t *testing.T) {
			req := newAPIRequest(t, h, "GET", "/api/info", "")
			setAuth(req, auth)
			if status, _, body := apiDo(t, req); status != http.StatusOK {
				t.Fatalf("status %d %v, want 200", status, body)
			}
		})
	}
}

func TestAPIProbes(t *testing.T) {
	h := hubtest.Start(t, nil)
	tests := []struct {
		path, auth, want string
	}{
		{"/healthz", "", `{"status":"ok"}`},
		{"/readyz", "", `{"status":"ready"}`},
		{"/healthz", "Bearer wrong", `{"status":"ok"}`},
		{"/readyz", "Bearer wrong", `{"status":"ready"}`},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.auth, func(t *testing.T) {
			req := newAPIRequest(t, h, "GET", tc.path, "")
			setAuth(req, tc.auth)
			status, _, body := apiDo(t, req)
			if want := decodeObject(t, tc.want); status != http.StatusOK || !reflect.DeepEqual(body, want) {
				t.Fatalf("GET %s = %d %v, want 200 %v", tc.path, status, body, want)
			}
		})
	}
}

func TestAPIMethods(t *testing.T) {
	h := hubtest.Start(t, nil)
	for _, e := range endpoints {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			if method == e.method {
				continue
			}
			t.Run(method+" "+e.path, func(t *testing.T) {
				status, hdr, body := apiDo(t, newAPIRequest(t, h, method, e.path, e.body))
				expectAPIError(t, status, body, http.StatusMethodNotAllowed, "method_not_allowed", e.method)
				if got := hdr.Get("Allow"); got != e.method {
					t.Fatalf("Allow = %q, want %q", got, e.method)
				}
			})
		}
	}
}

func TestAPINotFound(t *testing.T) {
	h := hubtest.Start(t, nil)
	for _, path := range []string{"/api/nope", "/api/", "/api/publish/more", "/api/info/x"} {
		t.Run(path, func(t *testing.T) {
			status, _, body := apiDo(t, newAPIRequest(t, h, "GET", path, ""))
			expectAPIError(t, status, body, http.StatusNotFound, "not_found", path)
		})
	}
}

func TestAPIPublish(t *testing.T) {
	h := hubtest.Start(t, nil)
	sub := h.Dial(t)
	epoch := quiet(t, sub, subscribeCmd(1, "room"))["epoch"]

	tests := []struct {
		name, body, wantData string
	}{
		{"object", `{"channel":"room","data":{"x":[1,2]}}`, `{"x":[1,2]}`},
		{"null", `{"channel":"room","data":null}`, `null`},
		{"pretty-printed body", "{\n  \"channel\": \"room\",\n  \"data\": {\n    \"a\": 1\n  }\n}\n", `{"a":1}`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, res := h.API(t, "POST", "/api/publish", tc.body)
			want := map[string]any{"offset": float64(i + 1), "epoch": epoch}
			if status != http.StatusOK || !reflect.DeepEqual(res, want) {
				t.Fatalf("POST /api/publish = %d %v, want 200 %v", status, res, want)
			}
			m := readMessage(t, sub)
			if m.Channel != "room" || m.Offset != uint64(i+1) || *m.From != "" || string(m.Data) != tc.wantData {
				t.Fatalf("subscriber got %+v from %q data %s, want offset %d from \"\" data %s", m, *m.From, m.Data, i+1, tc.wantData)
			}
		})
	}
}

func TestAPIBroadcast(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)
	quiet(t, a, subscribeCmd(1, "a"))
	quiet(t, b, subscribeCmd(1, "b"))
	h.API(t, "POST", "/api/publish", `{"channel":"a","data":0}`)
	readMessage(t, a)

	status, res := h.API(t, "POST", "/api/broadcast", `{"channels":["a","b","nobody"],"data":"hi"}`)
	want := map[string]any{"offsets": map[string]any{"a": 2.0, "b": 1.0, "nobody": 1.0}}
	if status != http.StatusOK || !reflect.DeepEqual(res, want) {
		t.Fatalf("POST /api/broadcast = %d %v, want 200 %v", status, res, want)
	}
	for _, got := range []struct {
		c       *hubtest.Client
		channel string
		offset  uint64
	}{{a, "a", 2}, {b, "b", 1}} {
		m := readMessage(t, got.c)
		if m.Channel != got.channel || m.Offset != got.offset || *m.From != "" || string(m.Data) != `"hi"` {
			t.Fatalf("subscriber of %s got %+v, want offset %d from \"\" data \"hi\"", got.channel, m, got.offset)
		}
	}
}

func TestAPISend(t *testing.T) {
	h := hubtest.Start(t, nil)
	c := h.Dial(t)
	tests := []struct {
		name          string
		to            string
		wantDelivered float64
	}{
		{"connected user", c.User(), 1},
		{"absent user", "anon-nobody", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, res := h.API(t, "POST", "/api/send", map[string]any{"to": tc.to, "data": map[string]any{"k": "v"}})
			if want := map[string]any{"delivered": tc.wantDelivered}; status != http.StatusOK || !reflect.DeepEqual(res, want) {
				t.Fatalf("POST /api/send = %d %v, want 200 %v", status, res, want)
			}
			if tc.wantDelivered == 0 {
				quiet(t, c, pingCmd(1))
				return
			}
			want := map[string]any{"push": "direct", "from": "", "data": map[string]any{"k": "v"}}
			if got := c.Expect("direct"); !reflect.DeepEqual(got, want) {
				t.Fatalf("push = %v, want %v", got, want)
			}
		})
	}
}

func TestAPIPresence(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)
	quiet(t, a, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(1, "room"))
	quiet(t, b, pingCmd(2)) // b's join is done

	status, res := h.API(t, "GET", "/api/presence?channel=room", nil)
	want := []any{
		map[string]any{"client": a.ID(), "user": a.User()},
		map[string]any{"client": b.ID(), "user": b.User()},
	}
	if a.ID() > b.ID() {
		want[0], want[1] = want[1], want[0]
	}
	if status != http.StatusOK || !reflect.DeepEqual(res, map[string]any{"clients": want}) {
		t.Fatalf("GET /api/presence = %d %v, want 200 clients %v", status, res, want)
	}

	status, res = h.API(t, "GET", "/api/presence?channel=empty", nil)
	if status != http.StatusOK || !reflect.DeepEqual(res, map[string]any{"clients": []any{}}) {
		t.Fatalf("presence of an empty channel = %d %v, want 200 {\"clients\":[]}", status, res)
	}
}

func TestAPIChannels(t *testing.T) {
	h := hubtest.Start(t, nil)
	status, res := h.API(t, "GET", "/api/channels", nil)
	if status != http.StatusOK || !reflect.DeepEqual(res, map[string]any{"channels": []any{}}) {
		t.Fatalf("GET /api/channels with none = %d %v, want 200 {\"channels\":[]}", status, res)
	}

	a, b := h.Dial(t), h.Dial(t)
	quiet(t, a, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(2, "lobby"))
	for range 3 {
		h.API(t, "POST", "/api/publish", `{"channel":"room","data":1}`)
	}
	h.API(t, "POST", "/api/publish", `{"channel":"no-subscribers","data":1}`)

	status, res = h.API(t, "GET", "/api/channels", nil)
	want := map[string]any{"channels": []any{
		map[string]any{"channel": "lobby", "subscribers": 1.0, "offset": 0.0},
		map[string]any{"channel": "room", "subscribers": 2.0, "offset": 3.0},
	}}
	if status != http.StatusOK || !reflect.DeepEqual(res, want) {
		t.Fatalf("GET /api/channels = %d %v, want 200 %v", status, res, want)
	}
}

func TestAPIDisconnect(t *testing.T) {
	h := hubtest.Start(t, nil)
	victim, other := h.Dial(t), h.Dial(t)
	quiet(t, victim, subscribeCmd(1, "room"))
	quiet(t, other, subscribeCmd(1, "room"))
	victim.Expect("join")
	tests := []struct {
		name string
		user string
		want float64
	}{
		{"connected user", victim.User(), 1},
		{"absent user", "anon-nobody", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, res := h.API(t, "POST", "/api/disconnect", map[string]any{"user": tc.user})
			if want := map[string]any{"disconnected": tc.want}; status != http.StatusOK || !reflect.DeepEqual(res, want) {
				t.Fatalf("POST /api/disconnect = %d %v, want 200 %v", status, res, want)
			}
		})
	}
	expectDisconnect(t, victim, "policy", websocket.ClosePolicyViolation)
	if m := other.Expect("leave"); m["client"] != victim.ID() {
		t.Fatalf("leave push = %v, want one about the disconnected client", m)
	}
	if n := connections(t, h); n != 1 {
		t.Fatalf("connections = %d, want 1", n)
	}
}

func TestAPIInfo(t *testing.T) {
	h := hubtest.Start(t, nil)
	a, b := h.Dial(t), h.Dial(t)
	quiet(t, a, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(1, "room"))
	quiet(t, b, subscribeCmd(2, "lobby"))

	status, res := h.API(t, "GET", "/api/info", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/info = %d %v", status, res)
	}
	want := map[string]any{"node": "test-node", "version": "test", "connections": 2.0, "channels": 2.0, "subscriptions": 3.0}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("%s = %v, want %v", k, res[k], v)
		}
	}
	for _, k := range []string{"uptime_seconds", "goroutines", "heap_bytes", "sys_bytes"} {
		if n, ok := res[k].(float64); !ok || n < 0 || n == 0 && k != "uptime_seconds" {
			t.Errorf("%s = %v, want a positive number", k, res[k])
		}
	}
}

func TestAPIValidation(t *testing.T) {
	h := hubtest.Start(t, nil)
	big := `{"channel":"room","data":"` + strings.Repeat("x", 64<<10) + `"}`
	tests := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string // default application/json
		wantStatus  int
		wantCode    string
		wantMsg     string // in the error message
	}{
		{"malformed JSON", "POST", "/api/publish", `{"channel":}`, "", 400, "bad_request", "malformed JSON"},
		{"truncated JSON", "POST", "/api/publish", `{"channel":"room"`, "", 400, "bad_request", "body"},
		{"empty body", "POST", "/api/publish", ``, "", 400, "bad_request", "body: empty"},
		{"array body", "POST", "/api/publish", `[{"channel":"room","data":1}]`, "", 400, "bad_request", "want a JSON object"},
		{"unknown field", "POST", "/api/publish", `{"channel":"room","data":1,"extra":true}`, "", 400, "bad_request", `"extra"`},
		{"numeric channel", "POST", "/api/publish", `{"channel":5,"data":1}`, "", 400, "bad_request", "channel: want a string"},
		{"missing channel", "POST", "/api/publish", `{"data":1}`, "", 400, "bad_request", "channel: missing"},
		{"bad channel name", "POST", "/api/publish", `{"channel":"a b","data":1}`, "", 400, "bad_request", "channel: invalid byte"},
		{"256-byte channel", "POST", "/api/publish", `{"channel":"` + strings.Repeat("c", 256) + `","data":1}`, "", 400, "bad_request", "channel: 256 bytes"},
		{"missing data", "POST", "/api/publish", `{"channel":"room"}`, "", 400, "bad_request", "data: missing"},
		{"trailing garbage", "POST", "/api/publish", `{"channel":"room","data":1} x`, "", 400, "bad_request", "found more after it"},
		{"two objects", "POST", "/api/publish", `{"channel":"room","data":1}{"channel":"room","data":2}`, "", 400, "bad_request", "found more after it"},
		{"trailing whitespace is fine", "POST", "/api/publish", "{\"channel\":\"room\",\"data\":1}\n\t ", "", 200, "", ""},
		{"no content type is fine", "POST", "/api/publish", `{"channel":"room","data":1}`, "-", 200, "", ""},
		{"curl's form type is fine", "POST", "/api/publish", `{"channel":"room","data":1}`, "application/x-www-form-urlencoded", 200, "", ""},
		{"other content type", "POST", "/api/publish", `{"channel":"room","data":1}`, "text/html", 400, "bad_request", "Content-Type"},
		{"body too large", "POST", "/api/publish", big, "", 413, "too_large", "max_message_size"},
		{"channels a string", "POST", "/api/broadcast", `{"channels":"a","data":1}`, "", 400, "bad_request", "channels: want an array of strings"},
		{"channels of numbers", "POST", "/api/broadcast", `{"channels":[1],"data":1}`, "", 400, "bad_request", "channels"},
		{"no channels", "POST", "/api/broadcast", `{"data":1}`, "", 400, "bad_request", "channels: want a non-empty array"},
		{"empty channels", "POST", "/api/broadcast", `{"channels":[],"data":1}`, "", 400, "bad_request", "channels: want a non-empty array"},
		{"duplicate channel", "POST", "/api/broadcast", `{"channels":["a","b","a"],"data":1}`, "", 400, "bad_request", `channels[2]: duplicate channel "a"`},
		{"bad channel in list", "POST", "/api/broadcast", `{"channels":["a","a b"],"data":1}`, "", 400, "bad_request", "channels[1]: invalid byte"},
		{"broadcast without data", "POST", "/api/broadcast", `{"channels":["a"]}`, "", 400, "bad_request", "data: missing"},
		{"send without to", "POST", "/api/send", `{"data":1}`, "", 400, "bad_request", "to: missing"},
		{"numeric to", "POST", "/api/send", `{"to":5,"data":1}`, "", 400, "bad_request", "to: want a string"},
		{"send without data", "POST", "/api/send", `{"to":"anon-x"}`, "", 400, "bad_request", "data: missing"},
		{"disconnect without user", "POST", "/api/disconnect", `{}`, "", 400, "bad_request", "user: missing"},
		{"boolean user", "POST", "/api/disconnect", `{"user":true}`, "", 400, "bad_request", "user: want a string"},
		{"disconnect unknown field", "POST", "/api/disconnect", `{"user":"u","all":true}`, "", 400, "bad_request", `"all"`},
		{"presence without channel", "GET", "/api/presence", ``, "", 400, "bad_request", "channel: missing"},
		{"presence of a bad channel", "GET", "/api/presence?channel=a%20b", ``, "", 400, "bad_request", "channel: invalid byte"},
		{"presence with an unknown parameter", "GET", "/api/presence?channel=room&limit=5", ``, "", 400, "bad_request", `"limit"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newAPIRequest(t, h, tc.method, tc.path, tc.body)
			switch tc.contentType {
			case "":
			case "-":
				req.Header.Del("Content-Type")
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			status, _, body := apiDo(t, req)
			if tc.wantStatus == http.StatusOK {
				if status != http.StatusOK {
					t.Fatalf("status %d %v, want 200", status, body)
				}
				return
			}
			expectAPIError(t, status, body, tc.wantStatus, tc.wantCode, tc.wantMsg)
		})
	}
}

// newAPIRequest returns a request with the test key, and a JSON
// Content-Type when body is not empty.
func newAPIRequest(t *testing.T, h *hubtest.Hub, method, path, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, h.HTTPURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+hubtest.APIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// setAuth sets the Authorization header, or removes it when auth is "".
func setAuth(req *http.Request, auth string) {
	if auth == "" {
		req.Header.Del("Authorization")
		return
	}
	req.Header.Set("Authorization", auth)
}

// apiDo sends req and returns the status, the headers and the body, which
// must be a JSON object served as application/json.
func apiDo(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: status %d, Content-Type %q, body %q; want application/json", req.Method, req.URL.Path, resp.StatusCode, ct, raw)
	}
	return resp.StatusCode, resp.Header, decodeObject(t, string(raw))
}

func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		t.Fatalf("body %q is not a JSON object: %v", s, err)
	}
	return m
}

// expectAPIError checks an error answer: status, the body
// {"error":{"code":…,"message":…}} and a message that contains msg.
func expectAPIError(t *testing.T, status int, body map[string]any, wantStatus int, code, msg string) {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if status != wantStatus || !ok || len(body) != 1 || len(e) != 2 || e["code"] != code {
		t.Fatalf("got %d %v, want %d with {\"error\":{\"code\":%q,\"message\":…}}", status, body, wantStatus, code)
	}
	if m, _ := e["message"].(string); !strings.Contains(m, msg) {
		t.Fatalf("message %q does not contain %q", m, msg)
	}
}

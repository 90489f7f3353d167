package hub_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/auth"
	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
)

const testSecret = "hub-test-secret-of-32-bytes-or-more"

func token(t *testing.T, c auth.Claims, ttl time.Duration) string {
	t.Helper()
	s, err := auth.Sign([]byte(testSecret), c, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialStatus dials with header and returns the HTTP status and error code
// of a refused upgrade, or 0 and the client.
func dialStatus(t *testing.T, url string, header http.Header) (int, string, *websocket.Conn) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return 0, "", ws
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code + ": " + body.Error.Message, nil
}

func TestAuthUpgrade(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) {
		c.JWTSecret = testSecret
		c.AllowAnonymous = false
	})
	good := token(t, auth.Claims{User: "alice"}, time.Hour)
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	wrongAlg, _ := hs512.SignedString([]byte(testSecret))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice"})
	noneAlg, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherKey, _ := auth.Sign([]byte("another-secret-of-32-bytes-at-least"), auth.Claims{User: "alice"}, time.Hour)
	expired := token(t, auth.Claims{User: "alice", Expires: time.Now().Add(-time.Minute)}, 0)
	tests := []struct {
		name     string
		query    string
		header   string
		wantCode int    // 0: upgraded
		wantMsg  string // in the error
	}{
		{"query token", "?token=" + good, "", 0, ""},
		{"header token", "", "Bearer " + good, 0, ""},
		{"missing", "", "", 401, "a token is required"},
		{"bad signature", "?token=" + otherKey, "", 401, "unauthorized"},
		{"tampered", "?token=" + good[:len(good)-2] + "xx", "", 401, "unauthorized"},
		{"wrong algorithm", "?token=" + wrongAlg, "", 401, "HS512"},
		{"alg none", "?token=" + noneAlg, "", 401, "unauthorized"},
		{"expired", "?token=" + expired, "", 401, "expired"},
		{"garbage", "?token=abc", "", 401, "unauthorized"},
		{"two different tokens", "?token=" + good, "Bearer " + otherKey, 401, "different tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.header != "" {
				hdr.Set("Authorization", tc.header)
			}
			status, msg, ws := dialStatus(t, h.URL+tc.query, hdr)
			if status != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("dial = %d %q, want %d with %q", status, msg, tc.wantCode, tc.wantMsg)
			}
			if ws != nil {
				var welcome map[string]any
				if err := ws.ReadJSON(&welcome); err != nil || welcome["user"] != "alice" {
					t.Fatalf("welcome = %v, %v; want user alice", welcome, err)
				}
			}
		})
	}
}

// dialToken connects with a token for claims and reads the welcome.
func dialToken(t *testing.T, h *hubtest.Hub, c auth.Claims, ttl time.Duration) *hubtest.Client {
	t.Helper()
	cl := hubtest.DialURL(t, h.URL+"?token="+token(t, c, ttl))
	cl.Welcome = cl.Read()
	if cl.Welcome["user"] != c.User {
		t.Fatalf("welcome = %v, want user %s", cl.Welcome, c.User)
	}
	return cl
}

func errorCode(t *testing.T, reply map[string]any) string {
	t.Helper()
	e, ok := reply["error"].(map[string]any)
	if !ok {
		return ""
	}
	return e["code"].(string)
}

func TestAuthChannels(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JWTSecret = testSecret; c.JoinLeave = false })
	alice := dialToken(t, h, auth.Claims{User: "alice", Channels: []string{"room", "chat:*", "dm#*"}}, time.Hour)
	bob := dialToken(t, h, auth.Claims{User: "bob"}, time.Hour)
	carol := dialToken(t, h, auth.Claims{User: "carol"}, time.Hour)
	anon := h.Dial(t)
	tests := []struct {
		name    string
		c       *hubtest.Client
		cmd     map[string]any
		want    string // "" success, else the error code
		comment string
	}{
		{"claimed channel", alice, subscribeCmd(1, "room"), "", ""},
		{"claimed pattern", alice, subscribeCmd(2, "chat:x"), "not_found", "namespace chat is not configured"},
		{"not in the claim", alice, subscribeCmd(3, "other"), "forbidden", ""},
		{"publish not in the claim", alice, publishCmd(4, "other", 1), "forbidden", ""},
		{"no claim: every channel", bob, subscribeCmd(5, "other"), "", ""},
		{"private, listed", alice, subscribeCmd(6, "dm#alice,bob"), "", ""},
		{"private, listed too", bob, publishCmd(7, "dm#alice,bob", "hi"), "", ""},
		{"private, not listed", carol, subscribeCmd(8, "dm#alice,bob"), "forbidden", ""},
		{"private, anonymous", anon, subscribeCmd(9, "dm#alice,bob"), "forbidden", ""},
		{"private history, not listed", carol, map[string]any{"id": 10, "op": "history", "channel": "dm#alice,bob"}, "forbidden", ""},
		{"private presence, not listed", carol, map[string]any{"id": 11, "op": "presence", "channel": "dm#alice,bob"}, "forbidden", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply, _ := tc.c.Call(tc.cmd)
			if got := errorCode(t, reply); got != tc.want {
				t.Fatalf("%v = %v, want %q %s", tc.cmd, reply, tc.want, tc.comment)
			}
		})
	}
	// Alice got bob's private message, in order.
	if m := readMessage(t, alice); m.Channel != "dm#alice,bob" {
		t.Fatalf("alice got %+v, want the private message", m)
	}
}

func TestAuthRefreshAndExpiry(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JWTSecret = testSecret })
	// Expired a moment ago, within the verifier's leeway: valid at the
	// upgrade, due to expire within about a second.
	soon := auth.Claims{User: "alice", Expires: time.Now().Add(-auth.Leeway + time.Second)}
	c := dialToken(t, h, soon, 0)
	reply, _ := c.Call(map[string]any{"id": 1, "op": "refresh", "token": token(t, auth.Claims{User: "mallory"}, time.Hour)})
	if errorCode(t, reply) != "forbidden" {
		t.Fatalf("refresh with another sub = %v, want forbidden", reply)
	}
	reply, _ = c.Call(map[string]any{"id": 2, "op": "refresh", "token": "bad"})
	if errorCode(t, reply) != "bad_request" {
		t.Fatalf("refresh with a bad token = %v, want bad_request", reply)
	}
	// Not refreshed: token_expired, close 1008.
	m := c.Read()
	if m["push"] != "disconnect" || m["code"] != "token_expired" {
		t.Fatalf("got %v, want the token_expired disconnect", m)
	}
	_, err := c.ReadRaw()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("after token_expired: %v, want close 1008", err)
	}

	// Refreshed in time: the connection stays.
	c = dialToken(t, h, auth.Claims{User: "alice", Expires: time.Now().Add(-auth.Leeway + time.Second)}, 0)
	res := quiet(t, c, map[string]any{"id": 3, "op": "refresh", "token": token(t, auth.Claims{User: "alice"}, time.Hour)})
	if exp, _ := res["expires"].(float64); exp < float64(time.Now().Add(50*time.Minute).Unix()) {
		t.Fatalf("refresh = %v, want the new expiry", res)
	}
	time.Sleep(1500 * time.Millisecond) // past the old token's expiry: nothing to wait for but time
	quiet(t, c, pingCmd(4))

	// Anonymous connections cannot refresh.
	anon := h.Dial(t)
	reply, _ = anon.Call(map[string]any{"id": 5, "op": "refresh", "token": token(t, auth.Claims{User: "alice"}, time.Hour)})
	if errorCode(t, reply) != "forbidden" {
		t.Fatalf("anonymous refresh = %v, want forbidden", reply)
	}
}

func TestOrigins(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.AllowedOrigins = []string{"http://localhost:*", "https://*.example.com"} })
	tests := []struct {
		origin string
		want   int
	}{
		{"", 0},
		{"http://" + h.Addr, 0},
		{"http://localhost:3000", 0},
		{"https://app.example.com", 0},
		{"http://app.example.com", 403},
		{"https://evil.com", 403},
		{"http://localhost.evil.com:3000", 403},
		{"null", 403},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			status, msg, _ := dialStatus(t, h.URL, hdr)
			if status != tc.want {
				t.Fatalf("origin %q: %d %q, want %d", tc.origin, status, msg, tc.want)
			}
			if status == 403 && !strings.Contains(msg, "hub.allowed_origins") {
				t.Fatalf("refusal %q does not name hub.allowed_origins", msg)
			}
		})
	}
}

func TestCommandRate(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.CommandRate, c.CommandBurst = 5, 5 })
	c := h.Dial(t)
	var frame strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&frame, `{"id":%d,"op":"ping"}`+"\n", i)
	}
	c.Send(frame.String())
	ok, refused := 0, 0
	for range 20 {
		switch m := c.Read(); {
		case m["result"] != nil:
			ok++
		case errorCode(t, m) == "too_many_requests":
			refused++
		default:
			t.Fatalf("got %v", m)
		}
	}
	if ok < 5 || refused == 0 || ok+refused != 20 {
		t.Fatalf("%d answered, %d refused; want the burst of 5 (or a little more) answered and the rest refused", ok, refused)
	}
}

func TestNamespaces(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) {
		c.JWTSecret = testSecret
		news := c.NewNamespace("news")
		news.Publish = hub.PublishAPI
		chat := c.NewNamespace("chat")
		chat.Publish = hub.PublishSubscribers
		priv := c.NewNamespace("priv")
		priv.AllowAnonymous = false
		quiet := c.NewNamespace("quiet")
		quiet.Presence = false
		c.Namespaces = append(c.Namespaces, news, chat, priv, quiet)
	})
	anon := h.Dial(t)
	alice := dialToken(t, h, auth.Claims{User: "alice"}, time.Hour)
	tests := []struct {
		name string
		c    *hubtest.Client
		cmd  map[string]any
		want string
	}{
		{"unknown namespace", anon, subscribeCmd(1, "nope:x"), "not_found"},
		{"unknown namespace publish", anon, publishCmd(2, "nope:x", 1), "not_found"},
		{"api-only publish", anon, publishCmd(3, "news:a", 1), "forbidden"},
		{"api-only subscribe", anon, subscribeCmd(4, "news:a"), ""},
		{"subscribers publish before subscribing", anon, publishCmd(5, "chat:a", 1), "forbidden"},
		{"subscribers subscribe", anon, subscribeCmd(6, "chat:a"), ""},
		{"subscribers publish after subscribing", anon, publishCmd(7, "chat:a", 1), ""},
		{"anonymous in a token namespace", anon, subscribeCmd(8, "priv:a"), "forbidden"},
		{"token in a token namespace", alice, subscribeCmd(9, "priv:a"), ""},
		{"presence off", anon, map[string]any{"id": 10, "op": "presence", "channel": "quiet:a"}, "forbidden"},
		{"default namespace", anon, publishCmd(11, "plain", 1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply, _ := tc.c.Call(tc.cmd)
			if got := errorCode(t, reply); got != tc.want {
				t.Fatalf("%v = %v, want %q", tc.cmd, reply, tc.want)
			}
		})
	}
	if status, m := h.API(t, "POST", "/api/publish", map[string]any{"channel": "news:a", "data": 1}); status != http.StatusOK {
		t.Fatalf("API publish to news:a = %d %v", status, m)
	}
	if status, _ := h.API(t, "POST", "/api/publish", map[string]any{"channel": "nope:a", "data": 1}); status != http.StatusNotFound {
		t.Fatalf("API publish to nope:a = %d, want 404", status)
	}
}

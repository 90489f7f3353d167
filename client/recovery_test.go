package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/client"
	"github.com/netkit/netkit/internal/protocol"
)

// scriptedHub plays one scripted connection after another over real
// WebSockets on 127.0.0.1, for what no correct hub does (duplicates) or
// today's hub cannot do yet (recovered:true, tokens). The scripts use the
// hub's own encoders.
type scriptedHub struct {
	t       *testing.T
	scripts []func(*scriptConn)
	refuse  bool // after the scripts, answer 401 (else 503)
	n       atomic.Int32
	srv     *httptest.Server
}

type scriptConn struct {
	t     *testing.T
	ws    *websocket.Conn
	token string // from Authorization: Bearer
}

func startScripted(t *testing.T, scripts ...func(*scriptConn)) *scriptedHub {
	h := &scriptedHub{t: t, scripts: scripts}
	up := websocket.Upgrader{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(h.n.Add(1)) - 1
		if i >= len(h.scripts) && h.refuse {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"token expired"}}`)
			return
		}
		if i >= len(h.scripts) {
			http.Error(w, "no more scripts", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		sc := &scriptConn{t: t, ws: ws, token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
		sc.send(protocol.AppendWelcome(nil, protocol.Welcome{Client: fmt.Sprint("c", i), User: "u", Node: "n", Version: "v"}))
		h.scripts[i](sc)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *scriptedHub) url() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws" }

func (sc *scriptConn) send(obj []byte) {
	sc.ws.WriteMessage(websocket.TextMessage, obj)
}

// read returns the next command, or the zero Command when the client has
// gone.
func (sc *scriptConn) read() (protocol.ClientCommand, bool) {
	sc.ws.SetReadDeadline(time.Now().Add(wait))
	_, b, err := sc.ws.ReadMessage()
	if err != nil {
		return protocol.ClientCommand{}, false
	}
	var cmd protocol.ClientCommand
	if err := json.Unmarshal(b, &cmd); err != nil {
		sc.t.Errorf("client sent %q: %v", b, err)
	}
	return cmd, true
}

// expectSubscribe reads a subscribe and checks its since.
func (sc *scriptConn) expectSubscribe(since *protocol.StreamPos) protocol.ClientCommand {
	cmd, ok := sc.read()
	if !ok || cmd.Op != protocol.OpSubscribe {
		sc.t.Errorf("got %+v, want a subscribe", cmd)
		return cmd
	}
	switch {
	case since == nil && cmd.Since != nil:
		sc.t.Errorf("subscribe since %+v, want none", *cmd.Since)
	case since != nil && (cmd.Since == nil || *cmd.Since != *since):
		sc.t.Errorf("subscribe since %+v, want %+v", cmd.Since, *since)
	}
	return cmd
}

func (sc *scriptConn) reply(cmd protocol.ClientCommand, result any) {
	sc.send(protocol.AppendReplyValue(nil, cmd.ID, true, result))
}

func (sc *scriptConn) messages(offsets ...uint64) {
	for _, o := range offsets {
		sc.send(protocol.AppendMessage(nil, "room", o, "u", json.RawMessage(fmt.Sprint(o))))
	}
}

// TestRecoveryNeverDuplicates: after a reconnect the client subscribes
// from the last message it delivered, reports recovered as the hub says,
// drops offsets it already delivered in the same epoch, and starts again
// in a new epoch.
func TestRecoveryNeverDuplicates(t *testing.T) {
	h := startScripted(t,
		func(sc *scriptConn) { // first connection: 1..3, then it drops
			cmd := sc.expectSubscribe(nil)
			sc.reply(cmd, map[string]any{"channel": "room", "offset": 0, "epoch": "E"})
			sc.messages(1, 2, 3)
			sc.read() // until the test's drop closes it
		},
		func(sc *scriptConn) { // recovers 4, 5, resending 2 and 3
			cmd := sc.expectSubscribe(&protocol.StreamPos{Offset: 3, Epoch: "E"})
			sc.reply(cmd, map[string]any{"channel": "room", "offset": 5, "epoch": "E", "recovered": true})
			sc.messages(2, 3, 4, 5, 6)
		},
		func(sc *scriptConn) { // restarted: new epoch, no recovered field
			cmd := sc.expectSubscribe(&protocol.StreamPos{Offset: 6, Epoch: "E"})
			sc.reply(cmd, map[string]any{"channel": "room", "offset": 0, "epoch": "F"})
			sc.messages(1)
			sc.read()
		},
	)
	ctx := testCtx(t)
	subscribed := make(chan client.Subscribed, 8)
	var d dropper
	c := dial(t, h.url(), client.WithNetDialer(d.dial))
	sub, err := c.Subscribe(ctx, "room", client.OnSubscribed(func(s client.Subscribed) { subscribed <- s }))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		m := next(t, sub)
		got = append(got, fmt.Sprintf("%s/%d", m.Epoch, m.Offset))
	}
	d.drop() // the second script ends by itself after 6
	for range 4 {
		m := next(t, sub)
		got = append(got, fmt.Sprintf("%s/%d", m.Epoch, m.Offset))
	}
	want := "E/1 E/2 E/3 E/4 E/5 E/6 F/1"
	if strings.Join(got, " ") != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
	var subs []string
	for range 3 {
		s := <-subscribed
		subs = append(subs, fmt.Sprintf("%s/%d resub=%v recovered=%v", s.Epoch, s.Offset, s.Resubscribe, s.Recovered))
	}
	wantSubs := []string{"E/0 resub=false recovered=false", "E/5 resub=true recovered=true", "F/0 resub=true recovered=false"}
	if strings.Join(subs, ", ") != strings.Join(wantSubs, ", ") {
		t.Fatalf("subscribed %v, want %v", subs, wantSubs)
	}
	if pos := sub.Position(); pos != (client.Position{Offset: 1, Epoch: "F"}) {
		t.Fatalf("Position() = %+v, want F/1", pos)
	}
}

// TestTokenRefreshOnReconnect: the refresh func gives the token of each
// reconnect, and a 401 at a reconnect stops the client.
func TestTokenRefreshOnReconnect(t *testing.T) {
	tokens := make(chan string, 4)
	h := startScripted(t,
		func(sc *scriptConn) { tokens <- sc.token }, // ends at once: a lost connection
		func(sc *scriptConn) { tokens <- sc.token },
	)
	h.refuse = true
	var n atomic.Int32
	c := dial(t, h.url(), client.WithToken("t0"), client.WithTokenRefresh(func(context.Context) (string, error) {
		return fmt.Sprint("t", n.Add(1)), nil
	}))
	for _, want := range []string{"t0", "t1"} {
		select {
		case got := <-tokens:
			if got != want {
				t.Fatalf("token %q, want %q", got, want)
			}
		case <-time.After(wait):
			t.Fatalf("no connection with token %q", want)
		}
	}
	// The third attempt gets 401.
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("client still reconnecting after a 401")
	}
	var e *client.Error
	if err := c.Err(); !errors.As(err, &e) || e.Code != client.CodeUnauthorized {
		t.Fatalf("Err() = %v, want unauthorized", err)
	}
}

// TestTokenRenewedBeforeExpiry: with a refresh func, the client sends the
// hub's refresh command with a new token before the current one expires.
func TestTokenRenewedBeforeExpiry(t *testing.T) {
	jwt := func(exp time.Time) string {
		payload := fmt.Sprintf(`{"sub":"u","exp":%d}`, exp.Unix())
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	refreshed := make(chan string, 1)
	h := startScripted(t, func(sc *scriptConn) {
		cmd, ok := sc.read()
		if !ok || cmd.Op != "refresh" {
			t.Errorf("got %+v, want a refresh", cmd)
			return
		}
		sc.reply(cmd, struct{}{})
		refreshed <- cmd.Token
		sc.read() // until the client closes
	})
	next := jwt(time.Now().Add(time.Hour))
	dial(t, h.url(), client.WithToken(jwt(time.Now().Add(2*time.Second))),
		client.WithTokenRefresh(func(context.Context) (string, error) { return next, nil }))
	select {
	case got := <-refreshed:
		if got != next {
			t.Fatalf("refresh with %q, want %q", got, next)
		}
	case <-time.After(wait):
		t.Fatal("no refresh before the token expired")
	}
}

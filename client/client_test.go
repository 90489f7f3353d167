package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/client"
	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

// wait bounds every wait for a message in these tests; a failure, never a
// timing assertion.
const wait = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// fastReconnect keeps reconnect waits short in tests.
var fastReconnect = client.WithReconnect(client.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond})

func dial(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(testCtx(t), url, append([]client.Option{fastReconnect}, opts...)...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next message of sub, failing the test after wait.
func next(t *testing.T, sub *client.Subscription) client.Message {
	t.Helper()
	select {
	case m, ok := <-sub.Messages():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return m
	case <-time.After(wait):
		t.Fatalf("no message within %s", wait)
	}
	return client.Message{}
}

func TestPublishSubscribe(t *testing.T) {
	h := hubtest.Start(t, nil)
	ctx := testCtx(t)
	c := dial(t, h.URL)
	sub, err := c.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data any
		want string
	}{
		{"object", map[string]int{"a": 1}, `{"a":1}`},
		{"string", "hi", `"hi"`},
		{"raw JSON is compacted", json.RawMessage(`[1, 2]`), `[1,2]`},
		{"null", nil, `null`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			off, err := c.Publish(ctx, "room", tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if off != uint64(i+1) {
				t.Errorf("offset = %d, want %d", off, i+1)
			}
			m := next(t, sub)
			if string(m.Data) != tc.want || m.Offset != off || m.Channel != "room" || m.From != c.User() || m.Epoch == "" {
				t.Errorf("message = %+v (data %s), want data %s at offset %d from %s", m, m.Data, tc.want, off, c.User())
			}
		})
	}
	if pos := sub.Position(); pos.Offset != uint64(len(tests)) {
		t.Errorf("Position() = %+v, want offset %d", pos, len(tests))
	}
}

func TestCallsAndErrors(t *testing.T) {
	h := hubtest.Start(t, nil)
	ctx := testCtx(t)
	directs := make(chan client.Direct, 1)
	a := dial(t, h.URL, client.OnDirect(func(d client.Direct) { directs <- d }))
	b := dial(t, h.URL)

	if _, err := a.Subscribe(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	got, err := b.Presence(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].User != a.User() || got[0].Client != a.ClientID() {
		t.Errorf("Presence = %+v, want only %s", got, a.User())
	}
	n, err := b.Send(ctx, a.User(), "psst")
	if err != nil || n != 1 {
		t.Fatalf("Send = %d, %v; want 1, nil", n, err)
	}
	select {
	case d := <-directs:
		if d.From != b.User() || string(d.Data) != `"psst"` {
			t.Errorf("direct = %+v", d)
		}
	case <-time.After(wait):
		t.Fatal("no direct message")
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	_, err = b.Publish(ctx, "bad name", 1)
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeBadRequest || !strings.Contains(e.Message, "channel") {
		t.Errorf("Publish to a bad channel: %v, want a *client.Error with code bad_request", err)
	}
	if _, err := a.Subscribe(ctx, "room"); err == nil {
		t.Error("second Subscribe to one channel succeeded")
	}
	if _, err := b.Subscribe(ctx, "bad name"); !errors.As(err, &e) {
		t.Errorf("Subscribe to a bad channel: %v, want a *client.Error", err)
	}
	if _, err := b.Publish(ctx, "room", json.RawMessage(`{`)); err == nil {
		t.Error("Publish of invalid raw JSON succeeded")
	}
}

func TestUnsubscribeClosesMessages(t *testing.T) {
	h := hubtest.Start(t, nil)
	ctx := testCtx(t)
	c := dial(t, h.URL)
	sub, err := c.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.Messages(); ok {
		t.Fatal("message after Unsubscribe")
	}
	got, err := c.Presence(ctx, "room")
	if err != nil || len(got) != 0 {
		t.Fatalf("Presence after Unsubscribe = %+v, %v; want none", got, err)
	}
	if _, err := c.Subscribe(ctx, "room"); err != nil {
		t.Fatalf("Subscribe again after Unsubscribe: %v", err)
	}
}

func TestJoinLeaveAndHandler(t *testing.T) {
	h := hubtest.Start(t, nil)
	ctx := testCtx(t)
	a := dial(t, h.URL)
	events := make(chan string, 8)
	_, err := a.Subscribe(ctx, "room",
		client.OnMessage(func(m client.Message) { events <- "message " + string(m.Data) }),
		client.OnJoinLeave(func(jl client.JoinLeave) { events <- fmt.Sprintf("join=%v %s", jl.Join, jl.User) }),
		client.OnSubscribed(func(s client.Subscribed) { events <- fmt.Sprintf("subscribed resub=%v", s.Resubscribe) }))
	if err != nil {
		t.Fatal(err)
	}
	b := dial(t, h.URL)
	sb, err := b.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "room", 7); err != nil {
		t.Fatal(err)
	}
	if err := sb.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"subscribed resub=false", "join=true " + b.User(), "message 7", "join=false " + b.User()}
	for _, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Fatalf("event %q, want %q", got, w)
			}
		case <-time.After(wait):
			t.Fatalf("no event, want %q", w)
		}
	}
}

func TestDialErrors(t *testing.T) {
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "ws://" + addr + "/ws"
	}()
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The answer of a hub with auth (issue 14) to a bad token.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"token: signature is invalid"}}`)
	}))
	t.Cleanup(unauthorized.Close)
	tests := []struct {
		name     string
		url      string
		wantText string
		wantCode string
	}{
		{"bad URL", "localhost:9999", `bad URL "localhost:9999"`, ""},
		{"bad scheme", "ftp://127.0.0.1/ws", "want ws://", ""},
		{"refused", refused, "connection refused", ""},
		{"bad token", strings.Replace(unauthorized.URL, "http", "ws", 1) + "/ws", "token: signature is invalid", client.CodeUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Dial(testCtx(t), tc.url, client.WithToken("bad"))
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
			if strings.HasPrefix(tc.name, "bad") && tc.wantCode == "" && !errors.Is(err, client.ErrBadURL) {
				t.Errorf("error %v: want ErrBadURL", err)
			}
			var e *client.Error
			if tc.wantCode != "" && (!errors.As(err, &e) || e.Code != tc.wantCode) {
				t.Errorf("error %v: want a *client.Error with code %s", err, tc.wantCode)
			}
		})
	}
}

// TestReconnectAcrossHubRestart stops the hub and starts a new one on the
// same address: the client reconnects, resubscribes, and reports
// recovered false, since the new hub's epoch differs.
func TestReconnectAcrossHubRestart(t *testing.T) {
	h1 := hubtest.Start(t, nil)
	ctx := testCtx(t)
	disconnects := make(chan error, 4)
	c := dial(t, h1.URL, client.OnDisconnect(func(err error) { disconnects <- err }))
	subscribed := make(chan client.Subscribed, 4)
	sub, err := c.Subscribe(ctx, "room", client.OnSubscribed(func(s client.Subscribed) { subscribed <- s }))
	if err != nil {
		t.Fatal(err)
	}
	first := <-subscribed
	if _, err := c.Publish(ctx, "room", "before"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub); string(m.Data) != `"before"` {
		t.Fatalf("message %s", m.Data)
	}

	h1.Stop(t)
	select {
	case err := <-disconnects:
		var de *client.DisconnectError
		if !errors.As(err, &de) || de.Code != "shutdown" || de.Final {
			t.Fatalf("disconnect cause %v, want the hub's shutdown, not final", err)
		}
	case <-time.After(wait):
		t.Fatal("no disconnect reported")
	}
	hubtest.Start(t, func(cfg *hub.Config) { cfg.Listen = h1.Addr })

	var again client.Subscribed
	select {
	case again = <-subscribed:
	case <-time.After(wait):
		t.Fatal("not resubscribed after the hub restarted")
	}
	if !again.Resubscribe || again.Recovered || again.Epoch == first.Epoch {
		t.Fatalf("resubscribe = %+v (first epoch %s); want Resubscribe, not Recovered, a new epoch", again, first.Epoch)
	}
	off, err := c.Publish(ctx, "room", "after")
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub); string(m.Data) != `"after"` || m.Offset != off || m.Epoch != again.Epoch {
		t.Fatalf("message after restart = %+v (%s), want \"after\" at %d in epoch %s", m, m.Data, off, again.Epoch)
	}
}

// dropper is a net dialer whose connections the test can cut.
type dropper struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *dropper) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

// drop closes every connection, as a network failure would.
func (d *dropper) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// hubHasRecovery reports whether the hub answers a subscribe with since
// with a "recovered" field, which it does once it keeps history.
func hubHasRecovery(t *testing.T, h *hubtest.Hub) bool {
	hc := h.Dial(t)
	reply, _ := hc.Call(map[string]any{"id": 1, "op": "subscribe", "channel": "probe", "since": map[string]any{"offset": 0, "epoch": "x"}})
	res, _ := reply["result"].(map[string]any)
	_, ok := res["recovered"]
	return ok
}

// TestReconnectAcrossDroppedConnection cuts the subscriber's TCP
// connection while a publisher keeps publishing: with the hub's history,
// every message arrives exactly once, in order.
func TestReconnectAcrossDroppedConnection(t *testing.T) {
	h := hubtest.Start(t, nil)
	if !hubHasRecovery(t, h) {
		t.Skip("the hub's subscribe reply has no \"recovered\" field: it keeps no history yet (issue 14); this test runs once it does")
	}
	ctx := testCtx(t)
	var d dropper
	c := dial(t, h.URL, client.WithNetDialer(d.dial))
	subscribed := make(chan client.Subscribed, 8)
	// Buffer(1) keeps undelivered messages in the socket, where a drop
	// loses them and only the hub's history brings them back.
	sub, err := c.Subscribe(ctx, "room", client.Buffer(1), client.OnSubscribed(func(s client.Subscribed) { subscribed <- s }))
	if err != nil {
		t.Fatal(err)
	}
	<-subscribed
	pub := dial(t, h.URL)
	const total, drops = 60, 3
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			if _, err := pub.Publish(ctx, "room", i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 1; i <= total; i++ {
		m := next(t, sub)
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d has data %s", i, m.Data)
		}
		if i%(total/drops) == 0 {
			d.drop()
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The last drop may come after the last message; the resubscribes of
	// the others are reported on the subscription's own goroutine and may
	// trail the messages a little.
	timeout := time.After(10 * time.Second)
	for resubs := 0; resubs < drops-1; resubs++ {
		select {
		case s := <-subscribed:
			if !s.Recovered {
				t.Errorf("resubscribe not recovered: %+v", s)
			}
		case <-timeout:
			t.Fatalf("%d recovered resubscribes within 10s, want at least %d", resubs, drops-1)
		}
	}
}

// TestFinalDisconnect: a policy disconnect (an operator's kick) stops the
// client instead of reconnecting.
func TestFinalDisconnect(t *testing.T) {
	h := hubtest.Start(t, nil)
	ctx := testCtx(t)
	c := dial(t, h.URL)
	sub, err := c.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := h.API(t, "POST", "/api/disconnect", map[string]string{"user": c.User()}); status != 200 {
		t.Fatalf("disconnect: %d %v", status, body)
	}
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("client still running after a policy disconnect")
	}
	var de *client.DisconnectError
	if err := c.Err(); !errors.As(err, &de) || de.Code != "policy" || !de.Final {
		t.Fatalf("Err() = %v, want a final policy disconnect", err)
	}
	if _, ok := <-sub.Messages(); ok {
		t.Fatal("subscription still delivers")
	}
	if _, err := c.Publish(ctx, "room", 1); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Publish after the final disconnect: %v, want ErrClosed", err)
	}
}

func TestGiveUp(t *testing.T) {
	h := hubtest.Start(t, nil)
	c, err := client.Dial(testCtx(t), h.URL, client.WithReconnect(client.ReconnectPolicy{MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, GiveUpAfter: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.Stop(t)
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("client did not give up")
	}
	if err := c.Err(); !errors.Is(err, client.ErrGaveUp) {
		t.Fatalf("Err() = %v, want ErrGaveUp", err)
	}
}

// TestCallWaitsForReconnect: a call made while the client reconnects
// waits for the new connection, and ends with its context.
func TestCallWaitsForReconnect(t *testing.T) {
	h1 := hubtest.Start(t, nil)
	reconnected := make(chan struct{}, 1)
	c := dial(t, h1.URL, client.OnConnect(func() { reconnected <- struct{}{} }))
	h1.Stop(t)
	testenv.WaitFor(t, wait, func() error {
		short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if err := c.Ping(short); !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("Ping while the hub is down: %v, want context.DeadlineExceeded", err)
		}
		return nil
	})
	hubtest.Start(t, func(cfg *hub.Config) { cfg.Listen = h1.Addr })
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after the restart: %v", err)
	}
	<-reconnected
}

// clientGoroutines returns the stacks of running goroutines that are in
// the client package.
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "github.com/netkit/netkit/client.") {
			out = append(out, g)
		}
	}
	return out
}

// TestNoGoroutineAfterClose checks that Close leaves nothing running, with
// subscriptions in both delivery styles and after a reconnect.
func TestNoGoroutineAfterClose(t *testing.T) {
	h := hubtest.Start(t, nil)
	ctx := testCtx(t)
	var d dropper
	c, err := client.Dial(ctx, h.URL, fastReconnect, client.WithNetDialer(d.dial))
	if err != nil {
		t.Fatal(err)
	}
	resubscribed := make(chan struct{}, 1)
	if _, err := c.Subscribe(ctx, "a", client.OnMessage(func(client.Message) {}), client.OnSubscribed(func(s client.Subscribed) {
		if s.Resubscribe {
			resubscribed <- struct{}{}
		}
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "b"); err != nil { // nobody reads its Messages
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "b", 1); err != nil {
		t.Fatal(err)
	}
	if n := len(clientGoroutines()); n < 5 { // run, reader, writer, two deliveries
		t.Fatalf("%d client goroutines while running, want at least 5", n)
	}
	d.drop()
	<-resubscribed
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returns once every goroutine has done its last work; one may
	// still be on its way out of the runtime.
	testenv.WaitFor(t, wait, func() error {
		if gs := clientGoroutines(); len(gs) > 0 {
			return fmt.Errorf("%d client goroutines after Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		return nil
	})
}

// TestDialFullHub: a hub at its connection limit answers with a policy
// disconnect instead of a welcome, which Dial returns.
func TestDialFullHub(t *testing.T) {
	h := hubtest.Start(t, func(cfg *hub.Config) { cfg.MaxConnections = 1 })
	dial(t, h.URL)
	c, err := client.Dial(testCtx(t), h.URL)
	if err == nil {
		c.Close()
		t.Fatal("second Dial to a hub with max_connections 1 succeeded")
	}
	var de *client.DisconnectError
	if !errors.As(err, &de) || de.Code != "policy" {
		t.Fatalf("Dial: %v, want a policy *client.DisconnectError", err)
	}
}

// TestResubscribeMany: after a hub restart every one of many
// subscriptions is renewed (their subscribes are pipelined).
func TestResubscribeMany(t *testing.T) {
	const n = 200
	h1 := hubtest.Start(t, nil)
	ctx := testCtx(t)
	c := dial(t, h1.URL)
	resubscribed := make(chan string, n)
	subs := make([]*client.Subscription, n)
	for i := range subs {
		ch := fmt.Sprint("room.", i)
		var err error
		subs[i], err = c.Subscribe(ctx, ch, client.OnSubscribed(func(s client.Subscribed) {
			if s.Resubscribe {
				resubscribed <- ch
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	h1.Stop(t)
	h2 := hubtest.Start(t, func(cfg *hub.Config) { cfg.Listen = h1.Addr })
	seen := make(map[string]bool)
	for len(seen) < n {
		select {
		case ch := <-resubscribed:
			seen[ch] = true
		case <-time.After(wait):
			t.Fatalf("%d of %d subscriptions renewed", len(seen), n)
		}
	}
	if status, body := h2.API(t, "POST", "/api/publish", map[string]any{"channel": "room.199", "data": "x"}); status != 200 {
		t.Fatalf("publish: %d %v", status, body)
	}
	if m := next(t, subs[199]); string(m.Data) != `"x"` {
		t.Fatalf("message %s", m.Data)
	}
}

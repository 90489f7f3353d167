package hub

import (
	"context"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/protocol"
)

// TestWaitGates checks the API's side of flow control: a publish waits
// while a channel's gate is closed, fails with unavailable when it stays
// closed for hub.write_timeout, and goes through once it opens.
func TestWaitGates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.APIKey = "k"
	cfg.WriteTimeout = 50 * time.Millisecond
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch := &channel{name: "room"}
	ch.subs.Store(&[]*client{})
	s.reg.channels["room"] = ch

	if e := s.waitGates(context.Background(), "room", "other"); e != nil {
		t.Fatalf("open gate: %v, want nil", e)
	}
	ch.flow.hold()
	e := s.waitGates(context.Background(), "other", "room")
	if e == nil || e.Code != protocol.CodeUnavailable {
		t.Fatalf("closed gate: %v, want unavailable", e)
	}
	// Opened while a publish waits: it goes through.
	res := make(chan *protocol.Error, 1)
	waiting := make(chan struct{})
	ch.flow.wait(func() {}) // a waiter registered before the publish's
	go func() {
		close(waiting)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if ch.flow.waitOpen(ctx) {
			res <- nil
		} else {
			res <- protocol.Errorf(protocol.CodeUnavailable, "gate stayed closed")
		}
	}()
	<-waiting
	ch.flow.release()
	if e := <-res; e != nil {
		t.Fatalf("gate opened: %v", e)
	}
	if !ch.flow.open() {
		t.Fatal("gate still closed after the last release")
	}
}

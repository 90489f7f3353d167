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

// readOffsets reads n message pushes of channel from c on its own
// goroutine and reports an error unless their offsets are 1..n in order.
// Other pushes (join, leave) are skipped.
func readOffsets(c *hubtest.Client, channel string, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		want := uint64(1)
		for want <= uint64(n) {
			raw, err := c.ReadRaw()
			if err != nil {
				done <- fmt.Errorf("after offset %d: %w", want-1, err)
				return
			}
			var m serverObject
			if err := json.Unmarshal(raw, &m); err != nil {
				done <- fmt.Errorf("read %.100q: %w", raw, err)
				return
			}
			if m.Push != "message" {
				if m.Push == "disconnect" {
					done <- fmt.Errorf("disconnected (%s) after offset %d", m.Code, want-1)
					return
				}
				continue
			}
			if m.Channel != channel || m.Offset != want {
				done <- fmt.Errorf("got %s offset %d, want offset %d", m.Channel, m.Offset, want)
				return
			}
			want++
		}
		done <- nil
	}()
	return done
}

// pipeline sends n publishes to channel without waiting for replies,
// batched up to 32 KiB to a frame, while it reads the n replies in order
// on another goroutine. It returns an error instead of failing, so it can
// run on its own goroutine.
func pipeline(c *hubtest.Client, channel string, n int, data string) error {
	replies := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			raw, err := c.ReadRaw()
			if err != nil {
				replies <- fmt.Errorf("reply %d: %w", i, err)
				return
			}
			var m serverObject
			if err := json.Unmarshal(raw, &m); err != nil || m.ID == nil || *m.ID != int64(i) {
				replies <- fmt.Errorf("got %.200s, want the reply to publish %d", raw, i)
				return
			}
		}
		replies <- nil
	}()
	var frame strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&frame, `{"id":%d,"op":"publish","channel":%q,"data":%s}`, i, channel, data)
		if frame.Len()+len(data) > 32<<10 || i == n {
			if err := c.Conn.WriteMessage(1, []byte(frame.String())); err != nil {
				return fmt.Errorf("write after %d publishes: %w", i, err)
			}
			frame.Reset()
		} else {
			frame.WriteByte('\n')
		}
	}
	return <-replies
}

// TestPipelinedPings sends pings in frames of 64 KiB, thousands at once,
// far more than the client's queue limit (hub.queue_messages) in replies,
// and reads the replies only after writing: the hub slows the client
// down (it stops reading it while its replies wait) instead of dropping
// it, and every reply arrives in order.
func TestPipelinedPings(t *testing.T) {
	const frames = 8
	h := hubtest.Start(t, func(c *hub.Config) { c.QueueMessages = 64 })
	c := h.Dial(t)
	var frame strings.Builder
	n := 0
	for range frames {
		frame.Reset()
		for frame.Len() < 60<<10 {
			n++
			fmt.Fprintf(&frame, `{"id":%d,"op":"ping"}`+"\n", n)
		}
		c.Send(frame.String())
	}
	for i := 1; i <= n; i++ {
		m := c.Read()
		if m["id"] != float64(i) {
			t.Fatalf("reply %d of %d = %v", i, n, m)
		}
	}
}

// TestFastPublisherKeepsReaders pipelines publishes far faster than its
// subscribers read: they keep reading, so none may be dropped; the
// publisher is slowed instead, and every subscriber gets every message.
func TestFastPublisherKeepsReaders(t *testing.T) {
	const readers, n = 4, 3000
	h := hubtest.Start(t, func(c *hub.Config) {
		c.QueueMessages = 32 // congest early and often
		c.JoinLeave = false
	})
	subs := make([]*hubtest.Client, readers)
	done := make([]<-chan error, readers)
	for i := range subs {
		subs[i] = h.Dial(t)
		quiet(t, subs[i], subscribeCmd(1, "flood"))
		done[i] = readOffsets(subs[i], "flood", n)
	}
	pub := h.Dial(t)
	if err := pipeline(pub, "flood", n, `"`+strings.Repeat("x", 200)+`"`); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	for i, d := range done {
		if err := <-d; err != nil {
			t.Errorf("reader %d: %v", i, err)
		}
	}
	if got := connections(t, h); got != readers+1 {
		t.Fatalf("connections = %d, want %d: nobody may be dropped", got, readers+1)
	}
}

// TestStuckReaderDropped adds a subscriber that never reads: it alone is
// dropped as a slow consumer once it has been over its queue limit for
// hub.write_timeout, the publisher goes on, and the readers get everything.
func TestStuckReaderDropped(t *testing.T) {
	const readers, n = 2, 2000
	h := hubtest.Start(t, func(c *hub.Config) {
		c.QueueMessages = 64
		c.WriteTimeout = 500 * time.Millisecond
		c.JoinLeave = false
	})
	done := make([]<-chan error, readers)
	for i := range readers {
		c := h.Dial(t)
		quiet(t, c, subscribeCmd(1, "flood"))
		done[i] = readOffsets(c, "flood", n)
	}
	stuck := dialSmallReadBuffer(t, h)
	quiet(t, stuck, subscribeCmd(1, "flood"))
	// From here on stuck reads nothing; 2000 x 8 KiB overflows its socket
	// buffers (several MiB on loopback) and its queue.
	pub := h.Dial(t)
	if err := pipeline(pub, "flood", n, `"`+strings.Repeat("y", 8<<10)+`"`); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	for i, d := range done {
		if err := <-d; err != nil {
			t.Errorf("reader %d: %v", i, err)
		}
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if got := connections(t, h); got != readers+1 {
			return fmt.Errorf("connections = %d, want %d: the stuck reader is still connected", got, readers+1)
		}
		return nil
	})
	// The metrics saw it leave as a slow consumer. (Whether it held the
	// channel's gate first depends on the path: the goroutine path may
	// time out its blocked write before its queue is over the limit.)
	testenv.WaitFor(t, 10*time.Second, func() error {
		const sample = `netkit_hub_disconnects_total{code="slow_consumer"}`
		if v := scrape(t, h)[sample]; v < 1 {
			return fmt.Errorf("%s = %v, want at least 1", sample, v)
		}
		return nil
	})
}

// TestAPIPublishWaitsForReaders publishes over the HTTP API to a channel
// with a subscriber that reads slowly but keeps reading: every publish
// succeeds (none is dropped, none fails), and the subscriber gets all.
func TestAPIPublishWaitsForReaders(t *testing.T) {
	const n = 400
	h := hubtest.Start(t, func(c *hub.Config) {
		c.QueueMessages = 8
		c.JoinLeave = false
	})
	sub := h.Dial(t)
	quiet(t, sub, subscribeCmd(1, "api"))
	done := readOffsets(sub, "api", n)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 { // four backends publishing at once
		wg.Go(func() {
			for i := range n / 4 {
				status, m := h.API(t, "POST", "/api/publish", map[string]any{"channel": "api", "data": fmt.Sprintf("%d-%d", w, i)})
				if status != http.StatusOK {
					errs <- fmt.Errorf("publish: %d %v", status, m)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("subscriber: %v", err)
	}
}

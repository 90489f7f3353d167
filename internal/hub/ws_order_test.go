package hub_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
)

func TestOrdering(t *testing.T) {
	const subscribers, messages = 50, 1000
	tests := []struct {
		name    string
		publish func(t *testing.T, h *hubtest.Hub, n int)
	}{
		{"one websocket publisher", publishOverWS},
		{"four concurrent API publishers", publishOverAPI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait) // runs after the clients are closed
			h := hubtest.Start(t, func(c *hub.Config) { c.JoinLeave = false })
			errs := make(chan error, subscribers)
			for i := range subscribers {
				c := h.Dial(t)
				quiet(t, c, subscribeCmd(1, "ordered"))
				wg.Go(func() { errs <- receiveFrom(c, "ordered", 0, messages, i) })
			}
			tc.publish(t, h, messages)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestSubscribeWhilePublishing checks the subscribe reply's offset against
// the live messages that follow: the first is offset+1, with no gap or
// duplicate, however the subscribe and the publications interleave.
func TestSubscribeWhilePublishing(t *testing.T) {
	const subscribers, messages = 20, 3000
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	h := hubtest.Start(t, func(c *hub.Config) {
		c.JoinLeave = false
		// Room for the whole stream: under -race on 2 cores the readers
		// can fall more than the default 1024 messages behind the
		// unthrottled publisher, and this test is not about slow consumers.
		c.QueueMessages = 2 * messages
	})
	pub := h.Dial(t)
	subs := make([]*hubtest.Client, subscribers)
	for i := range subs {
		subs[i] = h.Dial(t)
	}

	// The publisher pauses at each step until the next client has sent its
	// subscribe, so that subscribes fall all along the stream.
	step, stop := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop) }) // runs before wg.Wait
	published := make(chan error, 1)
	wg.Go(func() { // writes only; the test reads the replies below
		var frame bytes.Buffer
		for i := 1; i <= messages; i++ {
			fmt.Fprintf(&frame, `{"id":%d,"op":"publish","channel":"live","data":%d}`+"\n", i, i)
			if i%10 != 0 {
				continue
			}
			if err := pub.Conn.WriteMessage(websocket.TextMessage, frame.Bytes()); err != nil {
				published <- err
				return
			}
			frame.Reset()
			if i%(messages/subscribers) == 0 {
				select {
				case <-step:
				case <-stop:
					published <- errors.New("test ended")
					return
				}
			}
		}
		published <- nil
	})
	errs := make(chan error, subscribers)
	var froms []uint64
	for i, c := range subs {
		c.Send(subscribeCmd(1, "live"))
		select {
		case step <- struct{}{}:
		case err := <-published:
			t.Fatalf("publisher: %v", err)
		}
		reply := c.Read() // the reply comes before any message
		from := uint64(result(t, reply)["offset"].(float64))
		froms = append(froms, from)
		wg.Go(func() { errs <- receiveFrom(c, "live", from, messages, i) })
	}
	t.Logf("subscribed at offsets %v", froms) // spread along the stream
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= messages; i++ {
		if m := pub.Read(); m["id"] != float64(i) {
			t.Fatalf("publisher got %v, want reply %d", m, i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// receiveFrom reads the messages of channel after offset from up to offset
// last and checks that they come in order.
func receiveFrom(c *hubtest.Client, channel string, from, last uint64, who int) error {
	for want := from + 1; want <= last; want++ {
		raw, err := c.ReadRaw()
		if err != nil {
			return fmt.Errorf("subscriber %d: waiting for offset %d: %v", who, want, err)
		}
		var m serverObject
		if err := json.Unmarshal(raw, &m); err != nil || m.Push != "message" || m.Channel != channel {
			return fmt.Errorf("subscriber %d: got %s, want a message on %s", who, raw, channel)
		}
		if m.Offset != want {
			return fmt.Errorf("subscriber %d: offset %d, want %d (gap, duplicate or reorder)", who, m.Offset, want)
		}
	}
	return nil
}

// publishOverWS publishes n messages from one connection, 50 commands a
// frame, and checks the replies.
func publishOverWS(t *testing.T, h *hubtest.Hub, n int) {
	pub := h.Dial(t)
	var frame bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&frame, `{"id":%d,"op":"publish","channel":"ordered","data":{"n":%d}}`+"\n", i, i)
		if i%50 == 0 || i == n {
			pub.Send(frame.Bytes())
			frame.Reset()
		}
	}
	for i := 1; i <= n; i++ {
		m := pub.Read()
		if m["id"] != float64(i) || result(t, m)["offset"] != float64(i) {
			t.Fatalf("reply %d = %v, want id and offset %d", i, m, i)
		}
	}
}

// publishOverAPI publishes n messages through POST /api/publish from four
// goroutines and checks that the offsets handed out are exactly 1..n.
func publishOverAPI(t *testing.T, h *hubtest.Hub, n int) {
	const workers = 4
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	offsets := make(chan uint64, n)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				off, err := apiPublish(client, h, "ordered", fmt.Sprintf(`{"n":%d}`, i))
				if err != nil {
					errs <- err
					return
				}
				offsets <- off
			}
		})
	}
	wg.Wait()
	close(offsets)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[uint64]bool, n)
	for off := range offsets {
		if off < 1 || off > uint64(n) || seen[off] {
			t.Fatalf("offset %d handed out twice or out of 1..%d", off, n)
		}
		seen[off] = true
	}
	if len(seen) != n {
		t.Fatalf("%d offsets handed out, want %d", len(seen), n)
	}
}

// apiPublish is POST /api/publish for goroutines other than the test's.
func apiPublish(client *http.Client, h *hubtest.Hub, channel, data string) (uint64, error) {
	req, err := http.NewRequest("POST", h.HTTPURL+"/api/publish", strings.NewReader(fmt.Sprintf(`{"channel":%q,"data":%s}`, channel, data)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+hubtest.APIKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Offset uint64 `json:"offset"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /api/publish: status %d, decode: %v", resp.StatusCode, err)
	}
	return out.Offset, nil
}

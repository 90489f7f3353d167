package hub_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/natstest"
	"github.com/netkit/netkit/internal/testenv"
)

// startCluster runs n hub nodes on one in-process NATS server.
func startCluster(t *testing.T, nats *natstest.Server, n int) []*hubtest.Hub {
	t.Helper()
	nodes := make([]*hubtest.Hub, n)
	for i := range nodes {
		nodes[i] = startNode(t, nats, i)
	}
	return nodes
}

func startNode(t *testing.T, nats *natstest.Server, i int) *hubtest.Hub {
	t.Helper()
	h := hubtest.Start(t, func(c *hub.Config) {
		c.Broker = hub.BrokerNATS
		c.NATS.URL = []string{nats.URL()}
		c.NodeID = fmt.Sprintf("node-%d", i)
		c.NATS.PresenceTTL = 2 * time.Second
	})
	waitReady(t, h, http.StatusOK)
	return h
}

// waitReady waits until the node's /readyz answers status.
func waitReady(t *testing.T, h *hubtest.Hub, status int) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, func() error {
		resp, err := http.Get(h.HTTPURL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("/readyz = %d, want %d", resp.StatusCode, status)
		}
		return nil
	})
}

// readMessages reads n message pushes and returns their offsets and data.
func readMessages(t *testing.T, c *hubtest.Client, n int) (offsets []float64, data []string) {
	t.Helper()
	for len(offsets) < n {
		m := c.Read()
		if m["push"] != "message" {
			continue // join and leave pushes
		}
		offsets = append(offsets, m["offset"].(float64))
		data = append(data, fmt.Sprint(m["data"]))
	}
	return offsets, data
}

func span(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

// TestClusterFanout publishes from every node at once, by API and by
// client: every subscriber on every node gets every message once, with
// offsets 1..n in order, and all see the same order.
func TestClusterFanout(t *testing.T) {
	const each = 20
	nodes := startCluster(t, natstest.Start(t), 3)
	var subs []*hubtest.Client
	for _, h := range nodes {
		for range 2 {
			c := h.Dial(t)
			quiet(t, c, subscribeCmd(1, "room"))
			subs = append(subs, c)
		}
	}
	var wg sync.WaitGroup
	for i, h := range nodes {
		pub := h.Dial(t)
		wg.Go(func() {
			for j := range each {
				if j%2 == 0 {
					if status, m := h.API(t, "POST", "/api/publish", map[string]any{"channel": "room", "data": fmt.Sprintf("n%d-%d", i, j)}); status != http.StatusOK {
						t.Errorf("publish: %d %v", status, m)
						return
					}
					continue
				}
				pub.Call(publishCmd(100+j, "room", fmt.Sprintf("n%d-%d", i, j)))
			}
		})
	}
	wg.Wait()
	var first []string
	for i, c := range subs {
		offsets, data := readMessages(t, c, 3*each)
		if !slices.Equal(offsets, span(1, 3*each)) {
			t.Fatalf("subscriber %d got offsets %v, want 1..%d; data %v", i, offsets, 3*each, data)
		}
		if first == nil {
			first = data
		} else if !slices.Equal(data, first) {
			t.Fatalf("subscriber %d got %v, subscriber 0 %v: not the same order", i, data, first)
		}
	}
}

// TestClusterPresence checks presence, join pushes, direct sends and
// /api/disconnect across nodes, and that a node that dies leaves
// presence within the TTL.
func TestClusterPresence(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 3)
	a := nodes[0].Dial(t)
	quiet(t, a, subscribeCmd(1, "p"))
	b := nodes[1].Dial(t)
	quiet(t, b, subscribeCmd(1, "p"))
	for m := a.Read(); m["push"] != "join" || m["client"] != b.ID(); m = a.Read() {
		if m["push"] != "join" {
			t.Fatalf("node 0 got %v, want the join of node 1's client %s", m, b.ID())
		}
	}
	if n := presenceCount(t, nodes[2], "p"); n != 2 {
		t.Fatalf("presence on node 2 = %d clients, want 2", n)
	}
	// Direct send to b's user from node 2's API reaches node 1.
	status, m := nodes[2].API(t, "POST", "/api/send", map[string]any{"to": b.User(), "data": "hi"})
	if status != http.StatusOK {
		t.Fatalf("send: %d %v", status, m)
	}
	if d := b.Expect("direct"); fmt.Sprint(d["data"]) != "hi" {
		t.Fatalf("direct = %v", d)
	}
	// A client that leaves on node 1 leaves presence on node 2.
	quiet(t, b, unsubscribeCmd(2, "p"))
	if n := presenceCount(t, nodes[2], "p"); n != 1 {
		t.Fatalf("presence after leave = %d clients, want 1", n)
	}
	// /api/disconnect on node 2 disconnects a's user on node 0.
	if status, m := nodes[2].API(t, "POST", "/api/disconnect", map[string]any{"user": a.User()}); status != http.StatusOK {
		t.Fatalf("disconnect: %d %v", status, m)
	}
	for {
		m, err := a.ReadRaw()
		if err != nil {
			break // closed: disconnected
		}
		_ = m
	}
}

// subscribeSince subscribes c with a recovery since offset/epoch and
// returns the reply's result.
func subscribeSince(t *testing.T, c *hubtest.Client, channel string, offset float64, epoch string) map[string]any {
	t.Helper()
	cmd := subscribeCmd(7, channel)
	cmd["since"] = map[string]any{"offset": offset, "epoch": epoch}
	reply, _ := c.Call(cmd)
	return result(t, reply)
}

// TestClusterRecoveryOtherNode: a client reads some messages on node 0,
// leaves, messages go on; it recovers the ones it missed on node 1, then
// gets live ones, with no gap or duplicate.
func TestClusterRecoveryOtherNode(t *testing.T) {
	nodes := startCluster(t, natstest.Start(t), 2)
	c := nodes[0].Dial(t)
	res := quiet(t, c, subscribeCmd(1, "r"))
	epoch := res["epoch"].(string)
	publishN(t, nodes[0], "r", 5)
	if got, _ := readMessages(t, c, 5); !slices.Equal(got, span(1, 5)) {
		t.Fatalf("live offsets %v, want 1..5", got)
	}
	c.Conn.Close()
	publishN(t, nodes[1], "r", 4) // 6..9 missed
	d := nodes[1].Dial(t)
	res = subscribeSince(t, d, "r", 5, epoch)
	if res["recovered"] != true || res["offset"] != 9.0 || res["epoch"] != epoch {
		t.Fatalf("recovery on node 1 = %v, want recovered at 9 in epoch %s", res, epoch)
	}
	publishN(t, nodes[0], "r", 2)
	if got, _ := readMessages(t, d, 6); !slices.Equal(got, span(6, 11)) {
		t.Fatalf("recovered then live = %v, want 6..11", got)
	}
}

// TestClusterNodeKilled: a node stops under its clients while messages
// flow; they reconnect to another node and recover what they missed.
func TestClusterNodeKilled(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 3)
	var clients []*hubtest.Client
	for range 3 {
		c := nodes[0].Dial(t)
		quiet(t, c, subscribeCmd(1, "k"))
		clients = append(clients, c)
	}
	publishN(t, nodes[1], "k", 3)
	var epoch string
	for _, c := range clients {
		readMessages(t, c, 3)
	}
	epoch = quiet(t, nodes[2].Dial(t), subscribeCmd(1, "k"))["epoch"].(string)
	nodes[0].Stop(t)
	publishN(t, nodes[1], "k", 3)
	for i, c := range clients {
		d := nodes[1+i%2].Dial(t)
		res := subscribeSince(t, d, "k", 3, epoch)
		if res["recovered"] != true {
			t.Fatalf("client %d: recovery = %v, want recovered", i, res)
		}
		if got, _ := readMessages(t, d, 3); !slices.Equal(got, span(4, 6)) {
			t.Fatalf("client %d recovered %v, want 4..6", i, got)
		}
		_ = c
	}
}

// TestClusterNATSRestart restarts NATS while a publisher runs: the node
// reports not ready and rejects publishes with unavailable while NATS is
// down, recovers by itself, and every publish the API acknowledged is in
// history afterwards with its offset.
func TestClusterNATSRestart(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 2)
	sub := nodes[1].Dial(t)
	quiet(t, sub, subscribeCmd(1, "n"))
	acked := map[float64]string{}
	publish := func(i int) (int, map[string]any) {
		status, m := nodes[0].API(t, "POST", "/api/publish", map[string]any{"channel": "n", "data": fmt.Sprint(i)})
		if status == http.StatusOK {
			acked[m["offset"].(float64)] = fmt.Sprint(i)
		}
		return status, m
	}
	for i := range 10 {
		if status, m := publish(i); status != http.StatusOK {
			t.Fatalf("publish before the restart: %d %v", status, m)
		}
	}
	nats.Stop()
	waitReady(t, nodes[0], http.StatusServiceUnavailable)
	status, m := publish(100)
	if status != http.StatusServiceUnavailable || fmt.Sprint(m["error"]) == "" {
		t.Fatalf("publish with NATS down = %d %v, want 503 unavailable", status, m)
	}
	if e, _ := m["error"].(map[string]any); e["code"] != "unavailable" {
		t.Fatalf("publish with NATS down: error %v, want code unavailable", m["error"])
	}
	nats.Restart()
	waitReady(t, nodes[0], http.StatusOK)
	waitReady(t, nodes[1], http.StatusOK)
	for i := 10; i < 20; i++ {
		if status, m := publish(i); status != http.StatusOK {
			t.Fatalf("publish after the restart: %d %v", status, m)
		}
	}
	status, hist := nodes[1].API(t, "GET", "/api/history?channel=n", nil)
	if status != http.StatusOK {
		t.Fatalf("history: %d %v", status, hist)
	}
	held := map[float64]string{}
	for _, x := range hist["messages"].([]any) {
		msg := x.(map[string]any)
		held[msg["offset"].(float64)] = fmt.Sprint(msg["data"])
	}
	for off, data := range acked {
		if held[off] != data {
			t.Fatalf("acknowledged publish %q at offset %v: history holds %q there", data, off, held[off])
		}
	}
	// The subscriber on node 1 stayed connected and got all 20, in order.
	if got, _ := readMessages(t, sub, 20); !slices.Equal(got, span(1, 20)) {
		t.Fatalf("subscriber across the restart got %v, want 1..20", got)
	}
}

// TestClusterEmbedded runs NATS inside one node (hub.broker =
// nats-embedded) and a second node connected to it: messages cross, and
// history survives the embedded node's restart on the same directory.
func TestClusterEmbedded(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	embedded := func() *hubtest.Hub {
		h := hubtest.Start(t, func(c *hub.Config) {
			c.Broker = hub.BrokerNATSEmbedded
			c.NATS.EmbeddedDir = dir
			c.NATS.EmbeddedListen = addr
			c.NodeID = "embedded"
		})
		waitReady(t, h, http.StatusOK)
		return h
	}
	first := embedded()
	other := hubtest.Start(t, func(c *hub.Config) {
		c.Broker = hub.BrokerNATS
		c.NATS.URL = []string{"nats://" + addr}
		c.NodeID = "other"
	})
	waitReady(t, other, http.StatusOK)
	c := other.Dial(t)
	epoch := quiet(t, c, subscribeCmd(1, "e"))["epoch"].(string)
	publishN(t, first, "e", 3)
	if got, _ := readMessages(t, c, 3); !slices.Equal(got, span(1, 3)) {
		t.Fatalf("node 2 got %v from the embedded node, want 1..3", got)
	}
	first.Stop(t)
	waitReady(t, other, http.StatusServiceUnavailable)
	second := embedded()
	d := second.Dial(t)
	res := subscribeSince(t, d, "e", 1, epoch)
	if res["recovered"] != true || res["offset"] != 3.0 {
		t.Fatalf("recovery after the embedded node restarted = %v, want recovered at 3", res)
	}
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestClusterNATSRestartMidStream stops and restarts NATS while a backend
// keeps publishing through one node's API and a subscriber on another
// node keeps reading: afterwards history holds every publish the API
// acknowledged at the offset it answered, offsets have no gap, and the
// subscriber, connected throughout, got them all in order.
func TestClusterNATSRestartMidStream(t *testing.T) {
	nats := natstest.Start(t)
	nodes := startCluster(t, nats, 2)
	sub := nodes[1].Dial(t)
	quiet(t, sub, subscribeCmd(1, "m"))

	type result struct {
		offset uint64
		data   string
		err    error
	}
	results := make(chan result)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the backend: publishes until told to stop
		defer wg.Done()
		defer close(results)
		client := &http.Client{}
		defer client.CloseIdleConnections()
		for i := 0; ; i++ {
			data := fmt.Sprint(i)
			off, err := apiPublish(client, nodes[0], "m", data)
			select {
			case results <- result{off, data, err}:
			case <-stop:
				return
			}
		}
	}()
	acked := map[uint64]string{}
	// next reads results until want of them were acknowledged (failed
	// is false) or one failed (failed is true).
	next := func(want int, failed bool) {
		t.Helper()
		for n := 0; n < want; {
			r, ok := <-results
			if !ok {
				t.Fatal("the publisher stopped")
			}
			if r.err == nil {
				acked[r.offset] = r.data
				n++
			} else if failed {
				return
			}
		}
	}
	next(20, false)
	nats.Stop() // while publishes are in flight
	next(1<<30, true)
	nats.Restart()
	next(20, false)
	close(stop)
	for range results { // the last publish, if it was waiting to report
	}
	wg.Wait()

	status, hist := nodes[1].API(t, "GET", "/api/history?channel=m", nil)
	if status != http.StatusOK {
		t.Fatalf("history: %d %v", status, hist)
	}
	msgs := hist["messages"].([]any)
	held := map[uint64]string{}
	for i, x := range msgs {
		msg := x.(map[string]any)
		if off := msg["offset"].(float64); off != float64(i+1) {
			t.Fatalf("history message %d has offset %v, want %d (a gap or a duplicate)", i, off, i+1)
		}
		held[uint64(i+1)] = fmt.Sprint(msg["data"])
	}
	for off, data := range acked {
		if held[off] != data {
			t.Fatalf("acknowledged publish %q at offset %v: history holds %q there", data, off, held[off])
		}
	}
	if got, _ := readMessages(t, sub, len(msgs)); !slices.Equal(got, span(1, len(msgs))) {
		t.Fatalf("subscriber across the restart got %v, want 1..%d", got, len(msgs))
	}
}

// TestClusterPipelinedReplies sends a connection's publishes without
// waiting for replies, as a client with a window does: the node keeps
// several in flight, yet the replies come in command order, an invalid
// publish among them gets its error in its place, a command after them
// sees them all, and a subscriber on another node gets them in order.
func TestClusterPipelinedReplies(t *testing.T) {
	const n = 200
	nodes := startCluster(t, natstest.Start(t), 2)
	sub := nodes[1].Dial(t)
	quiet(t, sub, subscribeCmd(1, "pipe"))
	pub := nodes[0].Dial(t)
	bad := map[int]any{
		50:  publishCmd(50, "bad name!", "x"),  // refused when decoded
		120: publishCmd(120, "nons:pipe", "x"), // refused by the namespace check
	}
	for id := 1; id <= n; id++ {
		if cmd, ok := bad[id]; ok {
			pub.Send(cmd)
			continue
		}
		pub.Send(publishCmd(id, "pipe", id))
	}
	pub.Send(map[string]any{"id": n + 1, "op": "history", "channel": "pipe", "limit": 1})
	offset := 0.0
	for id := 1; id <= n+1; id++ {
		m := pub.Read()
		if got := fmt.Sprint(m["id"]); got != fmt.Sprint(id) {
			t.Fatalf("reply %v, want id %d next", m, id)
		}
		switch _, isBad := bad[id]; {
		case isBad:
			if m["error"] == nil {
				t.Fatalf("reply to the invalid publish %d = %v, want an error", id, m)
			}
		case id == n+1:
			res := result(t, m)
			msgs := res["messages"].([]any)
			if res["offset"] != offset || len(msgs) != 1 || msgs[0].(map[string]any)["offset"] != offset {
				t.Fatalf("history after the publishes = %v, want offset %v and its message", res, offset)
			}
		default:
			offset++
			if got := result(t, m)["offset"]; got != offset {
				t.Fatalf("reply to publish %d at offset %v, want %v", id, got, offset)
			}
		}
	}
	offsets, data := readMessages(t, sub, int(offset))
	if !slices.Equal(offsets, span(1, int(offset))) {
		t.Fatalf("subscriber on the other node got offsets %v, want 1..%v", offsets, offset)
	}
	want := []string{}
	for id := 1; id <= n; id++ {
		if _, isBad := bad[id]; !isBad {
			want = append(want, fmt.Sprint(id))
		}
	}
	if !slices.Equal(data, want) {
		t.Fatalf("subscriber got data %v, want %v", data, want)
	}
}

// TestClusterOwnMessageBeforeReply: a publisher subscribed to the channel
// gets its own message before the reply to its publish, as on the memory
// broker, also when its publishes are pipelined (later messages may come
// before an earlier reply); pushes and replies each keep their order.
func TestClusterOwnMessageBeforeReply(t *testing.T) {
	nodes := startCluster(t, natstest.Start(t), 1)
	c := nodes[0].Dial(t)
	quiet(t, c, subscribeCmd(1, "own"))
	const n = 20
	for id := 2; id < 2+n; id++ {
		c.Send(publishCmd(id, "own", id))
	}
	pushed, replied := 0, 0 // offsets seen so far
	for pushed < n || replied < n {
		m := c.Read()
		if m["push"] == "message" {
			pushed++
			if m["offset"] != float64(pushed) || m["data"] != float64(pushed+1) {
				t.Fatalf("push %v, want offset %d with data %d", m, pushed, pushed+1)
			}
			continue
		}
		replied++
		if fmt.Sprint(m["id"]) != fmt.Sprint(replied+1) || result(t, m)["offset"] != float64(replied) {
			t.Fatalf("reply %v, want the reply to publish %d at offset %d", m, replied+1, replied)
		}
		if replied > pushed {
			t.Fatalf("reply at offset %d came before its message push (pushed up to %d)", replied, pushed)
		}
	}
}

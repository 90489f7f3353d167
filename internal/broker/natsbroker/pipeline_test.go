package natsbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/broker/natsbroker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/natstest"
	"github.com/netkit/netkit/internal/testenv"
)

// TestPipelinedPublishesTwoNodes has two nodes publish to one channel at
// once, each from several publishers that send their next publish
// without waiting for the last one (PublishAsync, as a hub connection
// does), so batches form on both nodes and their compare-and-sets
// conflict. Both nodes must deliver the same publications at the same
// offsets, 1 to N with no gap or duplicate; each publisher's publishes
// must be stored and acknowledged in its order; history must hold the
// last ones as delivered, and a batch must count as its publications in
// the history limit.
func TestPipelinedPublishesTwoNodes(t *testing.T) {
	const publishers, each, size, window = 4, 150, 50, 10
	srv := natstest.Start(t)
	recs := []*brokertest.Recorder{brokertest.NewRecorder(), brokertest.NewRecorder()}
	lim := history.Limits{Size: size, TTL: time.Minute}
	var nodes []*natsbroker.Broker
	for i, rec := range recs {
		nodes = append(nodes, run(t, natsbroker.Config{
			URLs: []string{srv.URL()}, NodeID: fmt.Sprintf("n%d", i),
			Limits: func(string) history.Limits { return lim }, MaxHistorySize: lim.Size, MaxHistoryTTL: lim.TTL,
		}, rec))
	}
	ctx := context.Background()
	for _, b := range nodes {
		if err := b.Subscribe(ctx, "ch", nil, func(history.Result) {}); err != nil {
			t.Fatal(err)
		}
	}

	type ack struct {
		pos history.Position
		err error
	}
	acks := make([][]ack, 2*publishers) // per publisher, in done order
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p := range 2 * publishers {
		b := nodes[p%2]
		wg.Go(func() {
			var done sync.WaitGroup
			for i := range each {
				done.Add(1)
				data := json.RawMessage(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))
				b.PublishAsync(ctx, "ch", fmt.Sprintf("u%d", p), data, func(pos history.Position, err error) {
					mu.Lock()
					acks[p] = append(acks[p], ack{pos, err})
					mu.Unlock()
					done.Done()
				})
				if i%window == window-1 { // as a client with a window of unacknowledged publishes
					done.Wait()
				}
			}
			done.Wait()
		})
	}
	wg.Wait()
	total := uint64(2 * publishers * each)

	// Each publisher: every publish acknowledged, offsets growing in the
	// order of its calls.
	for p, list := range acks {
		for i, a := range list {
			if a.err != nil {
				t.Fatalf("publisher %d publish %d: %v", p, i, a.err)
			}
			if i > 0 && a.pos.Offset <= list[i-1].pos.Offset {
				t.Fatalf("publisher %d: ack %d at offset %d after %d", p, i, a.pos.Offset, list[i-1].pos.Offset)
			}
		}
	}

	// Both nodes: offsets 1..total, the same data at each, and each
	// publisher's data in its order.
	for n, rec := range recs {
		testenv.WaitFor(t, 10*time.Second, func() error {
			if got := len(rec.Publications("ch")); uint64(got) < total {
				return fmt.Errorf("node %d delivered %d of %d", n, got, total)
			}
			return nil
		})
	}
	a, b := recs[0].Publications("ch"), recs[1].Publications("ch")
	next := make(map[string]int) // publisher -> next i
	for i := range a {
		if a[i].Offset != uint64(i+1) || b[i].Offset != uint64(i+1) {
			t.Fatalf("delivery %d at offsets %d and %d, want %d", i, a[i].Offset, b[i].Offset, i+1)
		}
		if string(a[i].Data) != string(b[i].Data) || a[i].From != b[i].From || a[i].Epoch != b[i].Epoch {
			t.Fatalf("offset %d: node 0 has %s from %s, node 1 %s from %s", i+1, a[i].Data, a[i].From, b[i].Data, b[i].From)
		}
		var d struct{ P, I int }
		if err := json.Unmarshal(a[i].Data, &d); err != nil {
			t.Fatal(err)
		}
		if from := fmt.Sprintf("u%d", d.P); a[i].From != from || d.I != next[from] {
			t.Fatalf("offset %d: %s from %s, want publication %d of %s", i+1, a[i].Data, a[i].From, next[from], from)
		}
		next[a[i].From]++
	}
	if uint64(len(a)) != total || uint64(len(b)) != total {
		t.Fatalf("delivered %d and %d, want %d", len(a), len(b), total)
	}

	logBatches(t, srv.URL(), total)

	// History, on either node: the last size publications as delivered.
	for n, node := range nodes {
		res, err := node.History(ctx, "ch", history.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Position.Offset != total || len(res.Messages) != size {
			t.Fatalf("node %d history: offset %d, %d messages; want %d, %d", n, res.Position.Offset, len(res.Messages), total, size)
		}
		for i, m := range res.Messages {
			want := a[int(total)-size+i]
			if string(m) != string(want.Push) {
				t.Fatalf("node %d history message %d = %s, want %s", n, i, m, want.Push)
			}
		}
		since := history.Position{Offset: total - 10, Epoch: a[0].Epoch}
		res, err = node.History(ctx, "ch", history.Query{Since: &since})
		if err != nil || !res.Recovered || len(res.Messages) != 10 || string(res.Messages[0]) != string(a[total-10].Push) {
			t.Fatalf("node %d history since %d: recovered %v, %d messages, err %v", n, since.Offset, res.Recovered, len(res.Messages), err)
		}
	}
}

// logBatches logs how many stream messages carried the publications (the
// batches that formed depend on timing, so it is not asserted).
func logBatches(t *testing.T, url string, total uint64) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), "NETKIT_CHANNELS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d publications in %d stream messages", total, info.State.LastSeq)
}

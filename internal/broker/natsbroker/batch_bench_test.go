package natsbroker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/natstest"
)

// BenchmarkBatchOf10 stores 10 messages on one subject of a one-replica
// file stream, each checked by Nats-Expected-Last-Subject-Sequence as the
// broker publishes: one at a time (a round trip each), or as one
// JetStream atomic batch (the check on its first message), which is how
// publishes to one channel could be batched. docs/cluster.md says why the
// broker does not.
func BenchmarkBatchOf10(b *testing.B) {
	const n = 10
	srv := natstest.Start(b)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "B", Subjects: []string{"b.>"}, Storage: jetstream.FileStorage,
		MaxMsgsPerSubject: 100, AllowAtomicPublish: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 100)
	// last is the subject's last stream sequence, read afresh for every
	// run of a sub-benchmark.
	last := func(subj string) uint64 {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return 0
		}
		return m.Sequence
	}
	b.Run("one-at-a-time", func(b *testing.B) {
		seq := last("b.one")
		for b.Loop() {
			for range n {
				ack, err := js.Publish(ctx, "b.one", data, jetstream.WithExpectLastSequencePerSubject(seq))
				if err != nil {
					b.Fatal(err)
				}
				seq = ack.Sequence
			}
		}
	})
	b.Run("atomic-batch", func(b *testing.B) {
		seq := last("b.batch")
		batches := 0
		for b.Loop() {
			batches++
			id := "b" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(batches)
			for i := 1; i <= n; i++ {
				m := nats.NewMsg("b.batch")
				m.Data = data
				m.Header.Set("Nats-Batch-Id", id)
				m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i))
				if i == 1 {
					m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
				}
				if i < n {
					if err := nc.PublishMsg(m); err != nil {
						b.Fatal(err)
					}
					continue
				}
				m.Header.Set("Nats-Batch-Commit", "1")
				resp, err := nc.RequestMsg(m, 10*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				var ack struct {
					Seq   uint64          `json:"seq"`
					Count int             `json:"count"`
					Error json.RawMessage `json:"error"`
				}
				if err := json.Unmarshal(resp.Data, &ack); err != nil || ack.Error != nil || ack.Count != n {
					b.Fatalf("batch ack %s (%v)", resp.Data, err)
				}
				seq = ack.Seq
			}
		}
	})
}

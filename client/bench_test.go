package client_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/client"
	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/protocol"
)

// BenchmarkPublishRoundTrip compares one publish and its reply through the
// client with the same over a bare gorilla connection (pre-encoded
// command, reply decoded by the same protocol decoder): the difference is
// the client's own cost. Run both in one go and compare ratios:
//
//	go test -run '^$' -bench PublishRoundTrip -count 5 ./client/
func BenchmarkPublishRoundTrip(b *testing.B) {
	h := hubtest.Start(b, nil)
	data := json.RawMessage(`{"text":"hello, this is a short chat message"}`)
	b.Run("client", func(b *testing.B) {
		ctx := context.Background()
		c, err := client.Dial(ctx, h.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Publish(ctx, "bench", data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		ws, _, err := websocket.DefaultDialer.Dial(h.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil { // welcome
			b.Fatal(err)
		}
		b.ReportAllocs()
		id := int64(0)
		for b.Loop() {
			id++
			cmd, _ := protocol.AppendCommand(nil, protocol.ClientCommand{ID: id, Op: protocol.OpPublish, Channel: "bench", Data: data})
			if err := ws.WriteMessage(websocket.TextMessage, cmd); err != nil {
				b.Fatal(err)
			}
			_, frame, err := ws.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			o, err := protocol.DecodeServerObject(frame)
			if err != nil || o.ID != id {
				b.Fatalf("reply %s: %v, want id %s", frame, err, strconv.FormatInt(id, 10))
			}
		}
	})
}

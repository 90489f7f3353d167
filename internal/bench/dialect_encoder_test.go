package bench

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/netkit/netkit/internal/protocol"
)

// TestNetkitDialectReadsHubEncoders sorts objects written by the hub's own
// encoders (internal/protocol), one per frame and "\n"-joined, so the
// dialect's prefix matching cannot drift from the hub.
func TestNetkitDialectReadsHubEncoders(t *testing.T) {
	payload := appendPayload(nil, 3, 17, 12345, 64)
	tests := []struct {
		name string
		obj  []byte
		want Event
	}{
		{"welcome", protocol.AppendWelcome(nil, protocol.Welcome{Client: "c", User: "u", Node: "n", Version: "v"}), Event{Kind: EventReady}},
		{"message", protocol.AppendMessage(nil, "bench", 9, "anon-1", payload), Event{Kind: EventPublication, Data: payload}},
		{"message with escapes in from", protocol.AppendMessage(nil, "bench", 9, `a","data":1`, payload), Event{Kind: EventPublication, Data: payload}},
		{"subscribe reply", protocol.AppendReplyValue(nil, 4, true, map[string]any{"channel": "bench", "offset": 0, "epoch": "e"}), Event{Kind: EventReply, ID: 4}},
		{"publish reply", protocol.AppendOffsetReply(nil, 5, true, 77), Event{Kind: EventReply, ID: 5}},
		{"error reply", protocol.AppendError(nil, 6, true, protocol.Errorf(protocol.CodeBadRequest, "no")), Event{Kind: EventError, ID: 6}},
		{"join", protocol.AppendJoinLeave(nil, true, "bench", protocol.ClientInfo{Client: "c", User: "u"}), Event{Kind: EventOther}},
		{"direct", protocol.AppendDirect(nil, "u", json.RawMessage(`1`)), Event{Kind: EventOther}},
		{"disconnect", protocol.AppendDisconnect(nil, protocol.DisconnectSlowConsumer), Event{Kind: EventDisconnect}},
	}
	var joined []byte
	var want []Event
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := Netkit{}.AppendEvents(nil, tc.obj)
			if len(evs) != 1 {
				t.Fatalf("%d events from %s, want 1", len(evs), tc.obj)
			}
			checkEvent(t, tc.obj, evs[0], tc.want)
		})
		if len(joined) > 0 {
			joined = append(joined, '\n')
		}
		joined = append(joined, tc.obj...)
		want = append(want, tc.want)
	}
	evs := Netkit{}.AppendEvents(nil, joined)
	if len(evs) != len(want) {
		t.Fatalf("%d events from a joined frame, want %d", len(evs), len(want))
	}
	for i := range evs {
		checkEvent(t, tests[i].obj, evs[i], want[i])
	}
}

func checkEvent(t *testing.T, obj []byte, got, want Event) {
	t.Helper()
	if got.Kind != want.Kind || got.ID != want.ID {
		t.Errorf("%s: kind %d id %d, want kind %d id %d", obj, got.Kind, got.ID, want.Kind, want.ID)
	}
	if want.Kind == EventPublication {
		p, seq, ts, ok := parsePayload(got.Data)
		if !ok || p != 3 || seq != 17 || ts != 12345 {
			t.Errorf("%s: payload %d %d %d %v, want 3 17 12345", obj, p, seq, ts, ok)
		}
	}
	if (want.Kind == EventError || want.Kind == EventDisconnect) && string(got.Text) != string(obj) {
		t.Errorf("%s: text %s, want the whole object", obj, got.Text)
	}
}

// TestNetkitDialectCommandsDecodeOnTheHub passes the dialect's commands
// through the hub's decoder.
func TestNetkitDialectCommandsDecodeOnTheHub(t *testing.T) {
	d := Netkit{}
	payload := appendPayload(nil, 1, 2, 3, 32)
	tests := []struct {
		name string
		b    []byte
		want protocol.Command
	}{
		{"subscribe", d.Subscribe(nil, 7, "bench.0"), protocol.Command{ID: 7, HasID: true, Op: protocol.OpSubscribe, Channel: "bench.0"}},
		{"publish", d.Publish(nil, 8, "bench.0", payload), protocol.Command{ID: 8, HasID: true, Op: protocol.OpPublish, Channel: "bench.0", Data: payload}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []protocol.Command
			protocol.ForEachCommand(tc.b, func(c protocol.Command, perr *protocol.Error) {
				if perr != nil {
					t.Fatalf("hub rejects %s: %v", tc.b, perr)
				}
				got = append(got, c)
			})
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("hub decodes %s as %+v, want %+v", tc.b, got, tc.want)
			}
			// The client package's encoding of the same command is the
			// same bytes, so the bench and the client speak one dialect.
			cc := protocol.ClientCommand{ID: tc.want.ID, Op: tc.want.Op, Channel: tc.want.Channel, Data: tc.want.Data}
			if b, err := protocol.AppendCommand(nil, cc); err != nil || string(b) != string(tc.b) {
				t.Errorf("client encoding %s, %v; bench %s", b, err, tc.b)
			}
		})
	}
}

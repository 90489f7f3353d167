package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestEncodeIsValidJSON(t *testing.T) {
	weird := "quo\"te \\ \n\t\x01 <tag> é \xff"
	tests := []struct {
		name string
		got  []byte
		want map[string]any
	}{
		{"welcome", AppendWelcome(nil, Welcome{Client: "c1", User: weird, Node: "n", Version: "v"}),
			map[string]any{"push": "welcome", "client": "c1", "user": "quo\"te \\ \n\t\x01 <tag> é \uFFFD", "node": "n", "version": "v"}},
		{"message", AppendMessage(nil, "room", 42, "anon-1", json.RawMessage(`{"x":[1,"a"]}`)),
			map[string]any{"push": "message", "channel": "room", "offset": 42.0, "from": "anon-1", "data": map[string]any{"x": []any{1.0, "a"}}}},
		{"direct", AppendDirect(nil, "", json.RawMessage(`null`)),
			map[string]any{"push": "direct", "from": "", "data": nil}},
		{"join", AppendJoinLeave(nil, true, "r", ClientInfo{"c", "u"}),
			map[string]any{"push": "join", "channel": "r", "client": "c", "user": "u"}},
		{"leave", AppendJoinLeave(nil, false, "r", ClientInfo{"c", "u"}),
			map[string]any{"push": "leave", "channel": "r", "client": "c", "user": "u"}},
		{"disconnect", AppendDisconnect(nil, DisconnectSlowConsumer),
			map[string]any{"push": "disconnect", "code": "slow_consumer", "reason": DisconnectSlowConsumer.Reason}},
		{"reply with id", AppendReply(nil, 7, true, []byte(`{}`)),
			map[string]any{"id": 7.0, "result": map[string]any{}}},
		{"reply without id", AppendReply(nil, 0, false, []byte(`{}`)),
			map[string]any{"result": map[string]any{}}},
		{"offset reply", AppendOffsetReply(nil, -1, true, 9),
			map[string]any{"id": -1.0, "result": map[string]any{"offset": 9.0}}},
		{"error", AppendError(nil, 3, true, Errorf(CodeBadRequest, "bad %s", weird)),
			map[string]any{"id": 3.0, "error": map[string]any{"code": "bad_request", "message": "bad quo\"te \\ \n\t\x01 <tag> é \uFFFD"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			if err := json.Unmarshal(tc.got, &got); err != nil {
				t.Fatalf("%s is not JSON: %v", tc.got, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %s\n got %v\nwant %v", tc.got, got, tc.want)
			}
			for _, b := range tc.got {
				if b == '\n' {
					t.Fatalf("%q holds a raw newline: it would split a frame", tc.got)
				}
			}
		})
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	frame := []byte(`{"id":123,"op":"publish","channel":"bench","data":{"seq":1,"ts":1732770000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := DecodeCommand(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	data := json.RawMessage(`{"seq":1,"ts":1732770000000000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], "bench", 123456, "anon-1a2b3c4d", data)
	}
}

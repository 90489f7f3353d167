package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeServerObjectOfHubEncoders decodes what the hub's own encoders
// write, so the client's decoder cannot drift from them.
func TestDecodeServerObjectOfHubEncoders(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want ServerObject
	}{
		{
			name: "welcome",
			wire: AppendWelcome(nil, Welcome{Client: "c1", User: "anon-1", Node: "n", Version: "v"}),
			want: ServerObject{Push: PushWelcome, Client: "c1", User: "anon-1", Node: "n", Version: "v"},
		},
		{
			name: "message",
			wire: AppendMessage(nil, "room", 42, "alice", json.RawMessage(`{"text":"h\"i"}`)),
			want: ServerObject{Push: PushMessage, Channel: "room", Offset: 42, From: "alice", Data: json.RawMessage(`{"text":"h\"i"}`)},
		},
		{
			name: "message with null data",
			wire: AppendMessage(nil, "room", 1, "", json.RawMessage(`null`)),
			want: ServerObject{Push: PushMessage, Channel: "room", Offset: 1, Data: json.RawMessage(`null`)},
		},
		{
			name: "direct",
			wire: AppendDirect(nil, "bob", json.RawMessage(`"psst"`)),
			want: ServerObject{Push: PushDirect, From: "bob", Data: json.RawMessage(`"psst"`)},
		},
		{
			name: "join",
			wire: AppendJoinLeave(nil, true, "room", ClientInfo{Client: "c2", User: "u2"}),
			want: ServerObject{Push: PushJoin, Channel: "room", Client: "c2", User: "u2"},
		},
		{
			name: "leave",
			wire: AppendJoinLeave(nil, false, "room", ClientInfo{Client: "c2", User: "u2"}),
			want: ServerObject{Push: PushLeave, Channel: "room", Client: "c2", User: "u2"},
		},
		{
			name: "disconnect",
			wire: AppendDisconnect(nil, DisconnectShutdown),
			want: ServerObject{Push: PushDisconnect, Code: "shutdown", Reason: DisconnectShutdown.Reason},
		},
		{
			name: "reply with id",
			wire: AppendReply(nil, 7, true, []byte(`{}`)),
			want: ServerObject{ID: 7, HasID: true, Result: json.RawMessage(`{}`)},
		},
		{
			name: "reply without id",
			wire: AppendReply(nil, 0, false, []byte(`{"a":1}`)),
			want: ServerObject{Result: json.RawMessage(`{"a":1}`)},
		},
		{
			name: "publish reply",
			wire: AppendOffsetReply(nil, 3, true, 99),
			want: ServerObject{ID: 3, HasID: true, Result: json.RawMessage(`{"offset":99}`)},
		},
		{
			name: "error reply",
			wire: AppendError(nil, 9, true, Errorf(CodeTooManyRequests, "slow down")),
			want: ServerObject{ID: 9, HasID: true, Error: &Error{Code: CodeTooManyRequests, Message: "slow down"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeServerObject(tc.wire)
			if err != nil {
				t.Fatalf("DecodeServerObject(%s): %v", tc.wire, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodeServerObject(%s) =\n%+v, want\n%+v", tc.wire, got, tc.want)
			}
		})
	}
}

// TestResultsOfHubEncoders decodes reply results written by the hub's
// encoders into the client's result types.
func TestResultsOfHubEncoders(t *testing.T) {
	var pub PublishResult
	decodeResult(t, AppendOffsetReply(nil, 1, true, 5), &pub)
	if pub.Offset != 5 {
		t.Errorf("publish offset = %d, want 5", pub.Offset)
	}
	var pres PresenceResult
	decodeResult(t, AppendReplyValue(nil, 2, true, PresenceResult{Clients: []ClientInfo{{Client: "c", User: "u"}}}), &pres)
	if len(pres.Clients) != 1 || pres.Clients[0] != (ClientInfo{Client: "c", User: "u"}) {
		t.Errorf("presence = %+v", pres)
	}
	var sub SubscribeResult
	decodeResult(t, AppendReplyValue(nil, 3, true, map[string]any{"channel": "r", "offset": 4, "epoch": "e"}), &sub)
	if sub.Channel != "r" || sub.Offset != 4 || sub.Epoch != "e" || sub.Recovered != nil {
		t.Errorf("subscribe without recovered = %+v", sub)
	}
	decodeResult(t, AppendReplyValue(nil, 3, true, map[string]any{"channel": "r", "offset": 4, "epoch": "e", "recovered": true}), &sub)
	if sub.Recovered == nil || !*sub.Recovered {
		t.Errorf("subscribe with recovered = %+v", sub)
	}
}

func decodeResult(t *testing.T, wire []byte, v any) {
	t.Helper()
	o, err := DecodeServerObject(wire)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(o.Result, v); err != nil {
		t.Fatalf("result %s: %v", o.Result, err)
	}
}

// TestAppendCommandDecodesOnTheHub sends the client's encoding through the
// hub's decoder.
func TestAppendCommandDecodesOnTheHub(t *testing.T) {
	tests := []struct {
		name string
		cmd  ClientCommand
		want Command
	}{
		{"subscribe", ClientCommand{ID: 1, Op: OpSubscribe, Channel: "room"}, Command{ID: 1, HasID: true, Op: OpSubscribe, Channel: "room"}},
		{"subscribe since", ClientCommand{ID: 2, Op: OpSubscribe, Channel: "room", Since: &StreamPos{Offset: 4, Epoch: "e"}}, Command{ID: 2, HasID: true, Op: OpSubscribe, Channel: "room", Since: &StreamPos{Offset: 4, Epoch: "e"}}},
		{"subscribe last", ClientCommand{ID: 10, Op: OpSubscribe, Channel: "room", Last: 5}, Command{ID: 10, HasID: true, Op: OpSubscribe, Channel: "room", Last: 5}},
		{"history", ClientCommand{ID: 11, Op: OpHistory, Channel: "room", Limit: 50, Since: &StreamPos{Offset: 1, Epoch: "ab"}}, Command{ID: 11, HasID: true, Op: OpHistory, Channel: "room", Limit: 50, Since: &StreamPos{Offset: 1, Epoch: "ab"}}},
		{"refresh", ClientCommand{ID: 12, Op: OpRefresh, Token: "t.o.k"}, Command{ID: 12, HasID: true, Op: OpRefresh, Token: "t.o.k"}},
		{"publish", ClientCommand{ID: 3, Op: OpPublish, Channel: "dm#a,b", Data: json.RawMessage(`{"x":[1,2]}`)}, Command{ID: 3, HasID: true, Op: OpPublish, Channel: "dm#a,b", Data: json.RawMessage(`{"x":[1,2]}`)}},
		{"publish nil data is null", ClientCommand{ID: 4, Op: OpPublish, Channel: "c"}, Command{ID: 4, HasID: true, Op: OpPublish, Channel: "c", Data: json.RawMessage(`null`)}},
		{"publish data with line breaks", ClientCommand{ID: 5, Op: OpPublish, Channel: "c", Data: json.RawMessage("{\n \"a\": 1\n}")}, Command{ID: 5, HasID: true, Op: OpPublish, Channel: "c", Data: json.RawMessage(`{"a":1}`)}},
		{"publish keeps HTML characters", ClientCommand{ID: 9, Op: OpPublish, Channel: "c", Data: json.RawMessage(`"<b>&"`)}, Command{ID: 9, HasID: true, Op: OpPublish, Channel: "c", Data: json.RawMessage(`"<b>&"`)}},
		{"send", ClientCommand{ID: 6, Op: OpSend, To: "alice", Data: json.RawMessage(`"hi"`)}, Command{ID: 6, HasID: true, Op: OpSend, To: "alice", Data: json.RawMessage(`"hi"`)}},
		{"presence", ClientCommand{ID: 7, Op: OpPresence, Channel: "room"}, Command{ID: 7, HasID: true, Op: OpPresence, Channel: "room"}},
		{"ping without id", ClientCommand{Op: OpPing}, Command{Op: OpPing}},
		{"unsubscribe", ClientCommand{ID: 8, Op: OpUnsubscribe, Channel: "room"}, Command{ID: 8, HasID: true, Op: OpUnsubscribe, Channel: "room"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendCommand(nil, tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range b {
				if c == '\n' {
					t.Fatalf("encoded command has a line break: %s", b)
				}
			}
			var got []Command
			ForEachCommand(b, func(c Command, perr *Error) {
				if perr != nil {
					t.Fatalf("hub rejects %s: %v", b, perr)
				}
				got = append(got, c)
			})
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("hub decodes %s as %+v, want %+v", b, got, tc.want)
			}
		})
	}
}

func TestSplitServerFrame(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  []string
	}{
		{"one object", `{"push":"welcome"}`, []string{`{"push":"welcome"}`}},
		{"joined", "{\"id\":1,\"result\":{}}\n{\"push\":\"message\"}", []string{`{"id":1,"result":{}}`, `{"push":"message"}`}},
		{"trailing newline and blank line", "{\"a\":1}\n\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			SplitServerFrame([]byte(tc.frame), func(obj []byte) { got = append(got, string(obj)) })
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeServerObjectRejects(t *testing.T) {
	for _, s := range []string{``, `[]`, `null`, `{}`, `{"id":1.5,"result":{}}`, `{"push":1}`, `{"id":1}`} {
		if o, err := DecodeServerObject([]byte(s)); err == nil {
			t.Errorf("DecodeServerObject(%q) = %+v, want an error", s, o)
		}
	}
}

// FuzzDecodeServerObject checks that no input makes the client's decoder
// panic and that a decoded message or reply re-encodes with the hub's
// encoders to an object that decodes the same.
func FuzzDecodeServerObject(f *testing.F) {
	seeds := []string{
		`{"push":"welcome","client":"c","user":"u","node":"n","version":"v"}`,
		`{"push":"message","channel":"room","offset":42,"from":"a","data":{"t":"x"}}`,
		`{"push":"disconnect","code":"token_expired","reason":"r"}`,
		`{"id":1,"result":{"channel":"r","offset":1,"epoch":"e","recovered":true}}`,
		`{"id":2,"error":{"code":"unavailable","message":"m"}}`,
		`{"id":-3,"result":{}}`,
		`{"id":99999999999999999999,"result":{}}`, // id overflows int64
		`{"push":"message","offset":-1}`,          // negative offset
		`{"push":"x","data":}`,                    // truncated
		"\xff", `[]`, `null`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeServerObject(b)
		if err != nil {
			return
		}
		var again []byte
		switch {
		case o.Push == PushMessage && o.Data != nil:
			again = AppendMessage(nil, o.Channel, o.Offset, o.From, CompactData(o.Data))
		case o.Push == "" && o.Error != nil:
			again = AppendError(nil, o.ID, o.HasID, o.Error)
		default:
			return
		}
		o2, err := DecodeServerObject(again)
		if err != nil {
			t.Fatalf("re-decoding %s (from %s): %v", again, b, err)
		}
		if o2.ID != o.ID || o2.HasID != o.HasID || o2.Offset != o.Offset || o2.Push != o.Push {
			t.Fatalf("round trip changed %+v to %+v", o, o2)
		}
	})
}

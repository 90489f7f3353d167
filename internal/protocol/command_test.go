package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     Command
		wantCode Code
		wantMsg  string // substring of the error message
	}{
		{name: "subscribe", in: `{"id":1,"op":"subscribe","channel":"room"}`, want: Command{ID: 1, HasID: true, Op: OpSubscribe, Channel: "room"}},
		{name: "no id", in: `{"op":"ping"}`, want: Command{Op: OpPing}},
		{name: "null id", in: `{"id":null,"op":"ping"}`, want: Command{Op: OpPing}},
		{name: "negative id", in: `{"id":-7,"op":"ping"}`, want: Command{ID: -7, HasID: true, Op: OpPing}},
		{name: "unknown fields ignored", in: `{"id":2,"op":"ping","future":[1,2]}`, want: Command{ID: 2, HasID: true, Op: OpPing}},
		{name: "publish", in: `{"id":3,"op":"publish","channel":"a.b","data":{"x": [1, 2]}}`, want: Command{ID: 3, HasID: true, Op: OpPublish, Channel: "a.b", Data: json.RawMessage(`{"x": [1, 2]}`)}},
		{name: "publish null", in: `{"op":"publish","channel":"c","data":null}`, want: Command{Op: OpPublish, Channel: "c", Data: json.RawMessage(`null`)}},
		{name: "send", in: `{"op":"send","to":"alice","data":"hi"}`, want: Command{Op: OpSend, To: "alice", Data: json.RawMessage(`"hi"`)}},
		{name: "private channel", in: `{"op":"presence","channel":"dm#alice,bob"}`, want: Command{Op: OpPresence, Channel: "dm#alice,bob"}},
		{name: "all channel chars", in: `{"op":"unsubscribe","channel":"AZaz09_.:@#/-"}`, want: Command{Op: OpUnsubscribe, Channel: "AZaz09_.:@#/-"}},

		{name: "malformed", in: `{"op":`, wantCode: CodeBadRequest, wantMsg: "malformed JSON"},
		{name: "not an object", in: `[1,2]`, wantCode: CodeBadRequest, wantMsg: "want a JSON object"},
		{name: "string id", in: `{"id":"x","op":"ping"}`, wantCode: CodeBadRequest, wantMsg: "id: want an integer"},
		{name: "float id", in: `{"id":1.5,"op":"ping"}`, wantCode: CodeBadRequest, wantMsg: "id: want an integer"},
		{name: "missing op", in: `{"id":1}`, want: Command{ID: 1, HasID: true}, wantCode: CodeBadRequest, wantMsg: "op: missing"},
		{name: "unknown op", in: `{"id":1,"op":"fly"}`, want: Command{ID: 1, HasID: true}, wantCode: CodeBadRequest, wantMsg: `unknown op "fly"`},
		{name: "mistyped op", in: `{"id":1,"op":5}`, want: Command{ID: 1, HasID: true}, wantCode: CodeBadRequest, wantMsg: "op: want a string"},
		{name: "mistyped channel", in: `{"id":4,"op":"subscribe","channel":5}`, want: Command{ID: 4, HasID: true}, wantCode: CodeBadRequest, wantMsg: "channel: want a string"},
		{name: "missing channel", in: `{"op":"subscribe"}`, wantCode: CodeBadRequest, wantMsg: "channel: missing"},
		{name: "bad channel byte", in: `{"op":"subscribe","channel":"a b"}`, wantCode: CodeBadRequest, wantMsg: "invalid byte 0x20 at 1"},
		{name: "comma before hash", in: `{"op":"subscribe","channel":"a,b#c"}`, wantCode: CodeBadRequest, wantMsg: "invalid byte ',' at 1"},
		{name: "comma without hash", in: `{"op":"subscribe","channel":"a,b"}`, wantCode: CodeBadRequest, wantMsg: "invalid byte"},
		{name: "long channel", in: `{"op":"subscribe","channel":"` + strings.Repeat("x", 256) + `"}`, wantCode: CodeBadRequest, wantMsg: "256 bytes, want at most 255"},
		{name: "publish without data", in: `{"op":"publish","channel":"c"}`, wantCode: CodeBadRequest, wantMsg: "data: missing"},
		{name: "send without to", in: `{"op":"send","data":1}`, wantCode: CodeBadRequest, wantMsg: "to: missing"},
		{name: "send without data", in: `{"op":"send","to":"bob"}`, wantCode: CodeBadRequest, wantMsg: "data: missing"},

		{name: "subscribe since", in: `{"op":"subscribe","channel":"c","since":{"offset":7,"epoch":"ab12"}}`, want: Command{Op: OpSubscribe, Channel: "c", Since: &StreamPos{Offset: 7, Epoch: "ab12"}}},
		{name: "subscribe last", in: `{"op":"subscribe","channel":"c","last":10}`, want: Command{Op: OpSubscribe, Channel: "c", Last: 10}},
		{name: "history", in: `{"op":"history","channel":"c","limit":50}`, want: Command{Op: OpHistory, Channel: "c", Limit: 50}},
		{name: "history since", in: `{"op":"history","channel":"c","since":{"offset":0,"epoch":"e"}}`, want: Command{Op: OpHistory, Channel: "c", Since: &StreamPos{Epoch: "e"}}},
		{name: "refresh", in: `{"op":"refresh","token":"a.b.c"}`, want: Command{Op: OpRefresh, Token: "a.b.c"}},
		{name: "since and last", in: `{"op":"subscribe","channel":"c","last":1,"since":{"offset":1,"epoch":"e"}}`, wantCode: CodeBadRequest, wantMsg: "since or last, not both"},
		{name: "since without epoch", in: `{"op":"subscribe","channel":"c","since":{"offset":1}}`, wantCode: CodeBadRequest, wantMsg: "since.epoch"},
		{name: "since negative offset", in: `{"op":"subscribe","channel":"c","since":{"offset":-1,"epoch":"e"}}`, wantCode: CodeBadRequest, wantMsg: "offset"},
		{name: "since not an object", in: `{"op":"subscribe","channel":"c","since":5}`, wantCode: CodeBadRequest, wantMsg: "since"},
		{name: "negative last", in: `{"op":"subscribe","channel":"c","last":-1}`, wantCode: CodeBadRequest, wantMsg: "last: want 0 to"},
		{name: "huge limit", in: `{"op":"history","channel":"c","limit":99999999}`, wantCode: CodeBadRequest, wantMsg: "limit: want 0 to"},
		{name: "limit on subscribe", in: `{"op":"subscribe","channel":"c","limit":5}`, wantCode: CodeBadRequest, wantMsg: "not limit"},
		{name: "last on history", in: `{"op":"history","channel":"c","last":5}`, wantCode: CodeBadRequest, wantMsg: "not last"},
		{name: "refresh without token", in: `{"op":"refresh"}`, wantCode: CodeBadRequest, wantMsg: "token: missing"},
		{name: "refresh huge token", in: `{"op":"refresh","token":"` + strings.Repeat("t", MaxTokenLen+1) + `"}`, wantCode: CodeBadRequest, wantMsg: "token: 16385 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCommand([]byte(tc.in))
			if tc.wantCode != "" {
				if err == nil {
					t.Fatalf("DecodeCommand(%s) = %+v, want error %s", tc.in, got, tc.wantCode)
				}
				if err.Code != tc.wantCode || !strings.Contains(err.Message, tc.wantMsg) {
					t.Fatalf("error = %v, want code %s with %q", err, tc.wantCode, tc.wantMsg)
				}
				if got.ID != tc.want.ID || got.HasID != tc.want.HasID {
					t.Fatalf("recovered id = %d/%v, want %d/%v", got.ID, got.HasID, tc.want.ID, tc.want.HasID)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeCommand(%s): %v", tc.in, err)
			}
			if got.ID != tc.want.ID || got.HasID != tc.want.HasID || got.Op != tc.want.Op || got.Channel != tc.want.Channel || got.To != tc.want.To || string(got.Data) != string(tc.want.Data) ||
				!reflect.DeepEqual(got.Since, tc.want.Since) || got.Last != tc.want.Last || got.Limit != tc.want.Limit || got.Token != tc.want.Token {
				t.Fatalf("DecodeCommand(%s) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestForEachCommand(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		ops   []string // "" marks an error
	}{
		{name: "one", frame: `{"op":"ping"}`, ops: []string{"ping"}},
		{name: "several", frame: "{\"op\":\"ping\"}\n{\"op\":\"presence\",\"channel\":\"a\"}\n", ops: []string{"ping", "presence"}},
		{name: "blank lines and CRLF", frame: "\r\n{\"op\":\"ping\"}\r\n\n  \n{\"op\":\"ping\"}", ops: []string{"ping", "ping"}},
		{name: "bad line in the middle", frame: "{\"op\":\"ping\"}\nnope\n{\"op\":\"ping\"}", ops: []string{"ping", "", "ping"}},
		{name: "pretty-printed single command", frame: "{\n  \"op\": \"publish\",\n  \"channel\": \"c\",\n  \"data\": {\n    \"a\": 1\n  }\n}", ops: []string{"publish"}},
		{name: "empty", frame: "", ops: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ops []string
			ForEachCommand([]byte(tc.frame), func(c Command, err *Error) {
				if err != nil {
					ops = append(ops, "")
					return
				}
				ops = append(ops, c.Op)
			})
			if strings.Join(ops, ",") != strings.Join(tc.ops, ",") || len(ops) != len(tc.ops) {
				t.Fatalf("ops = %q, want %q", ops, tc.ops)
			}
		})
	}
}

func TestCompactDataRemovesLineBreaks(t *testing.T) {
	got := CompactData(json.RawMessage("{\n\"a\" : [1,\r\n 2]}"))
	if string(got) != `{"a":[1,2]}` {
		t.Fatalf("CompactData = %s", got)
	}
	same := json.RawMessage(`{"a": 1}`)
	if got := CompactData(same); &got[0] != &same[0] {
		t.Fatalf("CompactData copied data without line breaks")
	}
}

package protocol

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeCommand checks that no frame makes the decoder panic, that a
// decoded command is valid and encodes back to a command that decodes to
// the same value, and that error replies are always valid JSON.
func FuzzDecodeCommand(f *testing.F) {
	seeds := []string{
		`{"id":1,"op":"subscribe","channel":"room"}`,
		`{"id":3,"op":"publish","channel":"room","data":{"text":"hi"}}`,
		`{"op":"send","to":"alice","data":[1,null,"x"]}`,
		"{\"op\":\"ping\"}\n{\"op\":\"presence\",\"channel\":\"dm#a,b\"}",
		`{"id":1.5,"op":"ping"}`,                                              // non-integer id
		`{"id":"1","op":"ping"}`,                                              // string id
		`{"op":"publish","channel":"c","data":`,                               // truncated
		`{"op":"subscribe","channel":"\u0000"}`,                               // control byte in name
		"{\n\"op\":\"publish\",\n\"channel\":\"c\",\n\"data\":{\n\"a\":1}\n}", // pretty-printed
		`[]`, `null`, `"op"`, ``, "\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ForEachCommand(frame, func(cmd Command, perr *Error) {
			if perr != nil {
				reply := AppendError(nil, cmd.ID, cmd.HasID, perr)
				if !json.Valid(reply) {
					t.Fatalf("error reply is not JSON: %q", reply)
				}
				return
			}
			if cmd.Channel != "" && !ValidChannel(cmd.Channel) {
				t.Fatalf("accepted invalid channel %q", cmd.Channel)
			}
			if cmd.Data != nil && !json.Valid(cmd.Data) {
				t.Fatalf("accepted invalid data %q", cmd.Data)
			}
			for _, b := range cmd.Data {
				if b == '\n' || b == '\r' {
					t.Fatalf("data keeps a line break: %q", cmd.Data)
				}
			}
			round := map[string]any{"op": cmd.Op}
			if cmd.HasID {
				round["id"] = cmd.ID
			}
			if cmd.Channel != "" {
				round["channel"] = cmd.Channel
			}
			if cmd.To != "" {
				round["to"] = cmd.To
			}
			if cmd.Data != nil {
				round["data"] = cmd.Data
			}
			b, err := json.Marshal(round)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again, perr := DecodeCommand(b)
			if perr != nil {
				t.Fatalf("re-decoding %s: %v", b, perr)
			}
			if again.ID != cmd.ID || again.HasID != cmd.HasID || again.Op != cmd.Op || again.Channel != cmd.Channel || again.To != cmd.To {
				t.Fatalf("round trip changed the command: %+v -> %+v", cmd, again)
			}
		})
	})
}

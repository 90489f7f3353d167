package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// This file is the client's half of the protocol: encoding commands and
// decoding what the hub sends. The Go client (package client) and the
// command line use it; its tests check it against the hub's own encoders
// and decoder, so there is one definition of the wire format.

// MaxServerObject bounds one server object a client decodes. It is the
// hub's largest max_message_size plus room for the envelope; a client caps
// a whole frame at this size.
const MaxServerObject = 16 << 20

// StreamPos is a position in a channel's sequence: an offset and the epoch
// that names the sequence.
type StreamPos struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// ClientCommand is a command as a client sends it. Zero fields are left
// out, except Data, which a publish or send always carries ("null" when
// nil).
type ClientCommand struct {
	ID      int64           `json:"id,omitempty"`
	Op      string          `json:"op"`
	Channel string          `json:"channel,omitempty"`
	To      string          `json:"to,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Since   *StreamPos      `json:"since,omitempty"` // subscribe, history: recover after this position
	Last    int             `json:"last,omitempty"`  // subscribe: push the last N messages first
	Limit   int             `json:"limit,omitempty"` // history: at most this many messages
	Token   string          `json:"token,omitempty"` // refresh: the new token
}

// AppendCommand appends cmd as one compact JSON object. Data must be valid
// JSON; publish and send without Data send null.
func AppendCommand(dst []byte, cmd ClientCommand) ([]byte, error) {
	if (cmd.Op == OpPublish || cmd.Op == OpSend) && cmd.Data == nil {
		cmd.Data = json.RawMessage("null")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // data goes out as the caller wrote it, "<" and all
	if err := enc.Encode(cmd); err != nil {
		return dst, fmt.Errorf("protocol: encode %s: %w", cmd.Op, err)
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

// ServerObject is one decoded object the hub sends: a reply (HasID or
// Result or Error set) or a push (Push set). Only the fields of its kind
// are filled.
type ServerObject struct {
	ID     int64           `json:"-"`
	HasID  bool            `json:"-"`
	Result json.RawMessage `json:"result"` // success reply
	Error  *Error          `json:"error"`  // error reply

	Push    string          `json:"push"`    // push name; "" for a reply
	Channel string          `json:"channel"` // message, join, leave
	Offset  uint64          `json:"offset"`  // message
	From    string          `json:"from"`    // message, direct
	Data    json.RawMessage `json:"data"`    // message, direct
	Client  string          `json:"client"`  // welcome, join, leave
	User    string          `json:"user"`    // welcome, join, leave
	Node    string          `json:"node"`    // welcome
	Version string          `json:"version"` // welcome
	Code    string          `json:"code"`    // disconnect
	Reason  string          `json:"reason"`  // disconnect
}

// IsReply reports whether o answers a command.
func (o *ServerObject) IsReply() bool { return o.Push == "" }

// ErrNotObject is returned for a server line that is not a JSON object of
// the protocol.
var ErrNotObject = errors.New("protocol: server sent something that is not a protocol object")

// DecodeServerObject decodes one server object.
func DecodeServerObject(b []byte) (ServerObject, error) {
	var w struct {
		ServerObject
		ID json.RawMessage `json:"id"`
	}
	if len(b) > MaxServerObject {
		return ServerObject{}, fmt.Errorf("%w: %d bytes, limit %d", ErrNotObject, len(b), MaxServerObject)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return ServerObject{}, fmt.Errorf("%w: %w", ErrNotObject, err)
	}
	o := w.ServerObject
	if len(w.ID) > 0 && string(w.ID) != "null" {
		var c Command
		if perr := parseID(w.ID, &c); perr != nil {
			return ServerObject{}, fmt.Errorf("%w: %s", ErrNotObject, perr.Message)
		}
		o.ID, o.HasID = c.ID, true
	}
	if o.Push == "" && o.Result == nil && o.Error == nil {
		return ServerObject{}, fmt.Errorf("%w: neither push, result nor error", ErrNotObject)
	}
	return o, nil
}

// SplitServerFrame calls fn for each object of a frame from the hub. A
// frame holds one object, or several joined by "\n" (the hub joins them
// for clients that ask with frames=joined); blank lines are skipped.
func SplitServerFrame(frame []byte, fn func(obj []byte)) {
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			fn(line)
		}
	}
}

// SubscribeResult is the result of a subscribe. Recovered is true only
// when the hub said so: a subscribe with since whose every missed message
// follows the reply.
type SubscribeResult struct {
	Channel   string `json:"channel"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Recovered *bool  `json:"recovered,omitempty"` // nil: the hub did not say (no history)
}

// PublishResult is the result of a publish.
type PublishResult struct {
	Offset uint64 `json:"offset"`
}

// SendResult is the result of a send.
type SendResult struct {
	Delivered int `json:"delivered"`
}

// PresenceResult is the result of a presence.
type PresenceResult struct {
	Clients []ClientInfo `json:"clients"`
}

// HistoryResult is the result of a history: the channel's position and
// message pushes, oldest first.
type HistoryResult struct {
	Epoch    string            `json:"epoch"`
	Offset   uint64            `json:"offset"`
	Messages []json.RawMessage `json:"messages"`
}

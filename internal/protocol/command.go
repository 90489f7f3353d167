package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Ops a client may send.
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPublish     = "publish"
	OpSend        = "send"
	OpPresence    = "presence"
	OpPing        = "ping"
	OpHistory     = "history"
	OpRefresh     = "refresh"
)

// Limits of command fields.
const (
	MaxEpochLen = 64       // the longest epoch a since may name
	MaxTokenLen = 16 << 10 // the longest token a refresh may carry
)

// opList names the ops in error messages.
const opList = "subscribe, unsubscribe, publish, send, presence, history, refresh, ping"

// MaxUserLen is the longest user id a "send" may address.
const MaxUserLen = 255

// Command is one decoded, validated client command.
type Command struct {
	ID      int64           // echoed in the reply when HasID
	HasID   bool            // the command carried an integer "id"
	Op      string          // one of the Op constants
	Channel string          // subscribe, unsubscribe, publish, presence
	To      string          // send: the addressed user id
	Data    json.RawMessage // publish, send: compact JSON, never nil
	Since   *StreamPos      // subscribe, history: the position after which to recover or read
	Last    int             // subscribe: push the last Last messages first
	Limit   int             // history: at most this many messages; 0 means all
	Token   string          // refresh: the new token
}

// wireCommand is the JSON shape of a command before validation. Unknown
// fields are ignored so that newer clients can talk to older hubs.
type wireCommand struct {
	ID      json.RawMessage `json:"id"`
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	To      string          `json:"to"`
	Data    json.RawMessage `json:"data"`
	Since   *StreamPos      `json:"since"`
	Last    *int            `json:"last"`
	Limit   *int            `json:"limit"`
	Token   *string         `json:"token"`
}

// ForEachCommand calls fn for each command in a client frame, in order. A
// frame holds one JSON object, or several separated by "\n" (blank lines are
// skipped). A frame that is a single JSON value spread over several lines is
// one command. For a command that cannot be decoded, fn gets the zero
// Command with whatever id could be recovered (ID, HasID) and a non-nil
// *Error with code bad_request; decoding goes on with the next line.
func ForEachCommand(frame []byte, fn func(Command, *Error)) {
	if bytes.IndexByte(frame, '\n') >= 0 && json.Valid(frame) {
		fn(DecodeCommand(frame))
		return
	}
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fn(DecodeCommand(line))
	}
}

// DecodeCommand decodes and validates one command. On failure it returns the
// id it could recover, so the error reply can still carry it.
func DecodeCommand(b []byte) (Command, *Error) {
	var w wireCommand
	err := json.Unmarshal(b, &w)
	var cmd Command
	if idErr := parseID(w.ID, &cmd); idErr != nil {
		return cmd, idErr
	}
	if err != nil {
		return cmd, decodeError(err)
	}
	cmd.Op = w.Op
	switch w.Op {
	case OpSubscribe, OpHistory:
		if e := checkChannel(w.Channel); e != nil {
			return cmd, e
		}
		cmd.Channel = w.Channel
		if e := checkSince(w.Since); e != nil {
			return cmd, e
		}
		cmd.Since = w.Since
		if w.Op == OpSubscribe {
			if w.Limit != nil {
				return cmd, Errorf(CodeBadRequest, "limit: a subscribe takes since or last, not limit")
			}
			n, e := count("last", w.Last)
			if e != nil {
				return cmd, e
			}
			if n > 0 && w.Since != nil {
				return cmd, Errorf(CodeBadRequest, "last: a subscribe takes since or last, not both")
			}
			cmd.Last = n
		} else {
			if w.Last != nil {
				return cmd, Errorf(CodeBadRequest, "last: a history takes limit, not last")
			}
			n, e := count("limit", w.Limit)
			if e != nil {
				return cmd, e
			}
			cmd.Limit = n
		}
	case OpUnsubscribe, OpPresence:
		if e := checkChannel(w.Channel); e != nil {
			return cmd, e
		}
		cmd.Channel = w.Channel
	case OpRefresh:
		if w.Token == nil || *w.Token == "" {
			return cmd, Errorf(CodeBadRequest, "token: missing; a refresh carries the new token")
		}
		if len(*w.Token) > MaxTokenLen {
			return cmd, Errorf(CodeBadRequest, "token: %d bytes, want at most %d", len(*w.Token), MaxTokenLen)
		}
		cmd.Token = *w.Token
	case OpPublish:
		if e := checkChannel(w.Channel); e != nil {
			return cmd, e
		}
		if w.Data == nil {
			return cmd, Errorf(CodeBadRequest, "data: missing (use null to send no value)")
		}
		cmd.Channel = w.Channel
		cmd.Data = CompactData(w.Data)
	case OpSend:
		if e := CheckUser(w.To); e != nil {
			return cmd, &Error{Code: CodeBadRequest, Message: "to: " + e.Message}
		}
		if w.Data == nil {
			return cmd, Errorf(CodeBadRequest, "data: missing (use null to send no value)")
		}
		cmd.To = w.To
		cmd.Data = CompactData(w.Data)
	case OpPing:
	case "":
		return cmd, Errorf(CodeBadRequest, "op: missing; want one of "+opList)
	default:
		return cmd, Errorf(CodeBadRequest, "op: unknown op %q; want one of "+opList, truncate(w.Op))
	}
	return cmd, nil
}

// checkSince validates a since position: an epoch is required (a client
// that never saw one has nothing to recover).
func checkSince(p *StreamPos) *Error {
	if p == nil {
		return nil
	}
	if p.Epoch == "" || len(p.Epoch) > MaxEpochLen {
		return Errorf(CodeBadRequest, "since.epoch: want the epoch of a subscribe reply or message (1 to %d bytes), got %q", MaxEpochLen, truncate(p.Epoch))
	}
	return nil
}

// maxCount bounds last and limit; history never holds more.
const maxCount = 1 << 20

// count validates an optional non-negative count field.
func count(name string, v *int) (int, *Error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 || *v > maxCount {
		return 0, Errorf(CodeBadRequest, "%s: want 0 to %d, got %d", name, maxCount, *v)
	}
	return *v, nil
}

func parseID(raw json.RawMessage, cmd *Command) *Error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	id, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return Errorf(CodeBadRequest, "id: want an integer, got %s", truncate(string(raw)))
	}
	cmd.ID, cmd.HasID = id, true
	return nil
}

func decodeError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return Errorf(CodeBadRequest, "%s: want a %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	if errors.As(err, &typeErr) {
		return Errorf(CodeBadRequest, "command: want a JSON object, got %s", typeErr.Value)
	}
	return Errorf(CodeBadRequest, "malformed JSON: %s", trimJSONPrefix(err.Error()))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "JSON value"
	}
	return goKind
}

func trimJSONPrefix(s string) string {
	return truncate(string(bytes.TrimPrefix([]byte(s), []byte("json: "))))
}

// truncate shortens untrusted text quoted back in error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// CompactData returns data without insignificant whitespace when it holds a
// line break, so that it never splits a "\n"-separated frame. data must be
// valid JSON.
func CompactData(data json.RawMessage) json.RawMessage {
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		return data
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return data // unreachable for valid JSON
	}
	return buf.Bytes()
}

// MaxChannelLen is the longest channel name in bytes.
const MaxChannelLen = 255

// ValidChannel reports whether name is a valid channel name: 1 to 255 bytes
// of A-Z a-z 0-9 _ . : @ # / - (and "," after the last "#", which names the
// users of a private channel).
func ValidChannel(name string) bool { return checkChannel(name) == nil }

func checkChannel(name string) *Error {
	if name == "" {
		return Errorf(CodeBadRequest, "channel: missing")
	}
	if len(name) > MaxChannelLen {
		return Errorf(CodeBadRequest, "channel: %d bytes, want at most %d", len(name), MaxChannelLen)
	}
	lastHash := -1
	for i := 0; i < len(name); i++ {
		if name[i] == '#' {
			lastHash = i
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if channelByte[c] || (c == ',' && lastHash >= 0 && i > lastHash) {
			continue
		}
		return Errorf(CodeBadRequest, "channel: invalid byte %s at %d; allowed are A-Z a-z 0-9 _ . : @ # / -", describeByte(c), i)
	}
	return nil
}

var channelByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "_.:@#/-" {
		t[c] = true
	}
	return t
}()

// CheckUser validates a user id given by a client or the API: 1 to 255 bytes.
func CheckUser(user string) *Error {
	if user == "" {
		return Errorf(CodeBadRequest, "missing user id")
	}
	if len(user) > MaxUserLen {
		return Errorf(CodeBadRequest, "user id is %d bytes, want at most %d", len(user), MaxUserLen)
	}
	return nil
}

// CheckChannel validates a channel name; the error names the field "channel".
func CheckChannel(name string) *Error { return checkChannel(name) }

func describeByte(c byte) string {
	if c > 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("0x%02x", c)
}

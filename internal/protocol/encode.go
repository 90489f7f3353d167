package protocol

import (
	"encoding/json"
	"strconv"
)

// Push names of protocol v1.
const (
	PushWelcome    = "welcome"
	PushMessage    = "message"
	PushDirect     = "direct"
	PushJoin       = "join"
	PushLeave      = "leave"
	PushDisconnect = "disconnect"
)

// ClientInfo names one connection and its user, as in presence replies and
// join/leave pushes.
type ClientInfo struct {
	Client string `json:"client"`
	User   string `json:"user"`
}

// Welcome is the first push on every connection.
type Welcome struct {
	Client  string
	User    string
	Node    string
	Version string
}

// The Append functions encode server frames objects by hand: they sit on the
// fan-out path, where each message is encoded once and shared by every
// subscriber. data arguments must be compact, valid JSON.

// AppendWelcome appends the welcome push.
func AppendWelcome(dst []byte, w Welcome) []byte {
	dst = append(dst, `{"push":"welcome","client":`...)
	dst = AppendString(dst, w.Client)
	dst = append(dst, `,"user":`...)
	dst = AppendString(dst, w.User)
	dst = append(dst, `,"node":`...)
	dst = AppendString(dst, w.Node)
	dst = append(dst, `,"version":`...)
	dst = AppendString(dst, w.Version)
	return append(dst, '}')
}

// AppendMessage appends a channel message push.
func AppendMessage(dst []byte, channel string, offset uint64, from string, data json.RawMessage) []byte {
	dst = append(dst, `{"push":"message","channel":`...)
	dst = AppendString(dst, channel)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, offset, 10)
	dst = append(dst, `,"from":`...)
	dst = AppendString(dst, from)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendDirect appends a direct message push.
func AppendDirect(dst []byte, from string, data json.RawMessage) []byte {
	dst = append(dst, `{"push":"direct","from":`...)
	dst = AppendString(dst, from)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendJoinLeave appends a join push (join true) or a leave push.
func AppendJoinLeave(dst []byte, join bool, channel string, c ClientInfo) []byte {
	if join {
		dst = append(dst, `{"push":"join","channel":`...)
	} else {
		dst = append(dst, `{"push":"leave","channel":`...)
	}
	dst = AppendString(dst, channel)
	dst = append(dst, `,"client":`...)
	dst = AppendString(dst, c.Client)
	dst = append(dst, `,"user":`...)
	dst = AppendString(dst, c.User)
	return append(dst, '}')
}

// AppendDisconnect appends a disconnect push.
func AppendDisconnect(dst []byte, d Disconnect) []byte {
	dst = append(dst, `{"push":"disconnect","code":`...)
	dst = AppendString(dst, d.Code)
	dst = append(dst, `,"reason":`...)
	dst = AppendString(dst, d.Reason)
	return append(dst, '}')
}

// AppendReply appends a success reply. result must be compact, valid JSON;
// the id key is present only when hasID.
func AppendReply(dst []byte, id int64, hasID bool, result []byte) []byte {
	dst = appendID(dst, id, hasID)
	dst = append(dst, `"result":`...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// AppendReplyValue is AppendReply with a result marshalled from v.
func AppendReplyValue(dst []byte, id int64, hasID bool, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return AppendError(dst, id, hasID, Errorf(CodeInternal, "cannot encode reply"))
	}
	return AppendReply(dst, id, hasID, b)
}

// AppendOffsetReply appends the reply to a publish: {"result":{"offset":n}}.
func AppendOffsetReply(dst []byte, id int64, hasID bool, offset uint64) []byte {
	dst = appendID(dst, id, hasID)
	dst = append(dst, `"result":{"offset":`...)
	dst = strconv.AppendUint(dst, offset, 10)
	return append(dst, "}}"...)
}

// AppendError appends an error reply.
func AppendError(dst []byte, id int64, hasID bool, e *Error) []byte {
	dst = appendID(dst, id, hasID)
	dst = append(dst, `"error":{"code":`...)
	dst = AppendString(dst, string(e.Code))
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, e.Message)
	return append(dst, "}}"...)
}

func appendID(dst []byte, id int64, hasID bool) []byte {
	if !hasID {
		return append(dst, '{')
	}
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, ',')
}

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, _ := json.Marshal(s) // rare: escaping needed; cannot fail for a string
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

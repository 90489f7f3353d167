package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// Dialect is how the load generator speaks one server's client protocol
// over WebSocket text frames. The generator only connects, subscribes,
// publishes and reads; a dialect builds those commands and sorts what the
// server sends into events. Netkit speaks netkit hub protocol v1; other
// servers get their own (bench/centrifugo has Centrifugo's).
type Dialect interface {
	// Name names the server kind in reports: "netkit".
	Name() string
	// URL returns the URL a client with token (a JWT; "" for none) dials:
	// base, or base with the token in its query if the server takes it
	// there.
	URL(base, token string) (string, error)
	// Hello appends the command a client sends as soon as the WebSocket is
	// open, with command id id and token if the server takes it there, or
	// returns dst unchanged if the server speaks first. Either way the
	// connection is ready at an EventReady.
	Hello(dst []byte, id uint64, token string) []byte
	// Subscribe appends a command that subscribes to channel.
	Subscribe(dst []byte, id uint64, channel string) []byte
	// SubscribeSince appends a command that subscribes to channel and asks
	// the server to recover the messages after since.
	SubscribeSince(dst []byte, id uint64, channel string, since Position) []byte
	// SubscribeResult reads the reply to a subscribe (an EventReply's
	// Text).
	SubscribeResult(reply []byte) (SubscribeResult, error)
	// Publish appends a command that publishes data, a JSON value, to
	// channel.
	Publish(dst []byte, id uint64, channel string, data []byte) []byte
	// Pong appends the answer to an EventPing.
	Pong(dst []byte) []byte
	// AppendEvents appends an event for each object of a server frame, in
	// order. The events' slices alias frame.
	AppendEvents(dst []Event, frame []byte) []Event
}

// EventKind says what a server object means to the generator.
type EventKind uint8

// Kinds of events.
const (
	EventOther       EventKind = iota // nothing to act on: join, leave, unknown
	EventReady                        // the server accepted the connection
	EventReply                        // a command with ID succeeded; Text is the whole object
	EventError                        // a command with ID failed; Text says why
	EventPublication                  // a message on a subscribed channel; Data is its payload
	EventPing                         // the server wants a Pong
	EventDisconnect                   // the server is closing the connection; Text says why
	EventLeave                        // another client left a subscribed channel; Client says which
)

// Event is one server object, sorted by a Dialect.
type Event struct {
	Kind EventKind
	ID   uint64 // EventReply, EventError: the command's id
	// EventPublication: the published JSON value from its first byte; it
	// may run on past the value's end.
	Data []byte
	Text []byte // EventReply, EventError, EventDisconnect: the whole object
	// Client is the server's id of a client, if the dialect knows it:
	// EventReady, this connection's; EventLeave, the one that left.
	Client []byte
}

// Netkit is the dialect of netkit hub protocol v1 (docs/protocol.md). The
// hub writes every object with its keys in a fixed order, so prefixes are
// enough to sort them.
type Netkit struct{}

// Name returns "netkit".
func (Netkit) Name() string { return "netkit" }

// Position is where a subscriber is in a channel's stream: the offset of
// the last message it has and the stream's epoch.
type Position struct {
	Offset uint64
	Epoch  string
}

// SubscribeResult is what a subscribe's reply says.
type SubscribeResult struct {
	Position Position // the channel's current position
	// Recovered is the server's answer to a SubscribeSince: whether it
	// recovered every message after since. False for a plain subscribe.
	Recovered bool
	// Publications counts the messages the reply itself carries (a server
	// that puts recovered messages in the reply, as Centrifugo does) and,
	// once a connection has read the reply, those that followed it in the
	// same frame. netkit pushes recovered messages in frames of their own
	// after the reply.
	Publications int
}

// URL returns base with token as its "token" query parameter, or base if
// token is "".
func (Netkit) URL(base, token string) (string, error) {
	if token == "" {
		return base, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("url: %w", err)
	}
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Hello returns dst: the hub greets first, with a welcome push; the token
// goes in the URL.
func (Netkit) Hello(dst []byte, _ uint64, _ string) []byte { return dst }

// Subscribe appends {"id":1,"op":"subscribe","channel":"room"}.
func (Netkit) Subscribe(dst []byte, id uint64, channel string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"op":"subscribe","channel":`...)
	dst = strconv.AppendQuote(dst, channel)
	return append(dst, '}')
}

// SubscribeSince appends {"id":1,"op":"subscribe","channel":"room",
// "since":{"offset":41,"epoch":"e"}}.
func (Netkit) SubscribeSince(dst []byte, id uint64, channel string, since Position) []byte {
	dst = Netkit{}.Subscribe(dst, id, channel)
	dst = append(dst[:len(dst)-1], `,"since":{"offset":`...)
	dst = strconv.AppendUint(dst, since.Offset, 10)
	dst = append(dst, `,"epoch":`...)
	dst = strconv.AppendQuote(dst, since.Epoch)
	return append(dst, "}}"...)
}

// SubscribeResult reads {"id":1,"result":{"channel":"room","offset":44,
// "epoch":"e","recovered":true}}.
func (Netkit) SubscribeResult(reply []byte) (SubscribeResult, error) {
	var v struct {
		Result *struct {
			Offset    uint64 `json:"offset"`
			Epoch     string `json:"epoch"`
			Recovered bool   `json:"recovered"`
		} `json:"result"`
	}
	if err := json.Unmarshal(reply, &v); err != nil || v.Result == nil {
		return SubscribeResult{}, fmt.Errorf("subscribe reply: want {\"result\":{\"offset\":...}}, got %.200s", reply)
	}
	r := v.Result
	return SubscribeResult{Position: Position{Offset: r.Offset, Epoch: r.Epoch}, Recovered: r.Recovered}, nil
}

// Publish appends {"id":1,"op":"publish","channel":"room","data":...}.
func (Netkit) Publish(dst []byte, id uint64, channel string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"op":"publish","channel":`...)
	dst = strconv.AppendQuote(dst, channel)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// Pong returns dst: the hub pings with WebSocket ping frames, which the
// WebSocket library answers.
func (Netkit) Pong(dst []byte) []byte { return dst }

var (
	nkMessage    = []byte(`{"push":"message",`)
	nkWelcome    = []byte(`{"push":"welcome",`)
	nkDisconnect = []byte(`{"push":"disconnect",`)
	nkLeave      = []byte(`{"push":"leave",`)
	nkClient     = []byte(`"client":"`)
	nkID         = []byte(`{"id":`)
	nkData       = []byte(`,"data":`)
	nkError      = []byte(`,"error":`)
)

// AppendEvents sorts the "\n"-separated objects of a hub frame.
func (Netkit) AppendEvents(dst []Event, frame []byte) []Event {
	for obj := range bytes.SplitSeq(frame, []byte{'\n'}) {
		if len(obj) > 0 {
			dst = append(dst, netkitEvent(obj))
		}
	}
	return dst
}

func netkitEvent(obj []byte) Event {
	switch {
	case bytes.HasPrefix(obj, nkMessage):
		// channel, offset and from come first; none can hold `,"data":`
		// unescaped.
		if i := bytes.Index(obj, nkData); i >= 0 {
			return Event{Kind: EventPublication, Data: obj[i+len(nkData):]}
		}
	case bytes.HasPrefix(obj, nkID):
		id, rest, ok := parseUint(obj[len(nkID):])
		if !ok {
			break
		}
		if bytes.HasPrefix(rest, nkError) {
			return Event{Kind: EventError, ID: id, Text: obj}
		}
		return Event{Kind: EventReply, ID: id, Text: obj}
	case bytes.HasPrefix(obj, nkWelcome):
		return Event{Kind: EventReady, Client: stringAfter(obj, nkClient)}
	case bytes.HasPrefix(obj, nkDisconnect):
		return Event{Kind: EventDisconnect, Text: obj}
	case bytes.HasPrefix(obj, nkLeave):
		// The channel comes first; a name cannot hold `"client":"`
		// unescaped.
		return Event{Kind: EventLeave, Client: stringAfter(obj, nkClient), Text: obj}
	}
	return Event{Kind: EventOther, Text: obj}
}

// stringAfter returns the JSON string that the first key (ending in its
// opening quote) in obj starts, up to its closing quote, or nil. It is for
// values without escapes, such as the hub's client ids.
func stringAfter(obj, key []byte) []byte {
	i := bytes.Index(obj, key)
	if i < 0 {
		return nil
	}
	v := obj[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

var (
	keyCode    = []byte(`"code":`)
	keyCodeStr = []byte(`"code":"`)
)

// disconnectCode returns the code of a disconnect object, a string
// ("slow_consumer") or a number (Centrifugo's 3008), or "" if it has none.
func disconnectCode(obj []byte) string {
	if s := stringAfter(obj, keyCodeStr); s != nil {
		return string(s)
	}
	if n, ok := uintAfter(obj, keyCode); ok {
		return strconv.FormatUint(n, 10)
	}
	return ""
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/netkit/netkit/internal/bench"
)

// dialect is Centrifugo's bidirectional JSON client protocol (v2, as in
// Centrifugo v6): commands {"id":1,"connect":{}}, {"id":2,"subscribe":
// {"channel":"bench"}}, {"id":3,"publish":{"channel":"bench","data":...}};
// replies carry the command's id and a result named like it, or "error";
// publications arrive as {"push":{"channel":"bench","pub":{"data":...}}};
// the server pings with {} and wants {} back. Several objects may share a
// frame, separated by "\n". A token goes in connect; recovery is a
// subscribe with "recover":true, "offset" and "epoch", and the recovered
// publications come in its reply.
type dialect struct{}

func (dialect) Name() string { return "centrifugo" }

// URL returns base: the token goes in the connect command.
func (dialect) URL(base, _ string) (string, error) { return base, nil }

func (dialect) Hello(dst []byte, id uint64, token string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	if token == "" {
		return append(dst, `,"connect":{}}`...)
	}
	dst = append(dst, `,"connect":{"token":`...)
	dst = strconv.AppendQuote(dst, token)
	return append(dst, "}}"...)
}

func (d dialect) SubscribeSince(dst []byte, id uint64, channel string, since bench.Position) []byte {
	dst = d.Subscribe(dst, id, channel)
	dst = append(dst[:len(dst)-2], `,"recover":true,"offset":`...)
	dst = strconv.AppendUint(dst, since.Offset, 10)
	dst = append(dst, `,"epoch":`...)
	dst = strconv.AppendQuote(dst, since.Epoch)
	return append(dst, "}}"...)
}

// SubscribeResult reads {"id":2,"subscribe":{"recoverable":true,
// "epoch":"e","offset":100,"recovered":true,"publications":[...]}}.
func (dialect) SubscribeResult(reply []byte) (bench.SubscribeResult, error) {
	var v struct {
		Subscribe *struct {
			Offset       uint64            `json:"offset"`
			Epoch        string            `json:"epoch"`
			Recovered    bool              `json:"recovered"`
			Publications []json.RawMessage `json:"publications"`
		} `json:"subscribe"`
	}
	if err := json.Unmarshal(reply, &v); err != nil || v.Subscribe == nil {
		return bench.SubscribeResult{}, fmt.Errorf("subscribe reply: want {\"subscribe\":{...}}, got %.200s", reply)
	}
	r := v.Subscribe
	return bench.SubscribeResult{
		Position:     bench.Position{Offset: r.Offset, Epoch: r.Epoch},
		Recovered:    r.Recovered,
		Publications: len(r.Publications),
	}, nil
}

func (dialect) Subscribe(dst []byte, id uint64, channel string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"subscribe":{"channel":`...)
	dst = strconv.AppendQuote(dst, channel)
	return append(dst, "}}"...)
}

func (dialect) Publish(dst []byte, id uint64, channel string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"publish":{"channel":`...)
	dst = strconv.AppendQuote(dst, channel)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, "}}"...)
}

func (dialect) Pong(dst []byte) []byte { return append(dst, "{}"...) }

var (
	cfPush       = []byte(`{"push":`)
	cfID         = []byte(`{"id":`)
	cfPub        = []byte(`"pub":`)
	cfData       = []byte(`"data":`)
	cfDisconnect = []byte(`"disconnect":`)
	cfError      = []byte(`,"error":`)
	cfConnect    = []byte(`,"connect":`)
)

func (dialect) AppendEvents(dst []bench.Event, frame []byte) []bench.Event {
	for obj := range bytes.SplitSeq(frame, []byte{'\n'}) {
		if len(obj) > 0 {
			dst = append(dst, event(obj))
		}
	}
	return dst
}

func event(obj []byte) bench.Event {
	switch {
	case len(obj) == 2 && obj[0] == '{' && obj[1] == '}':
		return bench.Event{Kind: bench.EventPing}
	case bytes.HasPrefix(obj, cfPush):
		// {"push":{"channel":"bench","pub":{"data":{...},"info":{...}}}}
		if i := bytes.Index(obj, cfPub); i >= 0 {
			if j := bytes.Index(obj[i:], cfData); j >= 0 {
				return bench.Event{Kind: bench.EventPublication, Data: obj[i+j+len(cfData):]}
			}
		}
		if bytes.Contains(obj, cfDisconnect) {
			return bench.Event{Kind: bench.EventDisconnect, Text: obj}
		}
	case bytes.HasPrefix(obj, cfID):
		id, rest := parseUint(obj[len(cfID):])
		switch {
		case bytes.HasPrefix(rest, cfError):
			return bench.Event{Kind: bench.EventError, ID: id, Text: obj}
		case bytes.HasPrefix(rest, cfConnect):
			return bench.Event{Kind: bench.EventReady}
		default:
			return bench.Event{Kind: bench.EventReply, ID: id, Text: obj}
		}
	}
	return bench.Event{Kind: bench.EventOther, Text: obj}
}

// parseUint parses the decimal digits at the start of b.
func parseUint(b []byte) (uint64, []byte) {
	var v uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	return v, b[i:]
}

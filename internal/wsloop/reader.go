package wsloop

import (
	"encoding/binary"
	"unicode/utf8"
)

// kind is what the reader found next in a client's byte stream.
type kind int

const (
	needMore  kind = iota // no whole frame yet
	gotText               // a whole text message, valid UTF-8
	gotBinary             // a whole binary message
	gotPing               // a ping; payload is its application data
	gotPong               // a pong
	gotClose              // a valid close frame; code 0 when it had no status
	gotError              // a violation: reason says which close to send
)

// event is one thing the reader found. payload aliases the input or the
// reader's message buffer and is valid until the next call.
type event struct {
	kind    kind
	payload []byte
	code    int    // gotClose: the peer's status, 0 for none
	reason  Reason // gotError
	detail  string // gotError: what was wrong, for logs and tests
}

// reader decodes the frames a client sends (RFC 6455 section 5): it checks
// framing, assembles fragmented messages, validates UTF-8 and close frames,
// and enforces the message size limit as soon as a frame header shows it is
// exceeded. It does no I/O: the caller feeds it bytes. Both connection
// paths use it, so they agree on every byte.
type reader struct {
	max   int64  // largest message payload
	msg   []byte // payload of a fragmented message being assembled, at most max bytes
	msgOp byte   // its opcode; 0 when none is being assembled
}

// next decodes the first event in data and returns it with the number of
// bytes it used. A frame's payload is unmasked in place. With needMore the
// caller drops the used bytes (fragments the reader absorbed) and keeps
// the rest for the next call. After gotError the stream cannot be decoded
// further.
func (r *reader) next(data []byte) (ev event, used int) {
	for {
		h, ok, err := parseHeader(data[used:])
		if err != nil && err != errLengthTopBit {
			return event{kind: gotError, reason: ReasonProtocol, detail: err.Error()}, len(data)
		}
		if len(data)-used < 2 {
			return event{kind: needMore}, used
		}
		// The first two bytes give the opcode: a fragment out of sequence
		// is refused without waiting for the rest of the header.
		switch {
		case h.op == opContinuation && r.msgOp == 0:
			return event{kind: gotError, reason: ReasonProtocol, detail: "continuation without a message"}, len(data)
		case (h.op == opText || h.op == opBinary) && r.msgOp != 0:
			return event{kind: gotError, reason: ReasonProtocol, detail: "new message inside a fragmented one"}, len(data)
		case err != nil: // only now: the checks above come first, whatever the length says
			return event{kind: gotError, reason: ReasonProtocol, detail: err.Error()}, len(data)
		case !ok:
			return event{kind: needMore}, used
		case h.op < opClose && int64(len(r.msg))+h.length > r.max:
			return event{kind: gotError, reason: ReasonTooLarge, detail: "message too large"}, len(data)
		}
		if int64(len(data)-used-h.size) < h.length {
			return event{kind: needMore}, used
		}
		payload := data[used+h.size : used+h.size+int(h.length)]
		used += h.size + int(h.length)
		unmask(payload, h.mask)
		ev := r.frame(h, payload)
		if ev.kind != needMore {
			return ev, used
		}
		// A fragment was absorbed: go on with the next frame.
	}
}

func (r *reader) frame(h header, payload []byte) event {
	switch h.op {
	case opPing:
		return event{kind: gotPing, payload: payload}
	case opPong:
		return event{kind: gotPong, payload: payload}
	case opClose:
		return closeEvent(payload)
	case opText, opBinary: // next has checked that no message is being assembled
		if !h.fin {
			r.msgOp = h.op
			r.msg = append(r.msg[:0], payload...)
			return event{kind: needMore}
		}
		return message(h.op, payload)
	default: // opContinuation of a message being assembled; parseHeader refuses other opcodes
		r.msg = append(r.msg, payload...)
		if !h.fin {
			return event{kind: needMore}
		}
		op, msg := r.msgOp, r.msg
		r.msgOp, r.msg = 0, nil // the message is the caller's until the next call
		return message(op, msg)
	}
}

func message(op byte, msg []byte) event {
	if op == opBinary {
		return event{kind: gotBinary, payload: msg}
	}
	if !utf8.Valid(msg) {
		return event{kind: gotError, reason: ReasonBadUTF8, detail: "text message not UTF-8"}
	}
	return event{kind: gotText, payload: msg}
}

// Details of violations where the reader differs from gorilla/websocket on
// purpose (see FuzzDifferential).
const (
	detailCloseOneByte = "close payload of 1 byte"
	detailCloseUTF8    = "close reason not UTF-8"
)

// closeEvent validates a close frame's payload (RFC 6455 section 5.5.1 and
// 7.4): no payload, or a valid status code and a UTF-8 reason.
func closeEvent(payload []byte) event {
	switch {
	case len(payload) == 0:
		return event{kind: gotClose}
	case len(payload) == 1:
		return event{kind: gotError, reason: ReasonProtocol, detail: detailCloseOneByte}
	}
	code := int(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return event{kind: gotError, reason: ReasonProtocol, detail: "invalid close code"}
	}
	if !utf8.Valid(payload[2:]) {
		return event{kind: gotError, reason: ReasonBadUTF8, detail: detailCloseUTF8}
	}
	return event{kind: gotClose, code: code}
}

// validCloseCode reports whether a peer may send code in a close frame:
// 1000-1003, 1007-1014 and 3000-4999. 1004-1006 and 1015 are reserved and
// never sent; everything else is unassigned.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// pending reports how many bytes of an assembled message the reader holds.
func (r *reader) pending() int { return len(r.msg) }

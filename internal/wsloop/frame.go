package wsloop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Opcodes of RFC 6455, section 5.2.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// errProtocol is a framing violation: the connection is closed with 1002.
var errProtocol = errors.New("wsloop: websocket protocol error")

// errLengthTopBit is the violation of a 64-bit length with its top bit set;
// it wraps errProtocol.
var errLengthTopBit = fmt.Errorf("%w: length with the top bit set", errProtocol)

// header is a parsed frame header.
type header struct {
	fin    bool
	op     byte
	mask   [4]byte
	length int64 // payload bytes
	size   int   // header bytes
}

// parseHeader parses the header of a client frame at the start of b. It
// returns ok=false when b does not hold the whole header yet, and
// errProtocol for a frame a client may not send: reserved bits set, an
// unknown opcode, an unmasked frame, a fragmented or long control frame, or
// a length with the top bit set.
func parseHeader(b []byte) (h header, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	if b[0]&0x70 != 0 {
		return h, false, errProtocol
	}
	h.fin = b[0]&0x80 != 0
	h.op = b[0] & 0x0F
	switch h.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !h.fin || b[1]&0x7F > 125 {
			return h, false, errProtocol
		}
	default:
		return h, false, errProtocol
	}
	if b[1]&0x80 == 0 {
		return h, false, errProtocol // client frames must be masked
	}
	h.size = 2
	switch n := b[1] & 0x7F; n {
	case 126:
		h.size += 2
		if len(b) < h.size {
			return h, false, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		h.size += 8
		if len(b) < h.size {
			return h, false, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, false, errLengthTopBit
		}
		h.length = int64(v)
	default:
		h.length = int64(n)
	}
	if len(b) < h.size+4 {
		return h, false, nil
	}
	copy(h.mask[:], b[h.size:])
	h.size += 4
	return h, true, nil
}

// unmask XORs p with the mask key in place, as if p started at payload
// offset 0.
func unmask(p []byte, mask [4]byte) {
	key := uint64(binary.LittleEndian.Uint32(mask[:]))
	key |= key << 32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^key)
	}
	for ; i < len(p); i++ {
		p[i] ^= mask[i&3]
	}
}

// appendHeader appends the header of an unmasked, final server frame.
func appendHeader(dst []byte, op byte, length int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case length <= 125:
		return append(dst, byte(length))
	case length <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(length))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(length))
	}
}

// appendClose appends a close frame with status and reason, cut to fit the
// 125-byte limit of control frames at a character boundary (a peer must
// refuse a reason that is not UTF-8).
func appendClose(dst []byte, status int, reason string) []byte {
	if len(reason) > 123 {
		n := 123
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	dst = appendHeader(dst, opClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(status))
	return append(dst, reason...)
}

package wsloop

import (
	"strconv"
	"strings"
	"testing"
)

// frame is shorthand for a masked client frame.
func frame(fin bool, op byte, payload string) []byte {
	return clientFrame(fin, op, []byte(payload), key)
}

func text(s string) []byte { return frame(true, opText, s) }

// rsv sets reserved bits on a client frame.
func rsv(f []byte, bits byte) []byte {
	f = append([]byte(nil), f...)
	f[0] |= bits << 4
	return f
}

// conformanceCase is one row of the table modelled on the Autobahn
// TestSuite: a raw client writes the exact bytes and reads the exact
// frames back.
type conformanceCase struct {
	name     string
	autobahn string // the Autobahn cases it follows
	run      func(c *rawClient)
}

// closes answers a violation: the layer's closing for r, then the end of
// the stream, with no need for the client's close frame.
func closes(r Reason, frames ...[]byte) func(c *rawClient) {
	return func(c *rawClient) {
		c.write(frames...)
		c.expectClosing(r)
		c.expectEnd()
	}
}

// echoes writes frames and expects each of want back as a text frame.
func echoes(frames [][]byte, want ...string) func(c *rawClient) {
	return func(c *rawClient) {
		c.write(frames...)
		for _, w := range want {
			c.expect(opText, w)
		}
	}
}

// closeEcho sends a close frame and expects it echoed with status (0: an
// empty close), then the end.
func closeEcho(f []byte, status int) func(c *rawClient) {
	return func(c *rawClient) {
		c.write(f)
		c.expectCloseFrame(status)
		c.expectEnd()
	}
}

var big = strings.Repeat("0123456789abcdef", 1<<12) // 64 KiB

var conformanceCases = []conformanceCase{
	// 1: framing, text and binary payload lengths.
	{"text empty", "1.1.1", echoes([][]byte{text("")}, "")},
	{"text 125", "1.1.2", echoes([][]byte{text(big[:125])}, big[:125])},
	{"text 126", "1.1.3", echoes([][]byte{text(big[:126])}, big[:126])},
	{"text 127", "1.1.4", echoes([][]byte{text(big[:127])}, big[:127])},
	{"text 65535", "1.1.5", echoes([][]byte{text(big[:65535])}, big[:65535])},
	{"text 65536", "1.1.6", echoes([][]byte{text(big)}, big)},
	{"binary 125", "1.2.2", echoes([][]byte{frame(true, opBinary, big[:125])}, "binary 125")},
	{"binary 65536", "1.2.6", echoes([][]byte{frame(true, opBinary, big)}, "binary 65536")},
	{"text split into 1-byte writes", "1.1.8", func(c *rawClient) {
		f := text(big[:300])
		for i := range f {
			c.write(f[i : i+1])
		}
		c.expect(opText, big[:300])
	}},
	// 2: pings and pongs.
	{"ping empty", "2.1", func(c *rawClient) { c.write(frame(true, opPing, "")); c.expect(opPong, "") }},
	{"ping 125", "2.4", func(c *rawClient) { c.write(frame(true, opPing, big[:125])); c.expect(opPong, big[:125]) }},
	{"ping binary payload", "2.3", func(c *rawClient) {
		c.write(frame(true, opPing, "\x00\xff\xfe\xfd"))
		c.expect(opPong, "\x00\xff\xfe\xfd")
	}},
	{"ping 126", "2.5", closes(ReasonProtocol, frame(true, opPing, big[:126]))},
	{"unsolicited pong", "2.7", echoes([][]byte{frame(true, opPong, "x"), text("after")}, "after")},
	{"unsolicited pong with payload", "2.8", echoes([][]byte{frame(true, opPong, big[:125]), text("after")}, "after")},
	{"ten pings in one write: the latest is answered", "2.10", func(c *rawClient) {
		var fs [][]byte
		for i := range 10 {
			fs = append(fs, frame(true, opPing, string(rune('0'+i))))
		}
		c.write(append(fs, text("after"))...)
		for {
			op, p := c.read()
			if op == opText {
				if string(p) != "after" {
					c.t.Fatalf("got %q, want after", p)
				}
				break
			}
			if op != opPong {
				c.t.Fatalf("got op %#x, want pongs then the echo", op)
			}
		}
	}},
	// 3: reserved bits.
	{"RSV1 on text", "3.1", closes(ReasonProtocol, rsv(text("x"), 4))},
	{"RSV2 after a good message", "3.2", func(c *rawClient) {
		c.write(text("ok"), rsv(text("x"), 2), text("never"))
		c.expect(opText, "ok")
		c.expectClosing(ReasonProtocol)
		c.expectEnd()
	}},
	{"RSV3 on binary", "3.5", closes(ReasonProtocol, rsv(frame(true, opBinary, "x"), 1))},
	{"RSV on ping", "3.6", closes(ReasonProtocol, rsv(frame(true, opPing, ""), 7))},
	{"RSV on close", "3.7", closes(ReasonProtocol, rsv(clientClose(1000, ""), 7))},
	// 4: opcodes.
	{"reserved data opcode 3", "4.1.1", closes(ReasonProtocol, frame(true, 3, ""))},
	{"reserved data opcode 7 after a good message", "4.1.5", func(c *rawClient) {
		c.write(text("ok"), frame(true, 7, "x"))
		c.expect(opText, "ok")
		c.expectClosing(ReasonProtocol)
		c.expectEnd()
	}},
	{"reserved control opcode 0xB", "4.2.1", closes(ReasonProtocol, frame(true, 0xB, ""))},
	{"reserved control opcode 0xF", "4.2.5", closes(ReasonProtocol, frame(true, 0xF, "x"))},
	// 5: fragmentation.
	{"fragmented ping", "5.1", closes(ReasonProtocol, frame(false, opPing, "a"), frame(true, opContinuation, "b"))},
	{"fragmented pong", "5.2", closes(ReasonProtocol, frame(false, opPong, "a"), frame(true, opContinuation, "b"))},
	{"text in two fragments", "5.3", echoes([][]byte{frame(false, opText, "frag"), frame(true, opContinuation, "ment")}, "fragment")},
	{"text in fragments over several writes", "5.5", func(c *rawClient) {
		c.write(frame(false, opText, "a"))
		c.write(frame(false, opContinuation, "b"))
		c.write(frame(true, opContinuation, "c"))
		c.expect(opText, "abc")
	}},
	{"ping between fragments", "5.6", func(c *rawClient) {
		c.write(frame(false, opText, "hel"), frame(true, opPing, "p"), frame(true, opContinuation, "lo"))
		c.expect(opPong, "p")
		c.expect(opText, "hello")
	}},
	{"continuation without a start", "5.9", closes(ReasonProtocol, frame(true, opContinuation, "x"))},
	{"final continuation without a start, then text", "5.10", closes(ReasonProtocol, frame(true, opContinuation, "x"), text("never"))},
	{"non-final continuation without a start", "5.13", closes(ReasonProtocol, frame(false, opContinuation, "x"))},
	{"text inside a fragmented message", "5.18", closes(ReasonProtocol, frame(false, opText, "a"), frame(true, opText, "b"))},
	{"empty fragments", "5.19", echoes([][]byte{frame(false, opText, ""), frame(false, opContinuation, ""), frame(true, opContinuation, "")}, "")},
	{"binary in fragments", "5.4", echoes([][]byte{frame(false, opBinary, "ab"), frame(true, opContinuation, "c")}, "binary 3")},
	// 6: UTF-8.
	{"valid UTF-8", "6.2.1", echoes([][]byte{text("Hello-µ@ßöäüàá-UTF-8!!")}, "Hello-µ@ßöäüàá-UTF-8!!")},
	{"UTF-8 split between fragments", "6.2.3", echoes([][]byte{frame(false, opText, "κό\xcf"), frame(true, opContinuation, "\x83με")}, "κόσμε")},
	{"UTF-8 split into 1-byte fragments", "6.2.4", func(c *rawClient) {
		s := "κόσμε"
		var fs [][]byte
		for i := range len(s) {
			op := byte(opContinuation)
			if i == 0 {
				op = opText
			}
			fs = append(fs, frame(i == len(s)-1, op, s[i:i+1]))
		}
		echoes(fs, s)(c)
	}},
	{"invalid UTF-8", "6.3.1", closes(ReasonBadUTF8, text("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"))},
	{"invalid UTF-8 in fragments", "6.3.2", closes(ReasonBadUTF8, frame(false, opText, "\xce\xba\xe1"), frame(true, opContinuation, "\xbd\xb9\xed\xa0\x80"))},
	{"truncated code point at the end", "6.6.1", closes(ReasonBadUTF8, text("\xce"))},
	{"overlong encoding", "6.9.1", closes(ReasonBadUTF8, text("\xc0\xaf"))},
	{"surrogate", "6.19.1", closes(ReasonBadUTF8, text("\xed\xa0\x80"))},
	{"highest code point", "6.5.2", echoes([][]byte{text("\xf4\x8f\xbf\xbf")}, "\xf4\x8f\xbf\xbf")},
	{"above the highest code point", "6.5.5", closes(ReasonBadUTF8, text("\xf4\x90\x80\x80"))},
	// 7: close handling and close codes.
	{"close without payload", "7.3.1", closeEcho(frame(true, opClose, ""), 0)},
	{"close with a 1-byte payload", "7.3.2", closes(ReasonProtocol, frame(true, opClose, "\x03"))},
	{"close 1000 with a reason", "7.3.4", closeEcho(clientClose(1000, "bye"), 1000)},
	{"close with a 123-byte reason", "7.3.5", closeEcho(clientClose(1000, big[:123]), 1000)},
	{"close with a 124-byte reason", "7.3.6", closes(ReasonProtocol, clientClose(1000, big[:124]))},
	{"text after close is ignored", "7.1.2", closeEcho(append(clientClose(1000, ""), text("ignored")...), 1000)},
	{"close reason not UTF-8", "7.5.1", closes(ReasonBadUTF8, clientClose(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"))},
	{"ping after close is ignored", "7.1.3", closeEcho(append(clientClose(1000, ""), frame(true, opPing, "p")...), 1000)},
	// 9: limits (MaxMessage is 128 KiB in this table).
	{"text of 128 KiB in one frame", "9.1.2", echoes([][]byte{text(big + big)}, big+big)},
	{"text of 128 KiB in 64 fragments", "9.2.2", func(c *rawClient) {
		var fs [][]byte
		for i := range 64 {
			op := byte(opContinuation)
			if i == 0 {
				op = opText
			}
			fs = append(fs, frame(i == 63, op, big[:2048]))
		}
		echoes(fs, strings.Repeat(big[:2048], 64))(c)
	}},
	{"one byte over the limit", "9.1.3", closes(ReasonTooLarge, text(big+big+"x"))},
	{"over the limit in fragments", "9.2.3", closes(ReasonTooLarge, frame(false, opText, big), frame(false, opContinuation, big), frame(true, opContinuation, "x"))},
	{"over the limit, the rest never sent", "9.1.6", func(c *rawClient) {
		f := text(big + big + big)
		c.write(f[:100]) // the header says too large: close at once
		c.expectClosing(ReasonTooLarge)
		c.expectEnd()
	}},
	// 10: a message in fragments of mixed sizes arrives whole.
	{"fragments of mixed sizes", "10.1.1", func(c *rawClient) {
		var fs [][]byte
		sizes := []int{1, 125, 126, 4096, 65535 - 1 - 125 - 126 - 4096, 1}
		off := 0
		for i, n := range sizes {
			op := byte(opContinuation)
			if i == 0 {
				op = opText
			}
			fs = append(fs, frame(i == len(sizes)-1, op, big[off:off+n]))
			off += n
		}
		echoes(fs, big[:off])(c)
	}},
}

func init() {
	// Every valid close code is echoed with the same code; every invalid
	// one closes with 1002 (7.7, 7.9).
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		conformanceCases = append(conformanceCases, conformanceCase{"close code " + strconv.Itoa(code), "7.7", closeEcho(clientClose(code, ""), code)})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		conformanceCases = append(conformanceCases, conformanceCase{"invalid close code " + strconv.Itoa(code), "7.9", closes(ReasonProtocol, clientClose(code, ""))})
	}
}

// TestConformance runs the Autobahn-style table on every path.
func TestConformance(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxMessage = 128 << 10
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		for _, tc := range conformanceCases {
			t.Run(tc.autobahn+" "+tc.name, func(t *testing.T) {
				c := tl.dial(t)
				c.t = t
				tc.run(c)
			})
		}
	})
}

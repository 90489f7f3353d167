package wsloop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// fuzzMax is the message limit of the fuzz tests: small, so the fuzzer
// reaches it.
const fuzzMax = 64

// fuzzSeeds are client frame streams for both fuzz tests: every kind of
// frame, fragmentation, and the violations of the conformance table.
func fuzzSeeds() [][]byte {
	seeds := [][]byte{
		text("hello"),
		bytes.Join([][]byte{text("a"), frame(true, opBinary, "\x00\x01"), frame(true, opPing, "p"), frame(true, opPong, "q"), clientClose(1000, "bye")}, nil),
		bytes.Join([][]byte{frame(false, opText, "frag"), frame(true, opPing, ""), frame(true, opContinuation, "ment")}, nil),
		bytes.Join([][]byte{frame(false, opText, "κό\xcf"), frame(true, opContinuation, "\x83με")}, nil),
		text(strings.Repeat("x", fuzzMax)),
		text(strings.Repeat("x", fuzzMax+1)),
		bytes.Join([][]byte{frame(false, opText, strings.Repeat("x", 40)), frame(true, opContinuation, strings.Repeat("y", 40))}, nil),
		frame(true, opClose, "\x03"),
		clientClose(1005, ""),
		clientClose(3000, "\xff"),
		frame(true, opClose, ""),
		rsv(text("x"), 4),
		frame(true, 3, ""),
		frame(true, opContinuation, "x"),
		bytes.Join([][]byte{frame(false, opText, "a"), frame(true, opText, "b")}, nil),
		text("\xc0\xaf"),
		{0x81, 0x03, 'a', 'b', 'c'}, // unmasked
		append([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, key[:]...),
		append([]byte{0x82, 0xFE, 0x00, 0x80}, key[:]...), // 128 bytes announced, none sent
	}
	return seeds
}

// decodeStream runs a reader over stream as a connection would, chunk
// bytes per read (0: all at once), and returns what it found: one line per
// message, ping and pong, and a last line for how the stream ended.
func decodeStream(stream []byte, chunk int) []string {
	r := reader{max: fuzzMax}
	var out []string
	var in []byte
	data := append([]byte(nil), stream...)
	for len(data) > 0 {
		n := len(data)
		if chunk > 0 {
			n = min(n, chunk)
		}
		in = append(in, data[:n]...)
		data = data[n:]
		used := 0
		for {
			ev, k := r.next(in[used:])
			used += k
			switch ev.kind {
			case needMore:
			case gotText:
				out = append(out, "text "+string(ev.payload))
				continue
			case gotBinary:
				out = append(out, "binary "+string(ev.payload))
				continue
			case gotPing:
				out = append(out, "ping "+string(ev.payload))
				continue
			case gotPong:
				out = append(out, "pong "+string(ev.payload))
				continue
			case gotClose:
				return append(out, fmt.Sprintf("close %d", ev.code))
			case gotError:
				return append(out, errorLine(ev))
			}
			break
		}
		in = append(in[:0], in[used:]...)
		if len(in) > fuzzMax+256 {
			panic(fmt.Sprintf("reader keeps %d undecoded bytes with a limit of %d", len(in), fuzzMax))
		}
		if r.pending() > fuzzMax {
			panic(fmt.Sprintf("reader assembles %d bytes with a limit of %d", r.pending(), fuzzMax))
		}
	}
	return append(out, "end")
}

// errorLine names a violation as the comparison with gorilla sees it.
// Where we differ from gorilla on purpose, it gives gorilla's answer:
//   - a close frame with a 1-byte payload: RFC 6455 section 5.5.1 needs 2
//     bytes for a status; we close with 1002, gorilla takes it as a close
//     without status;
//   - a close reason that is not UTF-8: we close with 1007 (invalid
//     payload data, RFC 6455 section 7.4.1), gorilla with 1002;
//   - a 64-bit length with its top bit set: we call it a protocol error,
//     gorilla a message over the read limit.
func errorLine(ev event) string {
	switch ev.detail {
	case detailCloseOneByte:
		return "close 0"
	case detailCloseUTF8:
		return "error protocol"
	case errLengthTopBit.Error():
		return "error too large"
	}
	return "error " + ev.reason.String()
}

// hijacker is a ResponseWriter over a connection, so that gorilla's
// Upgrader can take a connection that is only a byte stream.
type hijacker struct {
	httptest.ResponseRecorder
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// streamConn reads a fixed stream and discards writes.
type streamConn struct {
	net.Conn // nil: only the methods below are used
	r        *bytes.Reader
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// gorillaStream reads stream with gorilla/websocket's server-side reader
// and reports it the way decodeStream does. Text that is not UTF-8, which
// gorilla hands on, is reported as the violation we make of it.
func gorillaStream(t *testing.T, stream []byte) []string {
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(&hijacker{conn: &streamConn{r: bytes.NewReader(stream)}}, req, nil)
	if err != nil {
		t.Fatalf("gorilla upgrade: %v", err)
	}
	ws.SetReadLimit(fuzzMax)
	var out []string
	ws.SetPingHandler(func(s string) error { out = append(out, "ping "+s); return nil })
	ws.SetPongHandler(func(s string) error { out = append(out, "pong "+s); return nil })
	ws.SetCloseHandler(func(int, string) error { return nil })
	for {
		typ, msg, err := ws.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
			return append(out, "end") // gorilla's name for end of stream between frames
		case errors.As(err, &ce):
			code := ce.Code
			if code == websocket.CloseNoStatusReceived {
				code = 0
			}
			return append(out, fmt.Sprintf("close %d", code))
		case errors.Is(err, websocket.ErrReadLimit):
			return append(out, "error too large")
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return append(out, "end")
		case err != nil && strings.HasPrefix(err.Error(), "websocket: "):
			return append(out, "error protocol")
		case err != nil:
			t.Fatalf("gorilla: unexpected error %v", err)
		case typ == websocket.BinaryMessage:
			out = append(out, "binary "+string(msg))
		case !utf8.Valid(msg):
			return append(out, "error "+ReasonBadUTF8.String())
		default:
			out = append(out, "text "+string(msg))
		}
	}
}

// FuzzReader checks that no stream panics the reader, that its buffers
// stay within the limit, and that reading a stream in small pieces finds
// exactly what reading it at once finds.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint8(1))
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		whole := decodeStream(stream, 0)
		split := decodeStream(stream, int(chunk%16)+1)
		if strings.Join(whole, "\n") != strings.Join(split, "\n") {
			t.Fatalf("read at once:\n%q\nread in pieces of %d:\n%q", whole, chunk%16+1, split)
		}
	})
}

// FuzzDifferential feeds client frame streams to our reader and to
// gorilla/websocket's: both must find the same messages, pings and pongs,
// and end the same way (the same close code, the same kind of violation),
// apart from the differences errorLine lists.
func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		ours := decodeStream(stream, 0)
		theirs := gorillaStream(t, stream)
		if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
			t.Fatalf("stream %x:\nours:    %q\ngorilla: %q", stream, ours, theirs)
		}
	})
}

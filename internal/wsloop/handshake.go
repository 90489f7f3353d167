package wsloop

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"sync"
)

// The opening handshake (RFC 6455 section 4.2) is answered here rather than
// by gorilla's Upgrader, so that the 101 response and the connection's
// first frames (the hub's welcome) leave in one write(2). The checks, their
// order and their messages are gorilla's (v1.5.3), so clients see the same
// refusals, with one exception that RFC 6455 section 4.4 asks for: a
// version other than 13 gets 426 Upgrade Required and a
// Sec-WebSocket-Version: 13 header, where gorilla answers 400. Like
// gorilla, the layer chooses no subprotocol and no extension, and drops a
// connection whose client sent data before the 101 response.

// acceptGUID is the GUID of RFC 6455 section 1.3 that the accept key hashes.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// HandshakeError is an opening handshake the layer refused. Status is the
// HTTP status it answered with; Error returns the reason the reply gave.
type HandshakeError struct {
	Status int
	Reason string
}

// Error returns the reason, as the refusal's body gives it.
func (e *HandshakeError) Error() string { return e.Reason }

const badHandshake = "websocket: the client is not using the websocket protocol: "

// Refusals of the opening handshake, in the order they are checked.
var (
	errNoConnectionUpgrade = &HandshakeError{http.StatusBadRequest, badHandshake + "'upgrade' token not found in 'Connection' header"}
	errNoUpgradeWebSocket  = &HandshakeError{http.StatusBadRequest, badHandshake + "'websocket' token not found in 'Upgrade' header"}
	errNotGet              = &HandshakeError{http.StatusMethodNotAllowed, badHandshake + "request method is not GET"}
	errVersion             = &HandshakeError{http.StatusUpgradeRequired, "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"}
	errOrigin              = &HandshakeError{http.StatusForbidden, "websocket: request origin not allowed (Config.CheckOrigin)"}
	errKey                 = &HandshakeError{http.StatusBadRequest, "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length"}
	errNoHijack            = &HandshakeError{http.StatusInternalServerError, "websocket: response does not implement http.Hijacker"}
)

// checkHandshake vets r as an opening handshake and returns its
// Sec-WebSocket-Key. checkOrigin nil accepts every Origin.
func checkHandshake(r *http.Request, checkOrigin func(*http.Request) bool) (string, *HandshakeError) {
	switch {
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "", errNoConnectionUpgrade
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return "", errNoUpgradeWebSocket
	case r.Method != http.MethodGet:
		return "", errNotGet
	case !headerHasToken(r.Header, "Sec-Websocket-Version", "13"):
		return "", errVersion
	case checkOrigin != nil && !checkOrigin(r):
		return "", errOrigin
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if !validKey(key) {
		return "", errKey
	}
	return key, nil
}

// validKey reports whether key is the base64 encoding of 16 bytes.
func validKey(key string) bool {
	// 16 bytes encode to 24 characters, the last two "==".
	if len(key) != 24 {
		return false
	}
	var src [24]byte
	var dst [18]byte
	copy(src[:], key)
	n, err := base64.StdEncoding.Decode(dst[:], src[:])
	return err == nil && n == 16
}

// appendAccept appends the 101 response to a handshake with key, a valid
// key (24 bytes).
func appendAccept(dst []byte, key string) []byte {
	var b [24 + len(acceptGUID)]byte
	copy(b[copy(b[:], key):], acceptGUID)
	sum := sha1.Sum(b[:])
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = base64.StdEncoding.AppendEncode(dst, sum[:])
	return append(dst, "\r\n\r\n"...)
}

// handshakeBuffers holds the buffers a 101 response and its first frames
// are built in.
var handshakeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// headerHasToken reports whether the comma-separated token list of header
// name holds value, compared with ASCII case folding (RFC 7230 section
// 7). A value that is not a token list (a stray character after a token)
// counts only up to that point, as in gorilla.
func headerHasToken(h http.Header, name, value string) bool {
	for _, s := range h[name] {
		for {
			var t string
			t, s = nextToken(skipSpace(s))
			if t == "" {
				break
			}
			s = skipSpace(s)
			if s != "" && s[0] != ',' {
				break
			}
			if equalFoldASCII(t, value) {
				return true
			}
			if s == "" {
				break
			}
			s = s[1:]
		}
	}
	return false
}

func skipSpace(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

// nextToken splits off the leading RFC 7230 token of s.
func nextToken(s string) (token, rest string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// isTokenChar reports whether c is a tchar of RFC 7230 section 3.2.6.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFoldASCII compares a token (ASCII only) with value, folding ASCII
// letters.
func equalFoldASCII(s, value string) bool {
	if len(s) != len(value) {
		return false
	}
	for i := range len(s) {
		a, b := s[i], value[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

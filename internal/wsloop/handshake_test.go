package wsloop

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rfcKey and rfcAccept are the sample key of RFC 6455 section 1.3 and the
// accept value it gives.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// handshakeCase is one opening handshake: the request's method and
// headers (a header missing from headers is not sent), and what the layer
// must answer.
type handshakeCase struct {
	name    string
	method  string
	headers map[string]string
	status  int    // 101 for an accepted handshake
	body    string // part of a refusal's body
	version bool   // a refusal that names the version: Sec-WebSocket-Version: 13
}

// goodHeaders is a valid handshake's header set (RFC 6455 section 1.3),
// with key replaced by v (or dropped when v is "-").
func goodHeaders(kv ...string) map[string]string {
	h := map[string]string{
		"Upgrade":               "websocket",
		"Connection":            "Upgrade",
		"Sec-WebSocket-Key":     rfcKey,
		"Sec-WebSocket-Version": "13",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(h, kv[i])
		} else {
			h[kv[i]] = kv[i+1]
		}
	}
	return h
}

// handshakeCases follow RFC 6455 section 4.2.1 (what a server must find
// in the request) and gorilla/websocket's server tests.
var handshakeCases = []handshakeCase{
	{name: "rfc sample", method: "GET", headers: goodHeaders(), status: 101},
	{name: "connection list (Firefox)", method: "GET", headers: goodHeaders("Connection", "keep-alive, Upgrade"), status: 101},
	{name: "tokens any case", method: "GET", headers: goodHeaders("Connection", "UPGRADE", "Upgrade", "WebSocket"), status: 101},
	{name: "spaces around tokens", method: "GET", headers: goodHeaders("Connection", "keep-alive ,\tupgrade "), status: 101},
	{name: "upgrade list", method: "GET", headers: goodHeaders("Upgrade", "foo, websocket"), status: 101},
	{name: "version list", method: "GET", headers: goodHeaders("Sec-WebSocket-Version", "8, 13"), status: 101},
	{name: "subprotocol offered, none chosen", method: "GET", headers: goodHeaders("Sec-WebSocket-Protocol", "chat, superchat"), status: 101},
	{name: "extension offered, none chosen", method: "GET", headers: goodHeaders("Sec-WebSocket-Extensions", "permessage-deflate"), status: 101},
	{name: "origin of a browser", method: "GET", headers: goodHeaders("Origin", "http://example.com"), status: 101},

	{name: "no Connection", method: "GET", headers: goodHeaders("Connection", "-"), status: 400, body: "'upgrade' token not found in 'Connection' header"},
	{name: "Connection without upgrade", method: "GET", headers: goodHeaders("Connection", "keep-alive"), status: 400, body: "'upgrade' token not found"},
	{name: "Connection upgrade inside a word", method: "GET", headers: goodHeaders("Connection", "upgrades"), status: 400, body: "'upgrade' token not found"},
	{name: "no Upgrade", method: "GET", headers: goodHeaders("Upgrade", "-"), status: 400, body: "'websocket' token not found in 'Upgrade' header"},
	{name: "Upgrade h2c", method: "GET", headers: goodHeaders("Upgrade", "h2c"), status: 400, body: "'websocket' token not found"},
	{name: "POST", method: "POST", headers: goodHeaders(), status: 405, body: "request method is not GET"},
	{name: "version 8", method: "GET", headers: goodHeaders("Sec-WebSocket-Version", "8"), status: 426, body: "unsupported version", version: true},
	{name: "no version", method: "GET", headers: goodHeaders("Sec-WebSocket-Version", "-"), status: 426, body: "unsupported version", version: true},
	{name: "no key", method: "GET", headers: goodHeaders("Sec-WebSocket-Key", "-"), status: 400, body: "'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte"},
	{name: "key not base64", method: "GET", headers: goodHeaders("Sec-WebSocket-Key", "not base64 at all!!!!!!!"), status: 400, body: "Sec-WebSocket-Key"},
	{name: "key of 15 bytes", method: "GET", headers: goodHeaders("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), status: 400, body: "Sec-WebSocket-Key"},
	{name: "key of 17 bytes", method: "GET", headers: goodHeaders("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="), status: 400, body: "Sec-WebSocket-Key"},
	{name: "key unpadded", method: "GET", headers: goodHeaders("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ"), status: 400, body: "Sec-WebSocket-Key"},
	{name: "key url-safe alphabet", method: "GET", headers: goodHeaders("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ-_"), status: 400, body: "Sec-WebSocket-Key"},
}

// TestHandshake sends each request of handshakeCases over a real socket
// and checks the answer: a 101 with the right accept value and a working
// connection (on both paths), or the refusal's status, body and headers.
func TestHandshake(t *testing.T) {
	forPaths(t, defaultConfig(), func(t *testing.T, tl *testLayer) {
		for _, tc := range handshakeCases {
			t.Run(tc.name, func(t *testing.T) {
				conn, br, resp := rawHandshake(t, tl.addr, tc.method, tc.headers)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if tc.status != 101 {
					checkRefusal(t, resp, tc)
					return
				}
				checkAccept(t, resp)
				c := &rawClient{t: t, conn: conn, br: br, srv: <-tl.conns}
				c.write(text("hello"))
				c.expect(opText, "hello")
			})
		}
	})
}

func checkRefusal(t *testing.T, resp *http.Response, tc handshakeCase) {
	t.Helper()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if !strings.Contains(string(body), tc.body) {
		t.Errorf("body %q, want it to contain %q", body, tc.body)
	}
	if got := resp.Header.Get("Sec-WebSocket-Version"); tc.version != (got == "13") {
		t.Errorf("Sec-WebSocket-Version %q in the refusal, want it only for a version refusal", got)
	}
	if resp.Header.Get("Upgrade") != "" {
		t.Errorf("a refusal carries Upgrade: %q", resp.Header.Get("Upgrade"))
	}
}

func checkAccept(t *testing.T, resp *http.Response) {
	t.Helper()
	for k, want := range map[string]string{
		"Upgrade":                  "websocket",
		"Connection":               "Upgrade",
		"Sec-WebSocket-Accept":     rfcAccept,
		"Sec-WebSocket-Protocol":   "", // none is chosen
		"Sec-WebSocket-Extensions": "",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("101 response: %s = %q, want %q", k, got, want)
		}
	}
}

// rawHandshake sends a handshake request by hand and reads the response
// head; the body of a refusal is left in resp.Body, the frames after a 101
// in br.
func rawHandshake(t *testing.T, addr, method string, headers map[string]string) (*net.TCPConn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var req strings.Builder
	req.WriteString(method + " / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	for k, v := range headers {
		req.WriteString(k + ": " + v + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return conn.(*net.TCPConn), br, resp
}

// TestHandshakeOrigin: an Origin that Config.CheckOrigin refuses gets 403
// before the upgrade; one it accepts, and none, are upgraded.
func TestHandshakeOrigin(t *testing.T) {
	cfg := defaultConfig()
	cfg.CheckOrigin = func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || o == "https://good.example"
	}
	forPaths(t, cfg, func(t *testing.T, tl *testLayer) {
		for _, tc := range []struct {
			origin string
			status int
		}{{"", 101}, {"https://good.example", 101}, {"https://evil.example", 403}} {
			t.Run("origin="+tc.origin, func(t *testing.T) {
				h := goodHeaders()
				if tc.origin != "" {
					h["Origin"] = tc.origin
				}
				_, _, resp := rawHandshake(t, tl.addr, "GET", h)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if tc.status == 101 {
					(<-tl.conns).conn.Close(Closing{Status: 1000})
					return
				}
				checkRefusal(t, resp, handshakeCase{body: "origin not allowed"})
			})
		}
	})
}

// TestHandshakeOneWrite: Accept sends the 101 response and the greeting
// in one write(2), so the client finds both in its first read (one
// segment on loopback); objects enqueued before Accept follow them.
func TestHandshakeOneWrite(t *testing.T) {
	for _, mode := range paths() {
		t.Run(mode, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Mode = mode
			l, _ := runLayer(t, cfg)
			handlers := make(chan *testHandler, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, err := l.Hijack(w, r, Options{})
				if err != nil {
					return
				}
				h := &testHandler{t: t, conn: p.Conn(), closed: make(chan struct{}), drains: make(chan struct{}, 64)}
				p.Conn().Enqueue([]byte("queued before Accept"))
				if err := p.Accept([][]byte{[]byte("welcome")}); err != nil {
					t.Errorf("Accept: %v", err)
				}
				handlers <- h
				p.Conn().Start(h)
			}))
			t.Cleanup(srv.Close) // before runLayer's cleanup stops the layer
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+rfcKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			head, frames, ok := strings.Cut(string(buf[:n]), "\r\n\r\n")
			if !ok || !strings.HasPrefix(head, "HTTP/1.1 101 ") || !strings.Contains(head, "Sec-WebSocket-Accept: "+rfcAccept) {
				t.Fatalf("first read %q: want the 101 response", buf[:n])
			}
			greeting := "\x81\x07welcome"
			if !strings.HasPrefix(frames, greeting) {
				t.Fatalf("first read after the 101: %q, want the greeting frame %q first", frames, greeting)
			}
			rest := io.MultiReader(strings.NewReader(frames[len(greeting):]), conn)
			c := &rawClient{t: t, conn: conn.(*net.TCPConn), br: bufio.NewReader(rest), srv: <-handlers}
			c.expect(opText, "queued before Accept")
		})
	}
}

// TestHandshakeAgreesWithGorilla runs every case through checkHandshake
// and through gorilla/websocket's Upgrader: both accept the same requests
// and refuse the others with the same status, except for a version
// refusal (426 here, as RFC 6455 section 4.4 asks; gorilla answers 400).
func TestHandshakeAgreesWithGorilla(t *testing.T) {
	for _, tc := range handshakeCases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			compareWithGorilla(t, r)
		})
	}
}

// compareWithGorilla fails t if checkHandshake and gorilla's Upgrader
// decide r differently.
func compareWithGorilla(t *testing.T, r *http.Request) {
	t.Helper()
	_, herr := checkHandshake(r, nil)
	ours := 101
	if herr != nil {
		ours = herr.Status
	}
	theirs := gorillaHandshake(r)
	if theirs == http.StatusBadRequest && ours == http.StatusUpgradeRequired && herr == errVersion {
		theirs = ours
	}
	if ours != theirs {
		t.Fatalf("request %s %q: status %d (%v), gorilla %d", r.Method, r.Header, ours, herr, theirs)
	}
}

// gorillaHandshake returns the status gorilla/websocket's Upgrader answers
// r with: 101, or its refusal.
func gorillaHandshake(r *http.Request) int {
	status := 101
	up := websocket.Upgrader{
		CheckOrigin: func(*http.Request) bool { return true },
		Error:       func(_ http.ResponseWriter, _ *http.Request, s int, _ error) { status = s },
	}
	ws, err := up.Upgrade(&hijacker{conn: &streamConn{r: bytes.NewReader(nil)}}, r, nil)
	if err == nil {
		ws.NetConn() // the stream conn: nothing to close
	}
	return status
}

// FuzzHandshake: no request panics checkHandshake, and its decision is
// gorilla's (see TestHandshakeAgreesWithGorilla).
func FuzzHandshake(f *testing.F) {
	for _, tc := range handshakeCases {
		h := tc.headers
		f.Add(tc.method, h["Connection"], h["Upgrade"], h["Sec-WebSocket-Version"], h["Sec-WebSocket-Key"])
	}
	f.Add("GET", "Upgrade,", ",websocket", "13,", rfcKey)
	f.Add("GET", "up\u212Agrade", "websocket", "13", rfcKey) // Kelvin sign: no Unicode folding
	f.Fuzz(func(t *testing.T, method, connection, upgrade, version, key string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = method
		for k, v := range map[string]string{"Connection": connection, "Upgrade": upgrade, "Sec-WebSocket-Version": version, "Sec-WebSocket-Key": key} {
			if v != "" {
				r.Header[http.CanonicalHeaderKey(k)] = strings.Split(v, "\x00") // a NUL splits several header lines
			}
		}
		// gorilla's base64 decoding skips CR and LF inside the key; net/http
		// refuses header values that hold them, so no such key gets here.
		if !strings.ContainsAny(key, "\r\n") {
			compareWithGorilla(t, r)
		}
		if k, herr := checkHandshake(r, nil); herr == nil && !validKey(k) {
			t.Fatalf("accepted key %q", k)
		}
	})
}

// failingConn is a hijacked connection whose writes fail.
type failingConn struct{ streamConn }

func (c *failingConn) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestAcceptFails: when the 101 response cannot be written, Accept
// reports it and the connection ends: Start calls OnClose at once, on
// either path, and nothing is left running.
func TestAcceptFails(t *testing.T) {
	for _, mode := range paths() {
		t.Run(mode, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Mode = mode
			l, _ := runLayer(t, cfg)
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range goodHeaders() {
				r.Header.Set(k, v)
			}
			// Not a *net.TCPConn: this takes the goroutine path; the epoll
			// path's Conn without a socket is made by hand below.
			p, err := l.Hijack(&hijacker{conn: &failingConn{streamConn{r: bytes.NewReader(nil)}}}, r, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if mode == ModeEpoll {
				p.conn.Abort() // the goroutine-path Conn Hijack made
				p.ep = l.ep.newConn("test", Options{})
				p.conn = p.ep
			}
			p.Conn().Enqueue([]byte("never sent"))
			if err := p.Accept([][]byte{[]byte("welcome")}); err == nil {
				t.Fatal("Accept succeeded on a connection that cannot be written")
			}
			h := &testHandler{t: t, conn: p.Conn(), closed: make(chan struct{}), drains: make(chan struct{}, 64)}
			p.Conn().Start(h)
			h.waitClosed(t)
			if _, ok := p.Conn().Closed(); ok {
				t.Fatal("Closed reports a Closing for a dropped connection")
			}
		})
	}
}

// Package hubtest runs real hubs on 127.0.0.1:0 and real WebSocket clients
// against them, for tests and benchmarks.
package hubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netkit/netkit/internal/hub"
)

// APIKey is the API key of every test hub.
const APIKey = "test-key"

// TransportEnv names the environment variable that sets the
// hub.transport of every hub that Start runs, when not empty. RunBoth sets
// it to run a test binary's tests again on the goroutine transport.
const TransportEnv = "NETKIT_TEST_HUB_TRANSPORT"

// RunBoth runs a package's tests (m.Run) on the default transport, then
// runs the same test binary again, with the same flags, with every hub on
// the goroutine transport, so each test runs on both connection layers
// without a list to keep. Call it from TestMain and pass its result to
// os.Exit. Fuzzing and benchmark runs run once.
func RunBoth(m *testing.M) int {
	code := m.Run()
	if code != 0 || os.Getenv(TransportEnv) != "" || !runsTests() {
		return code
	}
	var args []string
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-test.testlogfile") { // go test's cache log is the first run's
			args = append(args, a)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), TransportEnv+"="+hub.TransportGoroutine)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Println("=== hub tests again on hub.transport = goroutine")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "hubtest: rerun on the goroutine transport:", err)
		return 1
	}
	return 0
}

// runsTests reports whether this run runs tests rather than only fuzzing,
// benchmarks or a listing.
func runsTests() bool {
	for _, name := range []string{"test.fuzz", "test.bench", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		return false
	}
	return true
}

// Hub is a running in-process hub.
type Hub struct {
	Server  *hub.Server
	Addr    string // host:port
	URL     string // ws://host:port/ws
	HTTPURL string // http://host:port
	cancel  context.CancelFunc
	done    chan error
}

// Start runs a hub with the default config, changed by edit if not nil, on
// 127.0.0.1:0. The hub stops at the end of the test.
func Start(tb testing.TB, edit func(*hub.Config)) *Hub {
	tb.Helper()
	return StartWith(tb, edit, hub.Options{})
}

// StartWith is Start with Options (a broker, the number of pollers); the
// logger and version are filled in, and a fresh metrics registry when
// opts has none.
func StartWith(tb testing.TB, edit func(*hub.Config), opts hub.Options) *Hub {
	tb.Helper()
	cfg := hub.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.APIKey = APIKey
	cfg.NodeID = "test-node"
	if t := os.Getenv(TransportEnv); t != "" {
		cfg.Transport = t
	}
	if edit != nil {
		edit(&cfg)
	}
	opts.Logger, opts.Version = testLogger(tb), "test"
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry() // every test hub runs its metrics hooks
	}
	srv, err := hub.New(cfg, opts)
	if err != nil {
		tb.Fatalf("hub.New: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		Server:  srv,
		Addr:    ln.Addr().String(),
		URL:     "ws://" + ln.Addr().String() + cfg.WSPath,
		HTTPURL: "http://" + ln.Addr().String(),
		cancel:  cancel,
		done:    make(chan error, 1),
	}
	go func() { h.done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() { h.Stop(tb) })
	return h
}

// Stop shuts the hub down and returns Serve's result. Later calls return
// nil.
func (h *Hub) Stop(tb testing.TB) error {
	tb.Helper()
	h.cancel()
	select {
	case err, ok := <-h.done:
		if !ok {
			return nil
		}
		close(h.done)
		return err
	case <-time.After(30 * time.Second):
		tb.Fatalf("hub did not stop within 30s")
		return nil
	}
}

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// API calls the hub's HTTP API with the test key and returns the status and
// the decoded JSON body.
func (h *Hub) API(tb testing.TB, method, path string, body any) (int, map[string]any) {
	tb.Helper()
	return h.APIWithKey(tb, APIKey, method, path, body)
}

// APIWithKey is API with a chosen key ("" sends no Authorization header).
// A string body is sent as is; anything else is marshalled to JSON.
func (h *Hub) APIWithKey(tb testing.TB, key, method, path string, body any) (int, map[string]any) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, h.HTTPURL+path, rd)
	if err != nil {
		tb.Fatalf("request: %v", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("%s %s: status %d, body is not a JSON object: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// Client is a real WebSocket client of a test hub.
type Client struct {
	tb      testing.TB
	Conn    *websocket.Conn
	Welcome map[string]any
	joined  bool     // dialed with frames=joined: a frame may hold several objects
	pending [][]byte // objects of the last frame not yet returned
}

// Dial connects to the hub and reads the welcome push.
func (h *Hub) Dial(tb testing.TB) *Client {
	tb.Helper()
	c := DialURL(tb, h.URL)
	c.Welcome = c.Read()
	if c.Welcome["push"] != "welcome" {
		tb.Fatalf("first push = %v, want welcome", c.Welcome)
	}
	return c
}

// DialURL connects to url without reading anything.
func DialURL(tb testing.TB, url string) *Client {
	tb.Helper()
	return DialWith(tb, websocket.DefaultDialer, url)
}

// DialWith is DialURL with a chosen dialer, e.g. one that sets socket
// options.
func DialWith(tb testing.TB, d *websocket.Dialer, url string) *Client {
	tb.Helper()
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { ws.Close() })
	return &Client{tb: tb, Conn: ws, joined: strings.Contains(url, "frames=joined")}
}

// User returns the client's user id from its welcome push.
func (c *Client) User() string { return c.Welcome["user"].(string) }

// ID returns the client's client id from its welcome push.
func (c *Client) ID() string { return c.Welcome["client"].(string) }

// Send writes one text frame: a string as is, anything else as JSON.
func (c *Client) Send(v any) {
	c.tb.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(x); err != nil {
			c.tb.Fatalf("marshal: %v", err)
		}
	}
	if err := c.Conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// ReadRaw returns the next server object as raw JSON, waiting up to 10s.
// A frame must hold exactly one object unless the client dialed with
// frames=joined.
func (c *Client) ReadRaw() ([]byte, error) {
	for len(c.pending) == 0 {
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, frame, err := c.Conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		if typ != websocket.TextMessage {
			return nil, fmt.Errorf("got a frame of type %d, want text", typ)
		}
		objs := bytes.Split(frame, []byte{'\n'})
		if len(objs) > 1 && !c.joined {
			return nil, fmt.Errorf("a frame holds %d objects joined by newlines, want one object per frame: %.200q", len(objs), frame)
		}
		c.pending = append(c.pending, objs...)
	}
	obj := c.pending[0]
	c.pending = c.pending[1:]
	return obj, nil
}

// Read returns the next server object, decoded.
func (c *Client) Read() map[string]any {
	c.tb.Helper()
	raw, err := c.ReadRaw()
	if err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		c.tb.Fatalf("server object is not JSON: %q: %v", raw, err)
	}
	return m
}

// Call sends cmd, which must carry an "id", and returns the reply with that
// id. Pushes that arrive first are returned in skipped.
func (c *Client) Call(cmd map[string]any) (reply map[string]any, skipped []map[string]any) {
	c.tb.Helper()
	c.Send(cmd)
	want := fmt.Sprint(cmd["id"])
	for {
		m := c.Read()
		if id, ok := m["id"]; ok && fmt.Sprint(id) == want {
			return m, skipped
		}
		skipped = append(skipped, m)
	}
}

// Expect reads objects until one has "push" equal to push and returns it;
// it fails the test on any reply or different push read first.
func (c *Client) Expect(push string) map[string]any {
	c.tb.Helper()
	m := c.Read()
	if m["push"] != push {
		c.tb.Fatalf("got %v, want a %q push", m, push)
	}
	return m
}

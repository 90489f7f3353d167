package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/hubtest"
	"github.com/netkit/netkit/internal/testenv"
)

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// TestServedModuleIsClientsJS: the hub serves clients/js/netkit.js and
// netkit.d.ts byte for byte, so the page's client and the npm package
// cannot drift apart.
func TestServedModuleIsClientsJS(t *testing.T) {
	h := hubtest.Start(t, nil)
	for _, tc := range []struct{ path, file, ctype string }{
		{"/netkit.js", "../../clients/js/netkit.js", "text/javascript"},
		{"/netkit.d.ts", "../../clients/js/netkit.d.ts", "application/typescript"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			want, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			resp, got := get(t, h.HTTPURL+tc.path)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
				t.Fatalf("GET %s: %s, %d bytes; want 200 and the %d bytes of %s", tc.path, resp.Status, len(got), len(want), tc.file)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Fatalf("Content-Type = %q, want %s", ct, tc.ctype)
			}
		})
	}
}

// TestPage: the page and its files are served with a content security
// policy; other paths stay 404.
func TestPage(t *testing.T) {
	h := hubtest.Start(t, nil)
	tests := []struct {
		path   string
		status int
		ctype  string
		has    string
	}{
		{"/", 200, "text/html", `<script type="module" src="/app.js">`},
		{"/app.js", 200, "text/javascript", `from "/netkit.js"`},
		{"/style.css", 200, "text/css", "@media (max-width: 700px)"},
		{"/index.html", 404, "", ""},
		{"/nothing", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, h.HTTPURL+tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Fatalf("Content-Type = %q, want %s", ct, tc.ctype)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Fatalf("Content-Security-Policy = %q, want script-src 'self'", csp)
			}
			if !bytes.Contains(body, []byte(tc.has)) {
				t.Fatalf("GET %s: body lacks %q", tc.path, tc.has)
			}
		})
	}
}

// TestNodeClient runs the JavaScript client's tests (clients/js/*.test.js)
// under Node 20+ and its built-in WebSocket, against a hub of this test.
func TestNodeClient(t *testing.T) {
	node := testenv.Peer(t, "node", "nodejs")
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	major := 0
	if m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(out); m != nil {
		major, _ = strconv.Atoi(string(m[1]))
	}
	if major < 20 {
		msg := "node " + strings.TrimSpace(string(out)) + " has no built-in WebSocket: the JavaScript tests need Node 20 or later"
		if os.Getenv("NETKIT_PEERS") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	h := hubtest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--experimental-websocket", "--test", "--test-reporter=tap", ".")
	cmd.Dir = "../../clients/js"
	cmd.Env = append(os.Environ(), "NETKIT_URL="+h.URL, "NETKIT_API_KEY="+hubtest.APIKey)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, res)
	}
	t.Logf("node --test:\n%s", res)
}

package auth

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOriginMatrix(t *testing.T) {
	allowed := []string{"http://localhost:*", "https://*.example.com", "https://App.Example.org", "null"}
	tests := []struct {
		name    string
		host    string   // the request's Host
		tls     bool     // the request came over TLS
		origin  []string // Origin headers; none when nil
		allowed []string // hub.allowed_origins; the list above when nil
		ok      bool
	}{
		{"no Origin", "hub:9999", false, nil, nil, true},
		{"own origin", "hub:9999", false, []string{"http://hub:9999"}, nil, true},
		{"own origin, case", "HUB:9999", false, []string{"http://Hub:9999"}, nil, true},
		{"own origin over TLS", "hub:9999", true, []string{"https://hub:9999"}, nil, true},
		{"own origin, default port", "hub", false, []string{"http://hub"}, nil, true},
		{"own origin, explicit default port", "hub:80", false, []string{"http://hub"}, nil, true},
		{"own origin, origin with default port", "hub", true, []string{"https://hub:443"}, nil, true},
		{"own origin, IPv6", "[::1]:9999", false, []string{"http://[::1]:9999"}, nil, true},
		{"own host, other port", "hub:9999", false, []string{"http://hub:8080"}, nil, false},
		{"own host, https page to plain hub", "hub:9999", false, []string{"https://hub:9999"}, nil, false},
		{"own host, http page to TLS hub", "hub:9999", true, []string{"http://hub:9999"}, nil, false},
		{"own host on another port by default", "hub", false, []string{"http://hub:443"}, nil, false},
		{"other site", "hub:9999", false, []string{"https://evil.com"}, nil, false},
		{"suffix of own host", "hub:9999", false, []string{"http://evilhub:9999"}, nil, false},
		{"localhost any port", "hub:9999", false, []string{"http://localhost:3000"}, nil, true},
		{"localhost without port", "hub:9999", false, []string{"http://localhost"}, nil, false},
		{"localhost over https", "hub:9999", false, []string{"https://localhost:3000"}, nil, false},
		{"subdomain", "hub:9999", false, []string{"https://app.example.com"}, nil, true},
		{"deep subdomain", "hub:9999", false, []string{"https://a.b.example.com"}, nil, true},
		{"bare domain is not *.", "hub:9999", false, []string{"https://example.com"}, nil, false},
		{"lookalike domain", "hub:9999", false, []string{"https://evilexample.com"}, nil, false},
		{"domain as prefix", "hub:9999", false, []string{"https://app.example.com.evil.com"}, nil, false},
		{"port on a portless pattern", "hub:9999", false, []string{"https://app.example.com:8443"}, nil, false},
		{"pattern case", "hub:9999", false, []string{"https://app.example.org"}, nil, true},
		{"null allowed", "hub:9999", false, []string{"null"}, nil, true},
		{"null not allowed", "hub:9999", false, []string{"null"}, []string{}, false},
		{"star allows all", "hub:9999", false, []string{"https://evil.com"}, []string{"*"}, true},
		{"path", "hub:9999", false, []string{"http://hub:9999/x"}, nil, false},
		{"user info", "hub:9999", false, []string{"https://x@app.example.com"}, nil, false},
		{"port smuggled", "hub:9999", false, []string{"http://localhost:1.evil.com"}, nil, false},
		{"other scheme", "hub:9999", false, []string{"file://hub:9999"}, nil, false},
		{"empty", "hub:9999", false, []string{""}, nil, false},
		{"garbage", "hub:9999", false, []string{"%%%"}, nil, false},
		{"two Origins", "hub:9999", false, []string{"http://hub:9999", "https://evil.com"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			patterns := allowed
			if tc.allowed != nil {
				patterns = tc.allowed
			}
			c, err := NewOriginChecker(patterns)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.Host = tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, o := range tc.origin {
				r.Header.Add("Origin", o)
			}
			err = c.Check(r)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok %v", err, tc.ok)
			}
			if err == nil {
				return
			}
			var oe *OriginError
			if !errors.As(err, &oe) || !errors.Is(err, ErrOriginRefused) {
				t.Fatalf("Check = %#v, want an *OriginError wrapping ErrOriginRefused", err)
			}
			if !strings.Contains(err.Error(), "hub.allowed_origins") {
				t.Errorf("refusal %q does not name hub.allowed_origins", err)
			}
		})
	}
}

func TestNewOriginCheckerErrors(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
	}{
		{"http://localhost:*", true},
		{"https://*.example.com", true},
		{"HTTPS://EXAMPLE.COM", true},
		{"*", true},
		{"null", true},
		{"localhost:3000", false},
		{"ws://localhost", false},
		{"https://example.com/", false},
		{"https://example.com/app", false},
		{"https://", false},
		{"https://user@example.com", false},
		{"https://exa mple.com", false},
		{"", false},
	}
	for _, tc := range tests {
		_, err := NewOriginChecker([]string{tc.pattern})
		if (err == nil) != tc.ok {
			t.Errorf("NewOriginChecker(%q) = %v, want ok %v", tc.pattern, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "hub.allowed_origins") {
			t.Errorf("error %q does not name hub.allowed_origins", err)
		}
	}
}

// TestOriginOverSockets checks the own-origin rule on what a real server
// sees: r.Host and r.TLS of requests to 127.0.0.1 over plain HTTP and TLS.
func TestOriginOverSockets(t *testing.T) {
	c, err := NewOriginChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.Check(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	for _, srv := range []*httptest.Server{httptest.NewServer(handler), httptest.NewTLSServer(handler)} {
		t.Cleanup(srv.Close)
		other := strings.Replace(srv.URL, "https://", "http://", 1)
		if other == srv.URL {
			other = strings.Replace(srv.URL, "http://", "https://", 1)
		}
		tests := []struct {
			origin string
			want   int
		}{
			{"", http.StatusOK},
			{srv.URL, http.StatusOK},
			{other, http.StatusForbidden},
			{"http://127.0.0.2:1", http.StatusForbidden},
		}
		for _, tc := range tests {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s with Origin %q: status %d (%s), want %d", srv.URL, tc.origin, resp.StatusCode, body, tc.want)
			}
		}
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://example.com", "http://example.com"},
		{"HTTP://EXAMPLE.COM", "http://example.com"},
		{"https://example.com:443", "https://example.com"},
		{"http://example.com:443", "http://example.com:443"},
		{"http://[::1]:80", "http://[::1]"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"null", "null"},
	}
	for _, tc := range tests {
		got, err := ParseOrigin(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

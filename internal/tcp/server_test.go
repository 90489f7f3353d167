package tcp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

func TestEchoHalfClose(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr := start(t, host, Config{Mode: ModeEcho})
			big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, more than the socket buffers
			var out bytes.Buffer
			err := Dial(context.Background(), DialConfig{Addr: addr}, strings.NewReader(big), &out)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != big {
				t.Fatalf("echoed %d bytes, want %d", out.Len(), len(big))
			}
		})
	}
}

func TestPrintAndDiscard(t *testing.T) {
	var out testenv.Buffer
	addr := start(t, "127.0.0.1", Config{Mode: ModePrint, Out: &out})
	c := dialTCP(t, addr)
	fmt.Fprint(c, "hello\r\n\x1b[2Jx\xff\n")
	c.CloseWrite()
	if got := readAll(t, c); got != "" {
		t.Fatalf("print mode sent %q", got)
	}
	peer := c.LocalAddr().String()
	want := peer + ": hello\n" + peer + `: \x1b[2Jx\xff` + "\n"
	testenv.WaitFor(t, 5*time.Second, func() error {
		if out.String() != want {
			return fmt.Errorf("printed %q, want %q", out.String(), want)
		}
		return nil
	})

	addr = start(t, "127.0.0.1", Config{Mode: ModeDiscard})
	c = dialTCP(t, addr)
	fmt.Fprint(c, "gone")
	c.CloseWrite()
	if got := readAll(t, c); got != "" {
		t.Fatalf("discard mode sent %q", got)
	}
}

func TestFilters(t *testing.T) {
	p := func(s string) []netip.Prefix {
		ps, err := ParsePrefixes(s)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	tests := []struct {
		name        string
		host        string
		allow, deny []netip.Prefix
		served      bool
	}{
		{"no filter", "127.0.0.1", nil, nil, true},
		{"allowed", "127.0.0.1", p("127.0.0.0/8"), nil, true},
		{"not in allow", "127.0.0.1", p("10.0.0.0/8"), nil, false},
		{"denied", "127.0.0.1", nil, p("127.0.0.1"), false},
		{"deny wins", "127.0.0.1", p("127.0.0.0/8"), p("127.0.0.1/32"), false},
		{"ipv6 allowed", "::1", p("::1/128"), p("127.0.0.0/8"), true},
		{"ipv6 denied", "::1", nil, p("::/0"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := start(t, tc.host, Config{Allow: tc.allow, Deny: tc.deny})
			c := dialTCP(t, addr)
			if !tc.served {
				expectClosed(t, c)
				return
			}
			fmt.Fprint(c, "ping")
			c.CloseWrite()
			if got := readAll(t, c); got != "ping" {
				t.Fatalf("echo = %q, want ping", got)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	if _, err := ParsePrefixes("10.0.0.0/8, nonsense,::1"); err == nil || !strings.Contains(err.Error(), `"nonsense"`) {
		t.Fatalf("err = %v, want one naming \"nonsense\"", err)
	}
	ps, err := ParsePrefixes("10.1.2.3/8,::1")
	if err != nil || len(ps) != 2 || ps[0].String() != "10.0.0.0/8" || ps[1].String() != "::1/128" {
		t.Fatalf("ParsePrefixes = %v, %v", ps, err)
	}
}

func TestMaxConns(t *testing.T) {
	addr := start(t, "127.0.0.1", Config{MaxConns: 1})
	first := dialTCP(t, addr)
	fmt.Fprint(first, "a") // served: the echo proves the server counted it
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, dialTCP(t, addr))
	first.Close()
	// The slot frees once the server sees the close.
	testenv.WaitFor(t, 5*time.Second, func() error {
		c := dialTCP(t, addr)
		fmt.Fprint(c, "b")
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		return err
	})
}

func TestIdleTimeout(t *testing.T) {
	addr := start(t, "127.0.0.1", Config{IdleTimeout: 100 * time.Millisecond})
	// The server's idle clock starts at accept, which may come before
	// Dial returns: take the time before dialling.
	began := time.Now()
	c := dialTCP(t, addr)
	expectClosed(t, c)
	if d := time.Since(began); d < 100*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

func TestTLS(t *testing.T) {
	certPEM, keyPEM, err := SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	withFiles, _, err := ServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	generated, fp, err := ServerTLS("", "")
	if err != nil || len(fp) != 64 {
		t.Fatalf("ServerTLS self-signed: fingerprint %q, %v", fp, err)
	}
	client := func(ca string, insecure bool) *tls.Config {
		c, err := ClientTLS("", ca, insecure)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name    string
		host    string
		server  *tls.Config
		client  *tls.Config
		wantErr string
	}{
		{"ca file", "127.0.0.1", withFiles, client(certFile, false), ""},
		{"ca file ipv6", "::1", withFiles, client(certFile, false), ""},
		{"insecure", "127.0.0.1", generated, client("", true), ""},
		{"unknown authority", "127.0.0.1", generated, client("", false), "certificate"},
		{"wrong ca", "127.0.0.1", generated, client(certFile, false), "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := start(t, tc.host, Config{TLS: tc.server})
			var out bytes.Buffer
			err := Dial(context.Background(), DialConfig{Addr: addr, TLS: tc.client}, strings.NewReader("secret\n"), &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Dial = %v, want an error about the %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || out.String() != "secret\n" {
				t.Fatalf("Dial = %v, echoed %q; want secret", err, out.String())
			}
		})
	}
	if _, _, err := ServerTLS(certFile, ""); err == nil {
		t.Fatal("ServerTLS with a certificate and no key: no error")
	}
}

// TestDialServerClosesFirst checks that Dial returns when the server
// closes, even with stdin still open.
func TestDialServerClosesFirst(t *testing.T) {
	ln := listen(t, "127.0.0.1")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("bye\n"))
			c.Close()
		}
	}()
	stdin, w := net.Pipe() // never written: stdin stays open
	defer w.Close()
	defer stdin.Close()
	var out bytes.Buffer
	if err := Dial(context.Background(), DialConfig{Addr: ln.Addr().String()}, stdin, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "bye\n" {
		t.Fatalf("stdout = %q, want bye", out.String())
	}
}

func TestDialRefused(t *testing.T) {
	ln := listen(t, "127.0.0.1")
	addr := ln.Addr().String()
	ln.Close()
	err := Dial(context.Background(), DialConfig{Addr: addr}, strings.NewReader(""), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Dial = %v, want connection refused", err)
	}
}

// TestNcatClient has ncat, as a client, talk to the echo server.
func TestNcatClient(t *testing.T) {
	ncat := testenv.Peer(t, "ncat", "ncat")
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			addr := start(t, host, Config{Mode: ModeEcho})
			h, port, _ := net.SplitHostPort(addr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ncat, h, port) // ncat half-closes at stdin EOF, then waits
			cmd.Stdin = strings.NewReader("hello from ncat\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ncat: %v", err)
			}
			if string(out) != "hello from ncat\n" {
				t.Fatalf("ncat got %q", out)
			}
		})
	}
}

// TestDialAgainstPeers has Dial talk to a socat echo server: the reply
// must arrive after Dial half-closed. (ncat -l --exec /bin/cat cannot be
// this peer: ncat closes the connection as soon as it reads EOF, before
// cat answers; see TestDialNcatServer.)
func TestDialAgainstPeers(t *testing.T) {
	tests := []struct {
		name string
		tool string
		args func(port string) []string
	}{
		{"socat pipe", "socat", func(p string) []string {
			return []string{"TCP4-LISTEN:" + p + ",bind=127.0.0.1,reuseaddr,fork", "PIPE"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := testenv.Peer(t, tc.tool, tc.tool)
			ln := listen(t, "127.0.0.1")
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			ln.Close()
			ctx, cancel := context.WithCancel(context.Background())
			cmd := exec.CommandContext(ctx, path, tc.args(port)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); cmd.Wait() })
			addr := net.JoinHostPort("127.0.0.1", port)
			var out bytes.Buffer
			testenv.WaitFor(t, 5*time.Second, func() error { // the peer listens a moment after it starts
				out.Reset()
				return Dial(context.Background(), DialConfig{Addr: addr}, strings.NewReader("half-closed\n"), &out)
			})
			if out.String() != "half-closed\n" {
				t.Fatalf("reply = %q, want the echo", out.String())
			}
		})
	}
}

// TestDialNcatServer has Dial talk to ncat -l --exec /bin/cat, sending a
// line and reading the echo before stdin ends.
func TestDialNcatServer(t *testing.T) {
	ncat := testenv.Peer(t, "ncat", "ncat")
	ln := listen(t, "127.0.0.1")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ncat, "-l", "-k", "127.0.0.1", port, "--exec", "/bin/cat")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", port)
	testenv.WaitFor(t, 5*time.Second, func() error { // until ncat listens
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	stdin, w := io.Pipe()
	var out testenv.Buffer
	done := make(chan error, 1)
	go func() { done <- Dial(context.Background(), DialConfig{Addr: addr}, stdin, &out) }()
	fmt.Fprint(w, "through ncat\n")
	testenv.WaitFor(t, 5*time.Second, func() error {
		if out.String() != "through ncat\n" {
			return fmt.Errorf("stdout = %q, want the echo", out.String())
		}
		return nil
	})
	w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Dial did not return after stdin ended and ncat closed")
	}
}

// Package testenv holds what netkit's tests share: polling for state that
// sends no signal, finding the real peer programs that interoperability
// tests run against, and a buffer that a goroutine can write while the
// test reads it. Only tests import it.
package testenv

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// WaitFor polls f every 5ms until it returns nil, and fails the test with
// f's last error after d. Use it only for state that sends no signal
// (kernel socket states, counters); wait for a message where there is one.
func WaitFor(tb testing.TB, d time.Duration, f func() error) {
	tb.Helper()
	if err := Poll(d, f); err != nil {
		tb.Fatalf("after %s: %v", d, err)
	}
}

// Poll is WaitFor for code that is not the test goroutine: it returns f's
// last error after d instead of failing the test.
func Poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Peer returns the path of the program name, which an interoperability
// test runs against (ncat, socat, ss). When it is missing the test is
// skipped with a message naming pkg, the Debian package to install, or it
// fails if NETKIT_PEERS=required, as .ci/run sets.
func Peer(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("NETKIT_PEERS") == "required" {
		tb.Fatalf("%s not found and NETKIT_PEERS=required: apt-get install -y %s", name, pkg)
	}
	tb.Skipf("%s not found: apt-get install -y %s to run this test (NETKIT_PEERS=required makes this a failure)", name, pkg)
	return ""
}

// Buffer is a bytes.Buffer safe for concurrent use: a server or display
// goroutine writes it while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Golden compares got with the golden file testdata/name, or rewrites the
// file when the tests run with -update.
func Golden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		tb.Fatalf("output differs from %s (run go test -update if the change is right):\n%s", path, got)
	}
}

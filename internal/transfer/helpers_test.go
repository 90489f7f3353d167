package transfer

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

// eventLog records events and lets a test wait for one.
// It also notices calls that overlap, which the API promises never happen.
type eventLog struct {
	busy    atomic.Bool // inside add
	overlap atomic.Bool // two calls of add overlapped
	mu      sync.Mutex
	evs     []Event       // guarded by mu
	changed chan struct{} // closed and replaced on each event, guarded by mu
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) add(ev Event) {
	if !l.busy.CompareAndSwap(false, true) {
		l.overlap.Store(true)
	}
	defer l.busy.Store(false)
	time.Sleep(time.Microsecond) // widen the window for overlapping calls
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	close(l.changed)
	l.changed = make(chan struct{})
}

// all returns the events of a kind so far ("" for every event).
func (l *eventLog) all(kind string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, ev := range l.evs {
		if kind == "" || ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the n-th (from 1) event of kind that match accepts,
// failing the test after d.
func (l *eventLog) wait(t *testing.T, d time.Duration, kind string, n int, match func(Event) bool) Event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		seen := 0
		for _, ev := range l.evs {
			if ev.Kind == kind && (match == nil || match(ev)) {
				if seen++; seen == n {
					l.mu.Unlock()
					return ev
				}
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %d-th %q event within %v; events: %s", n, kind, d, l.dump())
		}
	}
}

func (l *eventLog) dump() string {
	var b strings.Builder
	for _, ev := range l.all("") {
		if ev.Kind == EventProgress {
			continue
		}
		fmt.Fprintf(&b, "\n  %s file=%q reason=%q offset=%d files=%d bytes=%d", ev.Kind, ev.File, ev.Reason, ev.Offset, ev.Files, ev.Bytes)
	}
	return b.String()
}

// testCode is the code of test receivers and senders that name none.
const testCode = "7-abaci-abase-abbey"

// receiver runs Receive on 127.0.0.1:0 until the test ends.
type receiver struct {
	addr   string
	log    *eventLog
	cancel context.CancelFunc
	exited chan struct{} // closed when Receive returned
	err    error         // Receive's result, read after exited
}

func startReceiver(t *testing.T, cfg RecvConfig) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{addr: ln.Addr().String(), log: newEventLog(), exited: make(chan struct{})}
	cfg.Events = r.log.add
	if !cfg.Open && !cfg.Classic && !cfg.TLS && cfg.Code == "" {
		cfg.Code = testCode
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.exited)
		r.err = Receive(ctx, ln, cfg)
	}()
	t.Cleanup(func() {
		if err := r.stop(); err != nil && !cfg.Once {
			t.Errorf("Receive: %v", err)
		}
		if r.log.overlap.Load() {
			t.Errorf("the receiver's event calls overlapped")
		}
	})
	r.log.wait(t, 5*time.Second, EventListening, 1, nil)
	return r
}

// stop cancels Receive and waits for it to return.
func (r *receiver) stop() error {
	r.cancel()
	return r.wait(10 * time.Second)
}

// wait waits up to d for Receive to return and returns its result.
func (r *receiver) wait(d time.Duration) error {
	select {
	case <-r.exited:
		return r.err
	case <-time.After(d):
		return fmt.Errorf("Receive did not return within %v", d)
	}
}

// connEnded waits for the n-th per-connection summary from the receiver:
// the sign that a connection is over and its files are in place.
func (r *receiver) connEnded(t *testing.T, n int) {
	t.Helper()
	r.log.wait(t, 20*time.Second, EventSummary, n, nil)
}

// send runs Send to addr and returns its summary and error with the
// sender's events.
func send2(t *testing.T, addr string, cfg SendConfig) (Summary, error, *eventLog) {
	t.Helper()
	log := newEventLog()
	cfg.Addr = addr
	cfg.Events = log.add
	if !cfg.Open && !cfg.Classic && !cfg.TLS && cfg.Code == "" && cfg.Relay == "" {
		cfg.Code = testCode
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := Send(ctx, cfg)
	if log.overlap.Load() {
		t.Errorf("the sender's event calls overlapped")
	}
	return sum, err, log
}

// writeFile writes data to path (making parents) with mode and mtime.
func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// treeInfo describes every path under root: type, mode, size, mtime and
// content hash, for comparing two trees.
func treeInfo(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			desc += " " + fileHash(t, p)
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := newHasher()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hexHash(sum(h))
}

// compareTrees fails when the trees under a and b differ.
func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	ta, tb := treeInfo(t, a), treeInfo(t, b)
	var keys []string
	for k := range ta {
		keys = append(keys, k)
	}
	for k := range tb {
		if _, ok := ta[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ta[k] != tb[k] {
			t.Errorf("%s: sent %q, received %q", k, ta[k], tb[k])
		}
	}
}

// listDir returns the names under dir, recursively, "/"-separated.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// checkGoroutines fails the test if goroutines started during it are
// still running at its end (after the other cleanups).
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		err := testenv.Poll(5*time.Second, func() error {
			if n := runtime.NumGoroutine(); n > before {
				return fmt.Errorf("%d goroutines, %d before the test", n, before)
			}
			return nil
		})
		if err != nil {
			buf := make([]byte, 1<<20)
			t.Errorf("%v\n%s", err, buf[:runtime.Stack(buf, true)])
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

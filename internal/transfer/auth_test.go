package transfer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

// TestCodes checks the code format: what NewCode makes parses back, and
// typing variations are accepted.
func TestCodes(t *testing.T) {
	if words, _ := codeWords(); len(words) != 2048 {
		t.Fatalf("%d code words, want 2048", len(words))
	}
	for range 50 {
		code, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		got, room, err := ParseCode(code)
		if err != nil || got != code || room < 1 || room > maxRoom {
			t.Fatalf("ParseCode(%q) = %q, %d, %v", code, got, room, err)
		}
	}
	tests := []struct {
		in, want string
	}{
		{"7-abaci-abase-abbey", "7-abaci-abase-abbey"},
		{"7 Abaci abase ABBEY", "7-abaci-abase-abbey"},
		{" 7--abaci-abase-abbey ", "7-abaci-abase-abbey"},
		{"7-abaci-abase", ""},
		{"0-abaci-abase-abbey", ""},
		{"1000-abaci-abase-abbey", ""},
		{"07-abaci-abase-abbey", ""},
		{"7-abaci-abase-notaword", ""},
		{"ABCD-EFGH-IJKL-MNOP", ""},
	}
	for _, tc := range tests {
		got, _, err := ParseCode(tc.in)
		if tc.want == "" && !errors.Is(err, ErrBadCode) {
			t.Errorf("ParseCode(%q) = %q, %v; want ErrBadCode", tc.in, got, err)
		}
		if tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("ParseCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestWrongCode: a sender with another code learns nothing and sends
// nothing; the receiver counts the attempt and, at MaxFailures, retires
// the code and returns ErrTooManyFailures.
func TestWrongCode(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "secret.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst, MaxFailures: 2, Once: true})
	for i := 1; i <= 2; i++ {
		_, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}, Code: "7-abaci-abase-zoom"})
		if !errors.Is(err, ErrWrongCode) {
			t.Fatalf("attempt %d: %v, want ErrWrongCode", i, err)
		}
		if len(log.all(EventManifest)) != 0 {
			t.Errorf("attempt %d: the sender offered its files to a receiver that did not prove the code", i)
		}
		ev := r.log.wait(t, 5*time.Second, EventError, i, nil)
		if !strings.Contains(ev.Reason, "did not prove the code") {
			t.Errorf("receiver's error %q, want one about the code", ev.Reason)
		}
	}
	if err := r.wait(10 * time.Second); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("Receive after 2 wrong codes: %v, want ErrTooManyFailures", err)
	}
	if len(r.log.all(EventManifest)) != 0 {
		t.Errorf("the receiver read a manifest from a sender without the code")
	}
	if got := listDir(t, dst); len(got) != 0 {
		t.Errorf("--dir holds %q, want nothing", got)
	}
}

// TestModeMismatch: each end says plainly what the other needs.
func TestModeMismatch(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "a.txt")
	writeFile(t, path, []byte("a"), 0o644, time.Now())
	tests := []struct {
		name string
		recv RecvConfig
		send SendConfig
		want string
	}{
		{"open sender, code receiver", RecvConfig{}, SendConfig{Open: true}, "requires its code: send with --code CODE"},
		{"code sender, open receiver", RecvConfig{Open: true}, SendConfig{}, "runs with --open and has no code: send with --open"},
		{"code sender, TLS receiver", RecvConfig{TLS: true}, SendConfig{}, "runs with --tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.recv.Dir = t.TempDir()
			r := startReceiver(t, tc.recv)
			tc.send.Paths = []string{path}
			_, err, _ := send2(t, r.addr, tc.send)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("send: %v, want %q", err, tc.want)
			}
			if got := listDir(t, tc.recv.Dir); len(got) != 0 {
				t.Errorf("--dir holds %q, want nothing", got)
			}
		})
	}
}

// startNetkitRelay runs Relay on 127.0.0.1:0 until the test ends.
func startNetkitRelay(t *testing.T, cfg RelayConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Relay(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Relay: %v", err)
		}
	})
	return ln.Addr().String()
}

// relaySend runs Send through relay (or proxy, which leads to it) on its
// own goroutine and returns the code it printed and a channel with its
// result.
func relaySend(t *testing.T, relay string, paths []string) (string, *eventLog, chan error) {
	t.Helper()
	log := newEventLog()
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	go func() {
		_, err := Send(ctx, SendConfig{Relay: relay, Paths: paths, IdleTimeout: 10 * time.Second, Events: log.add})
		done <- err
	}()
	ev := log.wait(t, 10*time.Second, EventCode, 1, nil)
	return ev.Code, log, done
}

// TestRelayTransfer: sender, receiver and relay on 127.0.0.1; neither end
// listens. The tree arrives whole.
func TestRelayTransfer(t *testing.T) {
	checkGoroutines(t)
	src, dst := t.TempDir(), t.TempDir()
	root := filepath.Join(src, "tree")
	writeFile(t, filepath.Join(root, "a.bin"), randomBytes(1, 5<<20), 0o644, time.Now())
	writeFile(t, filepath.Join(root, "sub", "b.txt"), []byte("hello\n"), 0o600, time.Now())
	relay := startNetkitRelay(t, RelayConfig{})
	code, slog, sent := relaySend(t, relay, []string{root})
	rlog := newEventLog()
	err := ReceiveRelay(context.Background(), RecvConfig{Dir: dst, Relay: relay, Code: code, Events: rlog.add})
	if err != nil {
		t.Fatalf("ReceiveRelay: %v\n%s", err, rlog.dump())
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v\n%s", err, slog.dump())
	}
	compareTrees(t, root, filepath.Join(dst, "tree"))
	if ev := rlog.all(EventListening); len(ev) != 1 || ev[0].Code != code || ev[0].Addr != relay || len(ev[0].Addrs) != 0 {
		t.Errorf("receiver's listening events %+v, want the relay and the code, no addresses", ev)
	}
	if p := slog.all(EventProgress); len(p) == 0 || p[len(p)-1].Done == 0 {
		t.Errorf("the sender saw no progress reported by the receiver")
	}
}

// TestRelayWrongRoom: a code nobody offered is refused at once.
func TestRelayWrongRoom(t *testing.T) {
	relay := startNetkitRelay(t, RelayConfig{})
	err := ReceiveRelay(context.Background(), RecvConfig{Dir: t.TempDir(), Relay: relay, Code: "9-abaci-abase-abbey"})
	if err == nil || !strings.Contains(err.Error(), "no room for code") {
		t.Errorf("ReceiveRelay: %v, want no room", err)
	}
}

// TestTamperingRelay: a relay (here a proxy in front of one) that changes
// one byte of the sealed stream fails the transfer on both ends with a
// clear error, and nothing is published.
func TestTamperingRelay(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f.bin")
	writeFile(t, path, randomBytes(2, 2<<20), 0o644, time.Now())
	relay := startNetkitRelay(t, RelayConfig{})
	proxy := startRelay(t, relay, flipAt(1<<20)) // well past the key exchange
	code, _, sent := relaySend(t, proxy.addr, []string{path})
	rerr := ReceiveRelay(context.Background(), RecvConfig{Dir: dst, Relay: relay, Code: code})
	if !errors.Is(rerr, ErrTampered) {
		t.Errorf("ReceiveRelay: %v, want ErrTampered", rerr)
	}
	serr := <-sent
	if serr == nil || !strings.Contains(serr.Error(), "changed on the way") {
		t.Errorf("Send: %v, want the receiver's report that the stream was changed", serr)
	}
	// What arrived before the changed record opened and is kept for
	// resume; nothing is published.
	if _, err := os.Stat(filepath.Join(dst, "f.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("f.bin published after a tampered transfer: %v", err)
	}
}

// TestGuessingRelay: a relay that plays the receiver to read the files,
// with a guess at the code, fails the sender's check of its proof: the
// sender stops before it offers anything.
func TestGuessingRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		var hello [relayHelloLen]byte
		if _, err := io.ReadFull(br, hello[:]); err != nil {
			return
		}
		conn.Write([]byte{stOK, stOK}) // room made, and at once "paired"
		room := int(hello[9])<<8 | int(hello[10])
		guess, _ := newCodeInRoom(room) // the number is known, the words guessed
		if _, err := readHello(br); err != nil {
			got <- err.Error()
			return
		}
		st, _ := newPake(guess, false)
		var buf bytes.Buffer
		typ, msgA, err := readFrame(br, &buf)
		if err != nil || typ != fPake || st.update(msgA) != nil {
			got <- "no key exchange"
			return
		}
		keys, _ := st.keys(msgA)
		b := appendHello(nil, 0, authCode)
		b = appendFrame(b, fPake, st.mine)
		b = appendFrame(b, fConfirm, keys.confirmR[:])
		conn.Write(b)
		// Whatever comes next: the sender's proof must not.
		typ, _, err = readFrame(br, &buf)
		if err == nil {
			got <- "frame type " + strconv.Itoa(int(typ))
			return
		}
		got <- "closed"
	}()
	path := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, path, []byte("secret"), 0o644, time.Now())
	log := newEventLog()
	_, serr := Send(context.Background(), SendConfig{Relay: ln.Addr().String(), Paths: []string{path}, IdleTimeout: 10 * time.Second, Events: log.add})
	if !errors.Is(serr, ErrWrongCode) {
		t.Errorf("Send through a guessing relay: %v, want ErrWrongCode", serr)
	}
	if g := <-got; g != "closed" {
		t.Errorf("the guessing relay got %s after its proof, want the connection closed", g)
	}
	if len(log.all(EventManifest)) != 0 {
		t.Errorf("the sender offered its files")
	}
}

// TestRelayRoomLimits: a full relay says so; a room nobody joins closes
// after WaitTime and the sender is told.
func TestRelayRoomLimits(t *testing.T) {
	relay := startNetkitRelay(t, RelayConfig{MaxRooms: 1, WaitTime: 300 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())
	_, _, first := relaySend(t, relay, []string{path})
	_, err := Send(context.Background(), SendConfig{Relay: relay, Paths: []string{path}})
	if err == nil || !strings.Contains(err.Error(), "relay full") {
		t.Errorf("second room on a full relay: %v, want relay full", err)
	}
	if err := <-first; err == nil || !strings.Contains(err.Error(), "no receiver joined") {
		t.Errorf("a room nobody joined: %v, want no receiver joined", err)
	}
}

// TestHoldDropsSquatter: a sender that reserves all the space and then
// sends only keepalives is dropped after Hold, and the space and the name
// go to the next sender. Before its proof of the code, a peer reserves
// nothing at all (TestWrongCode).
func TestHoldDropsSquatter(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "big.bin")
	writeFile(t, path, randomBytes(3, 1<<20), 0o644, time.Now())
	free := func() (int64, error) { return 1<<20 + 10, nil }
	// Hold must outlast any pause of the honest sender below under -race on
	// a loaded machine (300 ms did not: 1 run in 20).
	r := startReceiver(t, RecvConfig{Dir: dst, Hold: 2 * time.Second, freeSpace: free})

	squat := dialRaw(t, r.addr)
	a := squat.manifest([]entry{{Kind: kindFile, Name: "big.bin", Mode: 0o644, Size: 1 << 20}})
	if a[0].Verdict != vSend {
		t.Fatalf("squatter's answer %+v, want send", a[0])
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // keepalives, never data
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := squat.conn.Write(appendFrame(nil, fKeepalive, nil)); err != nil {
					return
				}
			}
		}
	}()
	ev := r.log.wait(t, 10*time.Second, EventError, 1, nil)
	if !strings.Contains(ev.Reason, "moved no file data") {
		t.Fatalf("receiver's error %q, want the squatter dropped", ev.Reason)
	}
	r.connEnded(t, 1)
	sum, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}})
	if err != nil || sum.Verified != 1 {
		t.Fatalf("send after the squatter: %+v, %v\nreceiver: %s", sum, err, r.log.dump())
	}
}

// TestTakeover: a sender stopped and started again from the same host
// takes over the name its stalled earlier connection still holds.
func TestTakeover(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f.bin")
	writeFile(t, path, randomBytes(4, 64<<10), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst, takeover: 50 * time.Millisecond})
	old := dialRaw(t, r.addr)
	if a := old.manifest([]entry{{Kind: kindFile, Name: "f.bin", Mode: 0o644, Size: 64 << 10}}); a[0].Verdict != vSend {
		t.Fatalf("first answer %+v", a[0])
	}
	// The old connection stays open and silent, as after a lost Ctrl-C. A
	// try before it has been idle for the takeover time is told to retry
	// (the takeover time has no signal: poll).
	testenv.WaitFor(t, 10*time.Second, func() error {
		sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
		if err == nil && sum.Verified != 1 {
			err = errors.New("not verified: " + log.dump())
		}
		return err
	})
	if w := r.log.all(EventWarning); len(w) == 0 || !strings.Contains(w[0].Reason, "took over") {
		t.Errorf("receiver warnings %+v, want a takeover", w)
	}
}

// TestMaxConns: connections past MaxConns are told the receiver is busy.
func TestMaxConns(t *testing.T) {
	r := startReceiver(t, RecvConfig{Dir: t.TempDir(), MaxConns: 1})
	dialRaw(t, r.addr) // holds the only slot
	path := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())
	_, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}})
	if err == nil || !strings.Contains(err.Error(), "busy: this receiver serves 1 connections at once") {
		t.Errorf("send past --max-conns: %v, want busy", err)
	}
}

// TestManifestBudget: a manifest larger than the memory left for
// manifests is refused with a reason, before it is read.
func TestManifestBudget(t *testing.T) {
	r := startReceiver(t, RecvConfig{Dir: t.TempDir(), ManifestMem: 1 << 20})
	s := dialRaw(t, r.addr)
	var entries []entry
	for i := range 20000 {
		entries = append(entries, entry{Kind: kindFile, Name: "f" + strings.Repeat("x", 20) + strconv.Itoa(i), Mode: 0o644})
	}
	s.frame(fManifest, encodeManifest(entries))
	typ, p := s.next()
	if typ != fAbort || !strings.Contains(string(p), "receiver busy: a manifest of") {
		t.Errorf("frame %d %q, want an abort for the manifest budget", typ, p)
	}
}

// TestManifestMemory measures what the largest manifest costs the
// receiver, for docs/transfer.md: NETKIT_MANIFEST_MEM=1 go test -run
// TestManifestMemory -v ./internal/transfer
func TestManifestMemory(t *testing.T) {
	if os.Getenv("NETKIT_MANIFEST_MEM") == "" {
		t.Skip("set NETKIT_MANIFEST_MEM=1 to measure")
	}
	measureManifest(t)
}

// TestRelaySenderLeaves: a room whose sender went away is closed at
// once, so that a receiver joining later is told there is no such room
// instead of waiting on a dead one.
func TestRelaySenderLeaves(t *testing.T) {
	relay := startNetkitRelay(t, RelayConfig{})
	conn, st, err := relayDial(context.Background(), relay, opCreate, 42)
	if err != nil || st != stOK {
		t.Fatalf("create: %d, %v", st, err)
	}
	conn.Close()
	testenv.WaitFor(t, 10*time.Second, func() error { // the room's end has no signal here
		err := ReceiveRelay(context.Background(), RecvConfig{Dir: t.TempDir(), Relay: relay, Code: "42-abaci-abase-abbey"})
		if err == nil || !strings.Contains(err.Error(), "no room for code") {
			return fmt.Errorf("ReceiveRelay: %v, want no room", err)
		}
		return nil
	})
}

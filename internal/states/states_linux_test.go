package states

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

// triple is what a socket test compares: addresses and state.
type triple struct {
	local, remote netip.AddrPort
	state         State
}

func (tr triple) String() string { return fmt.Sprintf("%s %s %s", tr.local, tr.remote, tr.state) }

func addrPort(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }

// dialPair connects to ln and accepts: the client and server ends.
func dialPair(t *testing.T, ln net.Listener) (c, s *net.TCPConn) {
	t.Helper()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		cc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return cc.(*net.TCPConn), sc.(*net.TCPConn)
}

// knownStates opens, on host (127.0.0.1 or ::1), a listener, an
// established pair, a half-closed pair and a closed one, and returns the
// listener's port and the triples each source must report for it.
func knownStates(t *testing.T, src Source, host string) (uint16, []triple) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("no %s: %v", host, err)
	}
	t.Cleanup(func() { ln.Close() })
	lnAddr := addrPort(ln.Addr())
	any := netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	if lnAddr.Addr().Is4() {
		any = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	want := []triple{{lnAddr, any, Listen}}
	pair := func(c, s *net.TCPConn, cs, ss State) {
		want = append(want, triple{addrPort(c.LocalAddr()), lnAddr, cs}, triple{lnAddr, addrPort(c.LocalAddr()), ss})
	}

	c1, s1 := dialPair(t, ln)
	pair(c1, s1, Established, Established)

	// The client shuts its side: FIN_WAIT2 there, CLOSE_WAIT on the server,
	// which does not close.
	c2, s2 := dialPair(t, ln)
	if err := c2.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	pair(c2, s2, FinWait2, CloseWait)

	// The client closes first, then the server: TIME_WAIT on the client,
	// nothing left on the server once its LAST_ACK is acknowledged.
	c3, s3 := dialPair(t, ln)
	c3Addr := addrPort(c3.LocalAddr())
	c3.Close()
	waitForStates(t, src, []triple{{lnAddr, c3Addr, CloseWait}})
	s3.Close()
	want = append(want, triple{c3Addr, lnAddr, TimeWait})
	return lnAddr.Port(), want
}

// waitForStates waits until a snapshot from src holds every triple.
func waitForStates(t *testing.T, src Source, want []triple) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, func() error {
		socks, err := Snapshot(context.Background(), src)
		if err != nil {
			return err
		}
		have := make(map[triple]bool)
		for _, s := range socks {
			have[triple{s.Local, s.Remote, s.State}] = true
		}
		var missing []string
		for _, w := range want {
			if !have[w] {
				missing = append(missing, w.String())
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s source lacks %s", src, strings.Join(missing, "; "))
		}
		return nil
	})
}

// ourTriples returns, sorted, the triples of the sockets that belong to
// the connections of want: the listener, and sockets between the listener
// and one of the test's client addresses. Other sockets on the same port
// (TIME_WAIT left by an earlier listener that had the same port, which
// the kernel may hand out again) are not the test's.
func ourTriples(socks []Socket, want []triple) []string {
	ln := want[0].local // knownStates puts the listener first
	clients := make(map[netip.AddrPort]bool)
	for _, w := range want[1:] {
		for _, a := range []netip.AddrPort{w.local, w.remote} {
			if a != ln {
				clients[a] = true
			}
		}
	}
	var out []string
	for _, s := range socks {
		if (s.Local == ln && (s.State == Listen || clients[s.Remote])) || (s.Remote == ln && clients[s.Local]) {
			out = append(out, triple{s.Local, s.Remote, s.State}.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestSnapshotKnownStates(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		for _, src := range []Source{Netlink, Proc} {
			t.Run(host+"/"+string(src), func(t *testing.T) {
				port, want := knownStates(t, src, host)
				waitForStates(t, src, want)
				// Nothing else on the port: the server end of the closed pair
				// has gone.
				testenv.WaitFor(t, 5*time.Second, func() error {
					socks, err := Snapshot(context.Background(), src)
					if err != nil {
						return err
					}
					if got := ourTriples(socks, want); len(got) != len(want) {
						return fmt.Errorf("sockets on port %d:\n%s\nwant %d", port, strings.Join(got, "\n"), len(want))
					}
					return nil
				})
				// The other source agrees.
				other := map[Source]Source{Netlink: Proc, Proc: Netlink}[src]
				a, err1 := Snapshot(context.Background(), src)
				b, err2 := Snapshot(context.Background(), other)
				if err := errors.Join(err1, err2); err != nil {
					t.Fatal(err)
				}
				if pa, pb := ourTriples(a, want), ourTriples(b, want); !slices.Equal(pa, pb) {
					t.Fatalf("%s says\n%s\n%s says\n%s", src, strings.Join(pa, "\n"), other, strings.Join(pb, "\n"))
				}
			})
		}
	}
}

func TestOwners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	socks, err := Snapshot(context.Background(), Netlink)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := Owners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	SetOwners(socks, owners)
	for _, s := range socks {
		if s.Local == addrPort(ln.Addr()) && s.State == Listen {
			comm, _ := os.ReadFile("/proc/self/comm")
			if s.PID != os.Getpid() || s.Program != strings.TrimSpace(string(comm)) {
				t.Fatalf("listener owned by %d/%s, want %d/%s", s.PID, s.Program, os.Getpid(), comm)
			}
			return
		}
	}
	t.Fatalf("no listener %s in the snapshot", ln.Addr())
}

// ssStates maps ss's state names to ours.
var ssStates = map[string]State{
	"LISTEN": Listen, "ESTAB": Established, "SYN-SENT": SynSent, "SYN-RECV": SynRecv,
	"FIN-WAIT-1": FinWait1, "FIN-WAIT-2": FinWait2, "TIME-WAIT": TimeWait, "UNCONN": Close,
	"CLOSE-WAIT": CloseWait, "LAST-ACK": LastAck, "CLOSING": Closing,
}

// parseSSAddr reads ss's "127.0.0.1:8000", "[::1]:8000", "0.0.0.0:*",
// "[::]:*" or "*:*".
func parseSSAddr(s string, v4 bool) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("ss address %q", s)
	}
	host, port := strings.Trim(s[:i], "[]"), s[i+1:]
	if port == "*" {
		port = "0"
	}
	if host == "*" {
		host = "::"
		if v4 {
			host = "0.0.0.0"
		}
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // a link-local address's zone
	}
	return netip.ParseAddrPort(net.JoinHostPort(host, port))
}

// TestCompareSS checks that netkit and "ss -tan" see the same sockets on
// the test's ports. Without ss it skips, unless NETKIT_PEERS=required.
func TestCompareSS(t *testing.T) {
	ss := testenv.Peer(t, "ss", "iproute2")
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			_, want := knownStates(t, Netlink, host)
			waitForStates(t, Netlink, want)
			out, err := exec.Command(ss, "-tan").Output()
			if err != nil {
				t.Fatalf("ss -tan: %v", err)
			}
			var fromSS []Socket
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) < 5 || f[0] == "State" {
					continue
				}
				st, ok := ssStates[f[0]]
				if !ok {
					t.Fatalf("ss state %q in %q", f[0], sc.Text())
				}
				v4 := strings.Count(f[3], ":") == 1 && !strings.HasPrefix(f[3], "[")
				l, err1 := parseSSAddr(f[3], v4)
				r, err2 := parseSSAddr(f[4], v4)
				if err := errors.Join(err1, err2); err != nil {
					t.Fatalf("ss line %q: %v", sc.Text(), err)
				}
				fromSS = append(fromSS, Socket{Local: l, Remote: r, State: st})
			}
			ours, err := Snapshot(context.Background(), Netlink)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := ourTriples(ours, want), ourTriples(fromSS, want); !slices.Equal(a, b) {
				t.Fatalf("netkit says\n%s\nss -tan says\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
}

// TestWatch watches a listener's port while a connection opens and
// closes, and checks the log: each end established, then closing, and
// the server's end gone.
func TestWatch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnAddr := addrPort(ln.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 100)
	done := make(chan []Transition)
	started := make(chan struct{})
	go func() {
		defer close(done)
		// The listener is in the baseline: dial only once it is taken.
		cfg := WatchConfig{Source: Netlink, Port: lnAddr.Port(), Interval: 5 * time.Millisecond, Started: func(int, error) { close(started) }}
		ts, err := Watch(ctx, cfg, func(e Event) { events <- e })
		if err != nil {
			t.Error(err)
		}
		done <- ts
	}()
	<-started

	var seen []Event
	logString := func() string {
		var b strings.Builder
		for _, e := range seen {
			b.WriteString(e.String() + "\n")
		}
		return b.String()
	}
	// next returns the first event for local -> remote that matches,
	// among those seen so far or, reading more, to come.
	next := func(local, remote netip.AddrPort, match func(Event) bool) Event {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for i := 0; ; i++ {
			for ; i < len(seen); i++ {
				if e := seen[i]; e.Local == local && e.Remote == remote && match(e) {
					return e
				}
			}
			select {
			case e := <-events:
				seen = append(seen, e)
			case <-timeout:
				t.Fatalf("no such event for %s -> %s; log:\n%s", local, remote, logString())
			}
			i--
		}
	}
	to := func(s State) func(Event) bool { return func(e Event) bool { return e.To == s } }

	c, s := dialPair(t, ln)
	cAddr := addrPort(c.LocalAddr())
	next(cAddr, lnAddr, to(Established))
	next(lnAddr, cAddr, to(Established))
	c.Close()
	next(cAddr, lnAddr, to(FinWait2))
	next(lnAddr, cAddr, to(CloseWait))
	s.Close()
	gone := next(lnAddr, cAddr, to(0))
	if !slices.Equal(gone.Path, []State{Established, CloseWait}) && !slices.Equal(gone.Path, []State{Established, CloseWait, LastAck}) {
		t.Errorf("server end's path %v, want ESTABLISHED, CLOSE_WAIT (, LAST_ACK)", gone.Path)
	}
	if !strings.HasSuffix(gone.String(), "-> gone") {
		t.Errorf("gone event %q", gone)
	}
	next(cAddr, lnAddr, to(TimeWait))
	cancel()
	ts := <-done
	var sum bytes.Buffer
	WriteTransitions(&sum, ts)
	for _, want := range []string{"ESTABLISHED -> CLOSE_WAIT", "FIN_WAIT2 -> TIME_WAIT", "-> gone"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

// TestWatchDestroyed watches with an interval too long for any snapshot
// after the baseline: a connection that opens and closes is seen only
// through the kernel's socket-destroy notifications.
func TestWatchDestroyed(t *testing.T) {
	dw, err := openDestroyed()
	if err != nil {
		t.Skipf("no destroy notifications here: %v", err)
	}
	dw.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnAddr := addrPort(ln.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 100)
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cfg := WatchConfig{Source: Netlink, Port: lnAddr.Port(), Interval: time.Hour, Started: func(_ int, notify error) { started <- notify }}
		if _, err := Watch(ctx, cfg, func(e Event) { events <- e }); err != nil {
			t.Error(err)
		}
	}()
	defer func() { cancel(); <-done }()
	if err := <-started; err != nil {
		t.Fatalf("Started: notifications off: %v", err)
	}
	c, s := dialPair(t, ln)
	cAddr := addrPort(c.LocalAddr())
	c.Close()
	s.Close()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Local == lnAddr && e.Remote == cAddr || e.Local == cAddr && e.Remote == lnAddr {
				if !e.New || e.From != 0 {
					t.Fatalf("event %v: want a new connection", e)
				}
				return
			}
		case <-timeout:
			t.Fatal("no event for the connection within 5s: destroy notifications not received")
		}
	}
}

// TestSnapshotOneDump checks that the one-request dump (TCPDIAG_GETSOCK)
// and the per-family dumps find the same sockets: a listener and a
// connection on IPv4 and, where there is ::1, IPv6.
func TestSnapshotOneDump(t *testing.T) {
	var ports []uint16
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // no IPv6 loopback
		}
		defer ln.Close()
		dialPair(t, ln)
		ports = append(ports, addrPort(ln.Addr()).Port())
	}
	ctx := context.Background()
	var one, two []Socket
	if _, err := dumpNetlink(ctx, [][]byte{diagRequestCompat(1)}, func(s Socket) { one = append(one, s) }); err != nil {
		t.Fatal(err)
	}
	if _, err := dumpNetlink(ctx, [][]byte{diagRequest(afInet, 1), diagRequest(afInet6, 2)}, func(s Socket) { two = append(two, s) }); err != nil {
		t.Fatal(err)
	}
	for _, port := range ports {
		// TIME_WAIT sockets left on a reused port by earlier tests may
		// expire between the two dumps: compare the test's own.
		notTW := func(s Socket) bool { return s.State == TimeWait }
		a := slices.DeleteFunc(Select(one, Filter{Port: port}), notTW)
		b := slices.DeleteFunc(Select(two, Filter{Port: port}), notTW)
		if len(a) != 3 || !slices.Equal(a, b) {
			t.Fatalf("port %d: one dump found %v, two found %v; want the same 3 sockets", port, a, b)
		}
	}
}

func TestSocketInode(t *testing.T) {
	tests := []struct {
		link  string
		inode uint64
		ok    bool
	}{
		{"socket:[81234]", 81234, true},
		{"socket:[0]", 0, true},
		{"socket:[18446744073709551615]", 0, false}, // refused rather than risk overflow
		{"socket:[]", 0, false},
		{"socket:[12a]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[81234]", 0, false},
		{"/dev/null", 0, false},
	}
	for _, tc := range tests {
		inode, ok := socketInode([]byte(tc.link))
		if inode != tc.inode || ok != tc.ok {
			t.Errorf("socketInode(%q) = %d, %v; want %d, %v", tc.link, inode, ok, tc.inode, tc.ok)
		}
	}
}

// FuzzSocketInode: no panic, and what parses is "socket:[" digits "]"
// with the digits' value.
func FuzzSocketInode(f *testing.F) {
	for _, seed := range []string{"socket:[81234]", "socket:[]", "pipe:[1]", "socket:[99999999999999999999]", "socket:[1"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, link []byte) {
		inode, ok := socketInode(link)
		if !ok {
			return
		}
		digits, found := strings.CutPrefix(string(link), "socket:[")
		digits, found2 := strings.CutSuffix(digits, "]")
		want, err := strconv.ParseUint(digits, 10, 64)
		if !found || !found2 || err != nil || want != inode {
			t.Fatalf("socketInode(%q) = %d, true; want %d (%v)", link, inode, want, err)
		}
	})
}

// dirent builds one linux_dirent64 record for name, padded to 8 bytes as
// the kernel pads it.
func dirent(typ byte, name string) []byte {
	reclen := (direntName + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint16(b[direntReclen:], uint16(reclen))
	b[direntType] = typ
	copy(b[direntName:], name)
	return b
}

func TestNextDirent(t *testing.T) {
	const dtDir = 4
	var all []byte
	for _, r := range [][]byte{dirent(dtDir, "."), dirent(dtDir, ".."), dirent(dtLnk, "0"), dirent(dtLnk, "10234")} {
		all = append(all, r...)
	}
	var names []string
	for b := all; len(b) > 0; {
		var name []byte
		var ok bool
		name, b, ok = nextDirent(b)
		if !ok {
			t.Fatalf("a whole record refused; %d bytes left", len(b))
		}
		if name != nil {
			if name[len(name)-1] != 0 {
				t.Fatalf("name %q is not NUL-terminated", name)
			}
			names = append(names, string(name[:len(name)-1]))
		}
	}
	if !slices.Equal(names, []string{"0", "10234"}) {
		t.Fatalf("names %q, want the two links 0 and 10234", names)
	}
	short := dirent(dtLnk, "7")
	for _, bad := range [][]byte{short[:direntName], short[:len(short)-1], {0: 0, direntReclen: 3, direntName: 'x'}} {
		if _, _, ok := nextDirent(bad); ok {
			t.Errorf("nextDirent(%v) = ok, want a refusal", bad)
		}
	}
}

// FuzzNextDirent: no panic, the records walk to the end of the buffer or
// stop, and a name returned is NUL-terminated inside its record.
func FuzzNextDirent(f *testing.F) {
	f.Add(append(dirent(dtLnk, "3"), dirent(4, ".")...))
	f.Add(dirent(dtLnk, "123456789"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			name, rest, ok := nextDirent(b)
			if !ok {
				return
			}
			if len(rest) >= len(b) {
				t.Fatalf("no progress: %d bytes, then %d", len(b), len(rest))
			}
			if name != nil && (len(name) < 2 || name[len(name)-1] != 0 || bytes.IndexByte(name, 0) != len(name)-1) {
				t.Fatalf("name %q: want a non-empty NUL-terminated name", name)
			}
			b = rest
		}
	})
}

// TestCountFrom counts a listener and one connection on its port, from
// both sources, as --summary does: while reading, keeping no socket.
func TestCountFrom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialPair(t, ln)
	port := addrPort(ln.Addr()).Port()
	for _, src := range []Source{Netlink, Proc, Auto} {
		t.Run(string(src), func(t *testing.T) {
			n, err := CountFrom(context.Background(), src, Filter{Port: port})
			if err != nil {
				t.Fatal(err)
			}
			// An earlier test's connection may have used the port as its
			// ephemeral one and wait in TIME_WAIT.
			delete(n, TimeWait)
			if n[Listen] != 1 || n[Established] != 2 || len(n) != 2 {
				t.Fatalf("counts %v, want LISTEN 1 and ESTABLISHED 2 only", n)
			}
			n, err = CountFrom(context.Background(), src, Filter{Port: port, State: Listen})
			if err != nil || n[Listen] != 1 || len(n) != 1 {
				t.Fatalf("with --state listen: counts %v, %v; want LISTEN 1 only", n, err)
			}
		})
	}
}

func TestSockstatCount(t *testing.T) {
	const sockstat = "sockets: used 1234\nTCP: inuse 10006 orphan 0 tw 457 alloc 10010 mem 296\nUDP: inuse 3 mem 57\n"
	const sockstat6 = "TCP6: inuse 12\nUDP6: inuse 1\n"
	tests := []struct {
		name, text, prefix, key string
		want                    int
	}{
		{"inuse", sockstat, "TCP:", "inuse", 10006},
		{"tw", sockstat, "TCP:", "tw", 457},
		{"ipv6", sockstat6, "TCP6:", "inuse", 12},
		{"no tw line in sockstat6", sockstat6, "TCP6:", "tw", 0},
		{"not TCP6 in sockstat", sockstat, "TCP6:", "inuse", 0},
		{"not a number", "TCP: inuse many\n", "TCP:", "inuse", 0},
		{"negative", "TCP: inuse -5\n", "TCP:", "inuse", 0},
		{"absurd, capped", "TCP: inuse 99999999999\n", "TCP:", "inuse", 1 << 22},
		{"empty", "", "TCP:", "inuse", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sockstatCount([]byte(tc.text), tc.prefix, tc.key); got != tc.want {
				t.Fatalf("sockstatCount = %d, want %d", got, tc.want)
			}
		})
	}
	if n := sizeHint(); n < 16 {
		t.Fatalf("sizeHint() = %d, want at least the margin of 16", n)
	}
}

// FuzzSockstatCount: no panic, and a count is never negative or above the
// cap, whatever /proc/net/sockstat holds.
func FuzzSockstatCount(f *testing.F) {
	f.Add([]byte("TCP: inuse 10006 orphan 0 tw 457 alloc 10010 mem 296\n"), "tw")
	f.Add([]byte("TCP: inuse\n"), "inuse")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		if n := sockstatCount(b, "TCP:", key); n < 0 || n > 1<<22 {
			t.Fatalf("sockstatCount = %d", n)
		}
	})
}

package states

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

// littleEndian reports whether this machine is: the /proc fixtures were
// written on one, and /proc prints addresses in host byte order.
func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestParseState(t *testing.T) {
	tests := []struct {
		in   string
		want State
	}{
		{"LISTEN", Listen}, {"listen", Listen}, {"estab", Established}, {"ESTABLISHED", Established},
		{"fin-wait-1", FinWait1}, {"FIN_WAIT2", FinWait2}, {"time-wait", TimeWait}, {"syn_recv", SynRecv},
		{"close", Close}, {"CLOSE_WAIT", CloseWait}, {"last-ack", LastAck}, {"closing", Closing}, {"SYN-SENT", SynSent},
	}
	for _, tc := range tests {
		got, err := ParseState(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseState(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "open", "FIN_WAIT3"} {
		if _, err := ParseState(bad); err == nil {
			t.Errorf("ParseState(%q) succeeded, want an error", bad)
		}
	}
	for _, s := range AllStates {
		if got, err := ParseState(s.String()); got != s || err != nil {
			t.Errorf("ParseState(%v.String()) = %v, %v", s, got, err)
		}
	}
}

func TestProcFixtures(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixtures hold little-endian /proc addresses")
	}
	for _, name := range []string{"proc-net-tcp", "proc-net-tcp6"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			socks, err := ParseProc(f)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteTable(&b, socks, false); err != nil {
				t.Fatal(err)
			}
			b.WriteString("\n")
			if err := WriteSummary(&b, socks); err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, name+".golden", b.String())
		})
	}
}

func TestParseProcLine(t *testing.T) {
	if !littleEndian() {
		t.Skip("the lines hold little-endian /proc addresses")
	}
	tests := []struct {
		name, line string
		want       Socket
		wantErr    string
	}{
		{
			name: "listener",
			line: "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000002 00:00000000 00000000  1000        0 81234 1 0000000000000000 100 0 0 10 0",
			want: Socket{Local: netip.MustParseAddrPort("127.0.0.1:8000"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: Listen, RecvQ: 2, UID: 1000, Inode: 81234},
		},
		{
			name: "ipv6 mapped close wait",
			line: "   3: 0000000000000000FFFF00000100007F:1F41 0000000000000000FFFF00000100007F:C400 08 00000003:00000005 00:00000000 00000000  1000        0 91241 1",
			want: Socket{Local: netip.MustParseAddrPort("[::ffff:127.0.0.1]:8001"), Remote: netip.MustParseAddrPort("[::ffff:127.0.0.1]:50176"), State: CloseWait, SendQ: 3, RecvQ: 5, UID: 1000, Inode: 91241},
		},
		{
			name: "new syn recv is syn recv",
			line: "   4: 0100007F:1F40 0100007F:C351 0C 00000000:00000000 01:00000064 00000000  1000        0 0 1 0000000000000000",
			want: Socket{Local: netip.MustParseAddrPort("127.0.0.1:8000"), Remote: netip.MustParseAddrPort("127.0.0.1:50001"), State: SynRecv, UID: 1000},
		},
		{name: "header", line: "  sl  local_address rem_address   st tx_queue", wantErr: "10 fields"},
		{name: "short address", line: "   0: 0100007:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 1", wantErr: "8 or 32 hex digits"},
		{name: "families differ", line: "   0: 0100007F:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 1", wantErr: "families differ"},
		{name: "bad state", line: "   0: 0100007F:1F40 00000000:0000 X 00000000:00000000 00:00000000 00000000  0 0 1", wantErr: "two hex digits"},
		{name: "bad queues", line: "   0: 0100007F:1F40 00000000:0000 0A 0000000000000000 00:00000000 00000000  0 0 1", wantErr: "TX:RX"},
		{name: "bad uid", line: "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  -1 0 1", wantErr: "uid"},
		{name: "bad inode", line: "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 x", wantErr: "inode"},
		{name: "bad hex", line: "   0: 0100007G:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 1", wantErr: "bad hex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcLine(tc.line)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

// formatProcLine writes s the way the kernel writes a /proc/net/tcp line.
func formatProcLine(s Socket) string {
	addr := func(ap netip.AddrPort) string {
		var b []byte
		if ap.Addr().Is4() {
			a := ap.Addr().As4()
			b = a[:]
		} else {
			a := ap.Addr().As16()
			b = a[:]
		}
		var sb strings.Builder
		for i := 0; i < len(b); i += 4 {
			fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(b[i:]))
		}
		return fmt.Sprintf("%s:%04X", sb.String(), ap.Port())
	}
	return fmt.Sprintf("%4d: %s %s %02X %08X:%08X 00:00000000 00000000 %5d %8d %d 1 0000000000000000",
		0, addr(s.Local), addr(s.Remote), uint8(s.State), s.SendQ, s.RecvQ, s.UID, 0, s.Inode)
}

func FuzzParseProcLine(f *testing.F) {
	// Every fixture line, and a few broken ones.
	for _, name := range []string{"proc-net-tcp.txt", "proc-net-tcp6.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			f.Add(line)
		}
	}
	f.Add("0: :1F40 : 0A :")
	f.Add("0: 0100007F:FFFFF 00000000:0000 0A 0:0 0 0 0 0 99999999999999999999")
	f.Fuzz(func(t *testing.T, line string) {
		s, err := parseProcLine(line)
		if err != nil {
			return
		}
		// What parsed writes back as a line that parses the same.
		if s.State == newSynRecv || !s.Local.Addr().IsValid() {
			t.Fatalf("parsed %q to %+v", line, s)
		}
		again, err := parseProcLine(formatProcLine(s))
		if err != nil || again != s {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", line, again, err, s)
		}
	})
}

func FuzzParseProc(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "proc-net-tcp6.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("sl\n\n" + strings.Repeat("x", 600)))
	f.Fuzz(func(t *testing.T, b []byte) {
		socks, err := ParseProc(bytes.NewReader(b))
		if err == nil && len(socks) > len(b)/20 {
			t.Fatalf("%d sockets from %d bytes", len(socks), len(b))
		}
	})
}

// appendDiagMsg appends s to b as the kernel sends it: an nlmsghdr of
// type SOCK_DIAG_BY_FAMILY and an inet_diag_msg.
func appendDiagMsg(b []byte, seq uint32, s Socket) []byte {
	ne := binary.NativeEndian
	m := make([]byte, nlmsgHdrLen+inetDiagMsgLen)
	ne.PutUint32(m[0:], uint32(len(m)))
	ne.PutUint16(m[4:], sockDiagByFamily)
	ne.PutUint16(m[6:], 2) // NLM_F_MULTI
	ne.PutUint32(m[8:], seq)
	d := m[nlmsgHdrLen:]
	d[0], d[1] = afInet6, uint8(s.State)
	if s.Local.Addr().Is4() {
		d[0] = afInet
	}
	binary.BigEndian.PutUint16(d[4:], s.Local.Port())
	binary.BigEndian.PutUint16(d[6:], s.Remote.Port())
	copy(d[8:24], s.Local.Addr().AsSlice())
	copy(d[24:40], s.Remote.Addr().AsSlice())
	ne.PutUint32(d[56:], s.RecvQ)
	ne.PutUint32(d[60:], s.SendQ)
	ne.PutUint32(d[64:], s.UID)
	ne.PutUint32(d[68:], uint32(s.Inode))
	return append(b, m...)
}

// appendDone appends an NLMSG_DONE message.
func appendDone(b []byte, seq uint32) []byte {
	m := make([]byte, nlmsgHdrLen+4)
	binary.NativeEndian.PutUint32(m[0:], uint32(len(m)))
	binary.NativeEndian.PutUint16(m[4:], nlmsgDone)
	binary.NativeEndian.PutUint32(m[8:], seq)
	return append(b, m...)
}

var diagSamples = []Socket{
	{Local: netip.MustParseAddrPort("127.0.0.1:8000"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: Listen, SendQ: 4096, UID: 1000, Inode: 81234},
	{Local: netip.MustParseAddrPort("[::1]:51234"), Remote: netip.MustParseAddrPort("[::1]:8000"), State: Established, RecvQ: 7, SendQ: 9, UID: 0, Inode: 1<<32 - 1},
	{Local: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"), Remote: netip.MustParseAddrPort("[2001:db8::1]:443"), State: TimeWait},
}

func TestParseDiag(t *testing.T) {
	var b []byte
	for _, s := range diagSamples {
		b = appendDiagMsg(b, 7, s)
	}
	b = appendDiagMsg(b, 99, diagSamples[0]) // another request's: skipped
	b = appendDone(b, 7)
	var got []Socket
	done, err := parseDiag(b, 7, func(s Socket) { got = append(got, s) })
	if err != nil || !done {
		t.Fatalf("parseDiag: done %v, %v; want done", done, err)
	}
	if len(got) != len(diagSamples) {
		t.Fatalf("got %d sockets, want %d", len(got), len(diagSamples))
	}
	for i := range got {
		if got[i] != diagSamples[i] {
			t.Errorf("socket %d = %+v, want %+v", i, got[i], diagSamples[i])
		}
	}

	errMsg := make([]byte, nlmsgHdrLen+20)
	binary.NativeEndian.PutUint32(errMsg[0:], uint32(len(errMsg)))
	binary.NativeEndian.PutUint16(errMsg[4:], nlmsgError)
	binary.NativeEndian.PutUint32(errMsg[8:], 7)
	binary.NativeEndian.PutUint32(errMsg[16:], uint32(0xffffffff-uint32(syscall.EPERM)+1))
	if _, err := parseDiag(errMsg, 7, func(Socket) {}); !errors.Is(err, syscall.EPERM) {
		t.Errorf("NLMSG_ERROR EPERM: err = %v, want EPERM", err)
	}
	for _, n := range []int{1, 15, nlmsgHdrLen + 10} {
		if _, err := parseDiag(b[:n], 7, func(Socket) {}); !errors.Is(err, errDumpTruncated) {
			t.Errorf("%d bytes: err = %v, want errDumpTruncated", n, err)
		}
	}
}

func TestDiagRequest(t *testing.T) {
	b := diagRequest(afInet6, 3)
	ne := binary.NativeEndian
	if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != 20 || ne.Uint16(b[6:]) != 0x301 || ne.Uint32(b[8:]) != 3 {
		t.Fatalf("header % x", b[:16])
	}
	if b[16] != afInet6 || b[17] != 6 || ne.Uint32(b[20:]) != 0xffffffff {
		t.Fatalf("inet_diag_req_v2 % x", b[16:24])
	}
}

func FuzzParseDiag(f *testing.F) {
	var b []byte
	for _, s := range diagSamples {
		b = appendDiagMsg(b, 1, s)
	}
	f.Add(appendDone(b, 1))
	f.Add(appendDiagMsg(nil, 1, diagSamples[1])[:40])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	// The answer to the older TCPDIAG_GETSOCK request: type 18.
	compat := appendDiagMsg(nil, 1, diagSamples[0])
	binary.NativeEndian.PutUint16(compat[4:], tcpDiagGetSock)
	f.Add(compat)
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_, err := parseDiag(b, 1, func(s Socket) {
			n++
			// Whatever parsed encodes back to the same socket.
			var again Socket
			if _, err := parseDiag(appendDiagMsg(nil, 1, s), 1, func(a Socket) { again = a }); err != nil || again != s {
				t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
			}
		})
		if n > len(b)/(nlmsgHdrLen+inetDiagMsgLen) {
			t.Fatalf("%d sockets from %d bytes (err %v)", n, len(b), err)
		}
	})
}

func TestWriteDiagram(t *testing.T) {
	socks := []Socket{{State: Listen}, {State: Listen}, {State: Established}, {State: TimeWait}, {State: CloseWait}}
	var b bytes.Buffer
	if err := WriteDiagram(&b, socks); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "diagram.golden", b.String())
	for _, s := range AllStates {
		if !strings.Contains(b.String(), "["+s.String()+" ") {
			t.Errorf("the diagram lacks %v", s)
		}
	}
}

// TestWatcherUpdate feeds the watcher made-up snapshots: a client's
// active close and the server's passive one.
func TestWatcherUpdate(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("127.0.0.1:51234"), netip.MustParseAddrPort("127.0.0.1:8000")
	other := netip.MustParseAddrPort("127.0.0.1:9000")
	c := func(st State, inode uint64) Socket { return Socket{Local: cli, Remote: srv, State: st, Inode: inode} }
	s := func(st State) Socket { return Socket{Local: srv, Remote: cli, State: st, Inode: 20} }
	snaps := [][]Socket{
		{{Local: srv, State: Listen, Inode: 1}, {Local: other, State: Listen}},
		{{Local: srv, State: Listen, Inode: 1}, c(SynSent, 10)},
		{{Local: srv, State: Listen, Inode: 1}, c(Established, 10), s(Established)},
		{{Local: srv, State: Listen, Inode: 1}, c(FinWait2, 10), s(CloseWait)},
		{{Local: srv, State: Listen, Inode: 1}, c(TimeWait, 0)},
		{{Local: srv, State: Listen, Inode: 1}},
	}
	var log bytes.Buffer
	w := &watcher{port: 8000, conns: make(map[connKey]*tracked), counts: make(map[[2]State]int),
		emit: func(e Event) { fmt.Fprintln(&log, e) }}
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, snap := range snaps {
		w.update(start.Add(time.Duration(i)*100*time.Millisecond), snap, i == 0)
	}
	log.WriteString("\n")
	if err := WriteTransitions(&log, w.transitions()); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "watch.golden", log.String())
}

func TestWriteTableProcesses(t *testing.T) {
	socks := []Socket{
		{Local: netip.MustParseAddrPort("127.0.0.1:80"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: Listen, PID: 42, Program: "nginx"},
		{Local: netip.MustParseAddrPort("127.0.0.1:80"), Remote: netip.MustParseAddrPort("127.0.0.1:5000"), State: TimeWait},
	}
	// Columns are measured in characters, not bytes: a zone or a program
	// name may be any UTF-8.
	wide := []Socket{
		{Local: netip.MustParseAddrPort("[fe80::1%wlä0]:22"), Remote: netip.MustParseAddrPort("[fe80::2%wlä0]:40000"), State: Established, RecvQ: 1234567, PID: 7, Program: "naïve"},
		{Local: netip.MustParseAddrPort("[::1]:22"), Remote: netip.MustParseAddrPort("[::]:0"), State: Listen, SendQ: 128, PID: 8, Program: "sshd"},
	}
	tests := []struct {
		name      string
		socks     []Socket
		processes bool
		want      string
	}{
		{"without", socks, false, "STATE      RECV-Q  SEND-Q  LOCAL         REMOTE\n" +
			"LISTEN     0       0       127.0.0.1:80  0.0.0.0:*\n" +
			"TIME_WAIT  0       0       127.0.0.1:80  127.0.0.1:5000\n"},
		{"with", socks, true, "STATE      RECV-Q  SEND-Q  LOCAL         REMOTE          PID/PROGRAM\n" +
			"LISTEN     0       0       127.0.0.1:80  0.0.0.0:*       42/nginx\n" +
			"TIME_WAIT  0       0       127.0.0.1:80  127.0.0.1:5000  -\n"},
		{"utf-8", wide, true, "STATE        RECV-Q   SEND-Q  LOCAL              REMOTE                PID/PROGRAM\n" +
			"ESTABLISHED  1234567  0       [fe80::1%wlä0]:22  [fe80::2%wlä0]:40000  7/naïve\n" +
			"LISTEN       0        128     [::1]:22           [::]:*                8/sshd\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, tc.socks, tc.processes); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Fatalf("table:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netkit/netkit/internal/testenv"
)

const testHash = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

// show feeds events to a Progress configured by cfg and returns what it
// wrote to Out and Err.
func show(t *testing.T, cfg ProgressConfig, events ...Event) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cfg.Out, cfg.Err = &out, &errOut
	p := NewProgress(cfg)
	for _, e := range events {
		p.Event(e)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String(), errOut.String()
}

func TestProgressLines(t *testing.T) {
	tests := []struct {
		name     string
		receiver bool
		classic  bool
		tls      bool
		confirm  bool
		event    Event
		want     string // "" for no line
	}{
		{name: "listening, open", receiver: true, event: Event{Kind: EventListening, Addr: "127.0.0.1:8000", Dir: "/srv/in", Addrs: []string{"127.0.0.1:8000"}},
			want: "receiving into /srv/in, listening on 127.0.0.1:8000 with --open: anyone who can reach it may send, in the clear\non the sending machine run:\n  netkit send --open PATH... 127.0.0.1:8000"},
		{name: "listening with the code", receiver: true, event: Event{Kind: EventListening, Addr: "[::]:8000", Dir: "/srv/in", Code: "7-tiger-lamp-cloud", Addrs: []string{"192.168.1.20:8000", "10.0.0.5:8000"}},
			want: "receiving into /srv/in, listening on [::]:8000; only a sender with the code can send\ncode 7-tiger-lamp-cloud\non the sending machine run:\n  netkit send --code 7-tiger-lamp-cloud PATH... 192.168.1.20:8000\n  netkit send --code 7-tiger-lamp-cloud PATH... 10.0.0.5:8000"},
		{name: "listening through a relay", receiver: true, event: Event{Kind: EventListening, Addr: "relay.example:8009", Dir: "/srv/in", Code: "7-tiger-lamp-cloud"},
			want: "receiving into /srv/in, through the relay relay.example:8009"},
		{name: "code from a relay", event: Event{Kind: EventCode, Addr: "relay.example:8009", Code: "7-tiger-lamp-cloud"},
			want: "code 7-tiger-lamp-cloud\non the receiving machine run: netkit recv --relay relay.example:8009 7-tiger-lamp-cloud"},
		{name: "waiting", event: Event{Kind: EventWaiting, Reason: "waiting for the receiver's ok"},
			want: "waiting for the receiver's ok"},
		{name: "listening with TLS", receiver: true, tls: true, event: Event{Kind: EventListening, Addr: "[::]:8000", Code: "ABCD-EFGH"},
			want: "listening on [::]:8000 with TLS\ncode ABCD-EFGH: send with netkit send --tls --code ABCD-EFGH PATH... HOST:8000"},
		{name: "connected, sender", event: Event{Kind: EventConnected, Peer: "192.168.1.20:8000"},
			want: "connected to 192.168.1.20:8000"},
		{name: "connected, receiver", receiver: true, event: Event{Kind: EventConnected, Peer: "10.0.0.5:51234"},
			want: "connection from 10.0.0.5:51234"},
		{name: "manifest, sender", event: Event{Kind: EventManifest, Files: 12, Bytes: 1288490189},
			want: "sending 12 files, 1.2 GiB"},
		{name: "manifest, receiver", receiver: true, event: Event{Kind: EventManifest, Peer: "10.0.0.5:51234", Files: 1, Bytes: 100},
			want: "10.0.0.5:51234 offers 1 file, 100 B"},
		{name: "manifest, receiver with --confirm (the confirmation shows it)", receiver: true, confirm: true, event: Event{Kind: EventManifest, Peer: "10.0.0.5:51234", Files: 1, Bytes: 100},
			want: ""},
		{name: "manifest, classic receiver", receiver: true, classic: true, event: Event{Kind: EventManifest, Peer: "10.0.0.5:51234", Files: 1},
			want: "10.0.0.5:51234 offers 1 file"},
		{name: "start, classic receiver", receiver: true, classic: true, event: Event{Kind: EventStart, Peer: "10.0.0.5:51234", File: "notes.txt"},
			want: "10.0.0.5:51234: start notes.txt"},
		{name: "start", event: Event{Kind: EventStart, File: "photos/a.jpg", Size: 3565158},
			want: "start photos/a.jpg (3.4 MiB)"},
		{name: "resume", event: Event{Kind: EventStart, File: "photos/a.jpg", Size: 3565158, Offset: 1 << 20},
			want: "resume photos/a.jpg at 1.0 MiB of 3.4 MiB"},
		{name: "progress", event: Event{Kind: EventProgress, File: "photos/a.jpg", Size: 3565158, Done: 1 << 20},
			want: ""},
		{name: "done", event: Event{Kind: EventDone, File: "photos/a.jpg", Size: 3565158, Hash: testHash},
			want: "done photos/a.jpg (3.4 MiB) blake3 " + testHash},
		{name: "done, receiver", receiver: true, event: Event{Kind: EventDone, Peer: "10.0.0.5:51234", File: "a", Size: 1, Hash: testHash},
			want: "10.0.0.5:51234: done a (1 B) blake3 " + testHash},
		{name: "done, classic", classic: true, event: Event{Kind: EventDone, File: "notes.txt", Size: 2048},
			want: "done notes.txt (2.0 KiB)"},
		{name: "skip", event: Event{Kind: EventSkip, File: "b.jpg", Reason: "already there"},
			want: "skip b.jpg: already there"},
		{name: "reject", event: Event{Kind: EventReject, File: "c.jpg", Reason: "exists; the receiver needs --overwrite"},
			want: "rejected c.jpg: exists; the receiver needs --overwrite"},
		{name: "warning", event: Event{Kind: EventWarning, File: "link", Reason: "symlink skipped"},
			want: "warning: link: symlink skipped"},
		{name: "warning without a file", event: Event{Kind: EventWarning, Reason: "slow disk"},
			want: "warning: slow disk"},
		{name: "error", event: Event{Kind: EventError, File: "d.jpg", Reason: "read: input/output error"},
			want: "error: d.jpg: read: input/output error"},
		{name: "error, receiver", receiver: true, event: Event{Kind: EventError, Peer: "10.0.0.5:51234", Reason: "idle for 30s"},
			want: "10.0.0.5:51234: error: idle for 30s"},
		{name: "summary, sender", event: Event{Kind: EventSummary, Files: 12, Bytes: 1288490189, Elapsed: 800 * time.Millisecond, Rate: 1.5 * (1 << 30), Verified: 12},
			want: "sent 12 files, 1.2 GiB in 0.8s (1.5 GiB/s), 12 verified"},
		{name: "summary, receiver", receiver: true, event: Event{Kind: EventSummary, Peer: "10.0.0.5:51234", Files: 1, Bytes: 1 << 20, Elapsed: 2 * time.Second, Verified: 1},
			want: "received 1 file, 1.0 MiB in 2.0s (512.0 KiB/s), 1 verified from 10.0.0.5:51234"},
		{name: "summary, classic", classic: true, event: Event{Kind: EventSummary, Files: 1, Bytes: 10, Elapsed: 42 * time.Millisecond},
			want: "sent 1 file, 10 B in 42ms (238 B/s), not verified (classic protocol)"},
		{name: "summary, nothing sent", event: Event{Kind: EventSummary, Elapsed: 75 * time.Second},
			want: "sent 0 files, 0 B in 1m15s, 0 verified"},
		{name: "summary with skips, rejects and failures", event: Event{Kind: EventSummary, Elapsed: time.Second, Skipped: 2, Rejected: 1, Failed: 3},
			want: "sent 0 files, 0 B in 1.0s, 0 verified, 2 already there, 1 rejected, 3 failed"},
		{name: "control characters in a name are quoted", receiver: true, event: Event{Kind: EventReject, File: "evil\x1b[2J.txt", Reason: "control character in name"},
			want: `rejected "evil\x1b[2J.txt": control character in name`},
		{name: "invalid UTF-8 is quoted", event: Event{Kind: EventSkip, File: "a\xffb", Reason: "x"},
			want: `skip "a\xffb": x`},
		{name: "unknown kind", event: Event{Kind: "future"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ProgressConfig{Style: ProgressLines, Receiver: tc.receiver, Classic: tc.classic, TLS: tc.tls, Confirm: tc.confirm}
			stdout, stderr := show(t, cfg, tc.event)
			want := tc.want
			if want != "" {
				want += "\n"
			}
			if stderr != want {
				t.Errorf("stderr = %q, want %q", stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

// transferEvents is a sender's transfer with one of each kind of event.
func transferEvents() []Event {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return []Event{
		{Time: at, Kind: EventConnected, Peer: "127.0.0.1:8000"},
		{Time: at, Kind: EventManifest, Files: 4, Bytes: 300},
		{Time: at, Kind: EventStart, File: "a", Size: 100},
		{Time: at, Kind: EventProgress, File: "a", Size: 100, Done: 50},
		{Time: at, Kind: EventDone, File: "a", Size: 100, Hash: testHash},
		{Time: at, Kind: EventSkip, File: "b", Reason: "already there"},
		{Time: at, Kind: EventReject, File: "c", Reason: "too large"},
		{Time: at, Kind: EventWarning, File: "l", Reason: "symlink skipped"},
		{Time: at, Kind: EventStart, File: "d", Size: 100, Offset: 10},
		{Time: at, Kind: EventError, File: "d", Reason: "read failed"},
		{Time: at, Kind: EventSummary, Files: 1, Bytes: 100, Elapsed: time.Second, Rate: 100, Verified: 1},
	}
}

func TestProgressQuiet(t *testing.T) {
	const wantErrors = "rejected c: too large\nerror: d: read failed\n"
	tests := []struct {
		name     string
		style    ProgressStyle
		receiver bool
		tls      bool
		events   []Event
		want     string
	}{
		{name: "quiet", style: ProgressQuiet, events: transferEvents(), want: wantErrors},
		{name: "json", style: ProgressJSON, events: transferEvents(), want: wantErrors},
		{
			name: "quiet receiver prints the TLS code", style: ProgressQuiet, receiver: true, tls: true,
			events: []Event{{Kind: EventListening, Addr: "[::]:9000", Code: "WXYZ-1234"}},
			want:   "code WXYZ-1234: send with netkit send --tls --code WXYZ-1234 PATH... HOST:9000\n",
		},
		{
			name: "quiet receiver prints the code", style: ProgressQuiet, receiver: true,
			events: []Event{{Kind: EventListening, Addr: "[::]:9000", Code: "7-tiger-lamp-cloud"}},
			want:   "code 7-tiger-lamp-cloud\n",
		},
		{
			name: "quiet receiver without a code prints nothing", style: ProgressQuiet, receiver: true,
			events: []Event{{Kind: EventListening, Addr: "[::]:9000"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr := show(t, ProgressConfig{Style: tc.style, Receiver: tc.receiver, TLS: tc.tls}, tc.events...)
			if stderr != tc.want {
				t.Errorf("stderr = %q, want %q", stderr, tc.want)
			}
		})
	}
}

func TestProgressJSON(t *testing.T) {
	events := transferEvents()
	stdout, _ := show(t, ProgressConfig{Style: ProgressJSON}, events...)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("%d lines, want one per event (%d):\n%s", len(lines), len(events), stdout)
	}
	for i, line := range lines {
		var got Event
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		if !reflect.DeepEqual(got, events[i]) {
			t.Errorf("line %d = %+v, want %+v", i+1, got, events[i])
		}
	}
	if want := `{"time":"2026-01-02T03:04:05Z","event":"done","file":"a","size":100,"hash":"` + testHash + `"}`; lines[4] != want {
		t.Errorf("done line = %s, want %s", lines[4], want)
	}
}

func TestProgressJSONFillsTime(t *testing.T) {
	before := time.Now()
	stdout, _ := show(t, ProgressConfig{Style: ProgressJSON}, Event{Kind: EventConnected, Peer: "x:1"})
	var got Event
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Time.Before(before.Truncate(time.Second)) || got.Time.After(time.Now()) {
		t.Fatalf("time = %v, want about %v", got.Time, before)
	}
}

// barRow matches a line that draws a bar rather than an event.
var barRow = regexp.MustCompile(`^\S+ +\[[=>-]*\] `)

func TestProgressBars(t *testing.T) {
	_, stderr := show(t, ProgressConfig{Style: ProgressBars, BarWidth: 80}, transferEvents()...)
	// Into a buffer, every redraw appends the bars in flight, where a
	// terminal would draw them over the previous ones. Without them, what
	// remains are the lines of ProgressLines but the starts, in order.
	var lines []string
	bars := 0
	for line := range strings.Lines(stderr) {
		if barRow.MatchString(line) {
			bars++
			continue
		}
		lines = append(lines, line)
	}
	want := []string{
		"connected to 127.0.0.1:8000\n",
		"sending 4 files, 300 B\n",
		"done a (100 B) blake3 " + testHash + "\n",
		"skip b: already there\n",
		"rejected c: too large\n",
		"warning: l: symlink skipped\n",
		"error: d: read failed\n",
		"sent 1 file, 100 B in 1.0s (100 B/s), 1 verified\n",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("lines without the bars =\n%q\nwant\n%q\nall of it:\n%s", lines, want, stderr)
	}
	if bars == 0 {
		t.Errorf("no bar drawn:\n%s", stderr)
	}
}

// TestProgressBarsClassicReceiver checks that files of unknown size get
// lines instead of bars.
func TestProgressBarsClassicReceiver(t *testing.T) {
	_, stderr := show(t, ProgressConfig{Style: ProgressBars, Receiver: true, Classic: true},
		Event{Kind: EventStart, Peer: "p:1", File: "notes.txt"},
		Event{Kind: EventDone, Peer: "p:1", File: "notes.txt", Size: 6},
	)
	if want := "p:1: start notes.txt\np:1: done notes.txt (6 B)\n"; stderr != want {
		t.Errorf("output = %q, want %q", stderr, want)
	}
}

// TestProgressBarsInFlight closes a Progress while files are in flight, as
// when a transfer is interrupted, and checks that the bars were drawn.
func TestProgressBarsInFlight(t *testing.T) {
	var errOut testenv.Buffer
	p := NewProgress(ProgressConfig{Style: ProgressBars, Err: &errOut, BarWidth: 100})
	start := time.Now()
	p.Event(Event{Time: start, Kind: EventStart, File: "big.iso", Size: 10 << 20})
	p.Event(Event{Time: start.Add(time.Second), Kind: EventProgress, File: "big.iso", Size: 10 << 20, Done: 5 << 20})
	p.Event(Event{Kind: EventStart, File: "other", Size: 1 << 20})
	// The bars are drawn on a ticker: wait for a frame with both.
	deadline := time.Now().Add(5 * time.Second)
	for out := errOut.String(); !strings.Contains(out, "5.0 MiB / 10.0 MiB 5.0 MiB/s") || !strings.Contains(out, "other"); out = errOut.String() {
		if time.Now().After(deadline) {
			t.Fatalf("no bars drawn after 5s:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Event(Event{Kind: EventError, File: "big.iso", Reason: "connection reset"})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	out := errOut.String()
	// On a terminal the last redraw erases the bars; into a buffer it
	// appends them once more.
	if want := "error: big.iso: connection reset\n"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	p.Event(Event{Kind: EventDone, File: "other"}) // after Close: ignored
	if errOut.String() != out {
		t.Errorf("an event after Close wrote %q", strings.TrimPrefix(errOut.String(), out))
	}
}

func TestProgressConcurrent(t *testing.T) {
	styles := []struct {
		name  string
		style ProgressStyle
	}{{"lines", ProgressLines}, {"bars", ProgressBars}, {"json", ProgressJSON}}
	for _, tc := range styles {
		style := tc.style
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			p := NewProgress(ProgressConfig{Style: style, Out: &out, Err: &errOut, Receiver: true, BarWidth: 80})
			var wg sync.WaitGroup
			for c := range 8 {
				peer := fmt.Sprintf("10.0.0.%d:5000", c)
				wg.Go(func() {
					for _, e := range transferEvents() {
						e.Peer = peer
						p.Event(e)
					}
				})
			}
			wg.Wait()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			text := errOut.String()
			if style == ProgressJSON {
				text = out.String()
			}
			for c := range 8 {
				want := fmt.Sprintf("10.0.0.%d:5000: done a (100 B) blake3 %s\n", c, testHash)
				if style == ProgressJSON {
					want = fmt.Sprintf(`"peer":"10.0.0.%d:5000","file":"a","size":100,"hash":"%s"}`+"\n", c, testHash)
				}
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

func TestProgressFormat(t *testing.T) {
	bytesTests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{1<<20 - 1, "1.0 MiB"}, {1288490189, "1.2 GiB"}, {1 << 40, "1.0 TiB"}, {1 << 62, "4.0 EiB"},
	}
	for _, tc := range bytesTests {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	elapsedTests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {42 * time.Millisecond, "42ms"}, {812 * time.Millisecond, "0.8s"},
		{9949 * time.Millisecond, "9.9s"}, {12345 * time.Millisecond, "12s"}, {75 * time.Second, "1m15s"},
	}
	for _, tc := range elapsedTests {
		if got := formatElapsed(tc.d); got != tc.want {
			t.Errorf("formatElapsed(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got, want := shortName("a/very/long/directory/name/and/a/file.txt", 20), "a/very/lo…a/file.txt"; got != want {
		t.Errorf("shortName = %q, want %q", got, want)
	}
}

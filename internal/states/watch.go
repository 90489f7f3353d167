package states

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// DefaultInterval is how often Watch takes a snapshot when its Config
// leaves Interval zero.
const DefaultInterval = 100 * time.Millisecond

// maxPath bounds the states an Event's Path keeps, first ones first.
const maxPath = 32

// WatchConfig is what Watch watches.
type WatchConfig struct {
	Source   Source        // where snapshots come from
	Port     uint16        // sockets with this local or remote port; 0 for all
	Interval time.Duration // between snapshots; 0 means DefaultInterval
	// Started, if not nil, is called once the baseline is taken, with the
	// number of sockets in it (connections made after that are reported
	// as new) and nil if socket-destroy notifications are on, else the
	// reason they are not.
	Started func(sockets int, notify error)
}

// maxDestroyed bounds the destroy notifications waiting for the watch
// loop; more are dropped (and counted) rather than held.
const maxDestroyed = 4096

// Event is a change Watch saw in one connection between two snapshots.
// Changes that come and go between two snapshots are not seen: on
// loopback a handshake takes microseconds.
type Event struct {
	Time   time.Time
	Local  netip.AddrPort
	Remote netip.AddrPort
	From   State   // 0 when the socket is new
	To     State   // 0 when the socket is gone
	New    bool    // the socket appeared after the watch began
	Path   []State // every state seen for this socket, oldest first, To last
}

// String writes the event as a log line: time, addresses, and the
// socket's states so far, "new" first if it appeared while watching and
// "gone" last if it went.
func (e Event) String() string {
	return fmt.Sprintf("%s  %s -> %s  %s", e.Time.Format("15:04:05.000"), addrString(e.Local), addrString(e.Remote), e.pathString())
}

func (e Event) pathString() string {
	var parts []string
	if e.New {
		parts = append(parts, "new")
	}
	for _, s := range e.Path {
		parts = append(parts, s.String())
	}
	if e.To == 0 {
		parts = append(parts, "gone")
	}
	return strings.Join(parts, " -> ")
}

// MarshalJSON writes {"time", "local", "remote", "from", "to", "path"},
// with "new" and "gone" for zero states.
func (e Event) MarshalJSON() ([]byte, error) {
	path := make([]string, len(e.Path))
	for i, s := range e.Path {
		path[i] = s.String()
	}
	return json.Marshal(struct {
		Time   time.Time `json:"time"`
		Local  string    `json:"local"`
		Remote string    `json:"remote"`
		From   string    `json:"from"`
		To     string    `json:"to"`
		Path   []string  `json:"path"`
	}{e.Time, e.Local.String(), e.Remote.String(), endName(e.From, "new"), endName(e.To, "gone"), path})
}

func endName(s State, zero string) string {
	if s == 0 {
		return zero
	}
	return s.String()
}

// Transition counts the changes from one state to another.
type Transition struct {
	From, To State // 0: new and gone
	Count    int
}

// connKey identifies a connection between snapshots. The inode is left
// out: it becomes 0 when a socket enters TIME_WAIT.
type connKey struct{ local, remote netip.AddrPort }

type tracked struct {
	inode uint64
	isNew bool
	path  []State
}

// Watch takes a snapshot every cfg.Interval until ctx ends and calls emit,
// on the calling goroutine, for every socket that appeared, changed state
// or went since the last one. The first snapshot is the baseline: its
// sockets are not reported until they change. Where the kernel sends
// socket-destroy notifications (netlink sock_diag, Linux), each one is
// used too, as soon as it comes: a connection that opens and closes
// between two snapshots is still seen, new, in the state it had when the
// kernel freed it (CLOSE, usually); whether it is gone is left to the next
// snapshot, since a connection lives on in TIME_WAIT after its socket is
// freed. It returns the transitions seen, most frequent first, and a nil
// error when ctx ended; an error from a snapshot ends the watch.
func Watch(ctx context.Context, cfg WatchConfig, emit func(Event)) ([]Transition, error) {
	interval := cmp.Or(cfg.Interval, DefaultInterval)
	w := &watcher{conns: make(map[connKey]*tracked), counts: make(map[[2]State]int), emit: emit, port: cfg.Port}
	socks, err := Snapshot(ctx, cfg.Source)
	if err != nil {
		return nil, ignoreCanceled(ctx, err)
	}
	w.update(time.Now(), socks, true)

	destroyed := make(chan Socket, maxDestroyed)
	dw, notifyErr := openDestroyed()
	if notifyErr == nil {
		var wg sync.WaitGroup
		wg.Go(func() {
			// An error here ends the notifications, not the sampling.
			_, _ = dw.run(func(s Socket) {
				select {
				case destroyed <- s:
				default: // the loop is behind; the snapshots still see the socket go
				}
			})
		})
		defer func() { dw.Close(); wg.Wait() }()
	}
	if cfg.Started != nil {
		cfg.Started(len(w.conns), notifyErr)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return w.transitions(), nil
		case s := <-destroyed:
			w.destroyed(time.Now(), s)
			continue
		case <-tick.C:
		}
		socks, err := Snapshot(ctx, cfg.Source)
		if err != nil {
			return w.transitions(), ignoreCanceled(ctx, err)
		}
		w.update(time.Now(), socks, false)
	}
}

func ignoreCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// watcher is the state of one Watch, owned by its goroutine.
type watcher struct {
	port   uint16
	conns  map[connKey]*tracked
	counts map[[2]State]int
	emit   func(Event)
	// goneNow and gonePrev hold the connections the last two snapshots
	// found gone: a destroy notification for one of them comes late and
	// is not a new connection.
	goneNow, gonePrev map[connKey]bool
}

// update compares a snapshot with the last one and emits the differences,
// sorted by address so that the log reads the same every time.
func (w *watcher) update(now time.Time, socks []Socket, baseline bool) {
	socks = Select(socks, Filter{Port: w.port})
	seen := make(map[connKey]bool, len(socks))
	for _, s := range socks {
		k := connKey{s.Local, s.Remote}
		seen[k] = true
		c, ok := w.conns[k]
		if ok && c.inode != 0 && s.Inode != 0 && c.inode != s.Inode {
			w.gone(now, k, c) // the same addresses, another socket
			ok = false
		}
		switch {
		case !ok:
			c = &tracked{inode: s.Inode, isNew: !baseline, path: []State{s.State}}
			w.conns[k] = c
			if !baseline {
				w.report(now, k, c, 0, s.State)
			}
		default:
			w.change(now, k, c, s)
		}
	}
	var gone []connKey
	for k := range w.conns {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	w.gonePrev, w.goneNow = w.goneNow, make(map[connKey]bool, len(gone))
	for _, k := range gone {
		w.goneNow[k] = true
	}
	slices.SortFunc(gone, func(a, b connKey) int {
		return cmp.Or(a.local.Compare(b.local), a.remote.Compare(b.remote))
	})
	for _, k := range gone {
		w.gone(now, k, w.conns[k])
	}
}

// change reports s's state if it is not the last one seen for k.
func (w *watcher) change(now time.Time, k connKey, c *tracked, s Socket) {
	from := c.path[len(c.path)-1]
	if from == s.State {
		return
	}
	if len(c.path) < maxPath {
		c.path = append(c.path, s.State)
	} else {
		c.path[len(c.path)-1] = s.State
	}
	c.inode = cmp.Or(s.Inode, c.inode)
	w.report(now, k, c, from, s.State)
}

// destroyed records a socket the kernel freed that no snapshot saw: a
// connection that came and went between two snapshots, reported new in
// the state it was freed in. Connections being followed are left to the
// snapshots: the kernel frees a socket in CLOSE also when its connection
// lives on in TIME_WAIT, and that path reads FIN_WAIT2 -> TIME_WAIT.
func (w *watcher) destroyed(now time.Time, s Socket) {
	if !(Filter{Port: w.port}).Match(s) {
		return
	}
	k := connKey{s.Local, s.Remote}
	if _, ok := w.conns[k]; ok || w.goneNow[k] || w.gonePrev[k] {
		return
	}
	c := &tracked{inode: s.Inode, isNew: true, path: []State{s.State}}
	w.conns[k] = c
	w.report(now, k, c, 0, s.State)
}

func (w *watcher) gone(now time.Time, k connKey, c *tracked) {
	delete(w.conns, k)
	w.report(now, k, c, c.path[len(c.path)-1], 0)
}

func (w *watcher) report(now time.Time, k connKey, c *tracked, from, to State) {
	w.counts[[2]State{from, to}]++
	w.emit(Event{Time: now, Local: k.local, Remote: k.remote, From: from, To: to, New: c.isNew, Path: slices.Clone(c.path)})
}

func (w *watcher) transitions() []Transition {
	ts := make([]Transition, 0, len(w.counts))
	for ft, n := range w.counts {
		ts = append(ts, Transition{From: ft[0], To: ft[1], Count: n})
	}
	slices.SortFunc(ts, func(a, b Transition) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return ts
}

// WriteTransitions writes the summary of a watch: one line per kind of
// transition with its count.
func WriteTransitions(w io.Writer, ts []Transition) error {
	if len(ts) == 0 {
		_, err := io.WriteString(w, "no transitions seen\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "transitions seen:")
	for _, t := range ts {
		fmt.Fprintf(tw, "  %s -> %s\t%d\n", endName(t.From, "new"), endName(t.To, "gone"), t.Count)
	}
	return tw.Flush()
}

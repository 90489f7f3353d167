// Package states lists TCP sockets and their states, IPv4 and IPv6, the
// way "ss -tan" and "netstat -an" do: through netlink sock_diag on Linux,
// or by parsing /proc/net/tcp and /proc/net/tcp6. It also watches sockets
// for state changes and draws the TCP state diagram.
//
// Reading sockets is Linux only; elsewhere Snapshot returns an error that
// wraps ErrNotImplemented. Parsing, filtering and formatting work anywhere.
package states

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ErrNotImplemented is wrapped by the errors of Snapshot and Owners on
// systems other than Linux.
var ErrNotImplemented = errors.New("not implemented")

// State is a TCP state, numbered as the Linux kernel numbers them
// (include/net/tcp_states.h), which is also how /proc/net/tcp and
// sock_diag report them.
type State uint8

// The TCP states of RFC 793, in the kernel's numbering. Zero is not a
// state: it stands for "any" in a Filter and "new" in an Event.
const (
	Established State = 1
	SynSent     State = 2
	SynRecv     State = 3
	FinWait1    State = 4
	FinWait2    State = 5
	TimeWait    State = 6
	Close       State = 7
	CloseWait   State = 8
	LastAck     State = 9
	Listen      State = 10
	Closing     State = 11
	// newSynRecv is the kernel's state for a connection request not yet
	// a full socket; it is reported as SynRecv.
	newSynRecv State = 12
)

// AllStates lists every state in the order tables and summaries show them:
// roughly the life of a connection.
var AllStates = []State{
	Listen, SynSent, SynRecv, Established, FinWait1, FinWait2, TimeWait,
	CloseWait, LastAck, Closing, Close,
}

var stateNames = [...]string{
	Established: "ESTABLISHED", SynSent: "SYN_SENT", SynRecv: "SYN_RECV",
	FinWait1: "FIN_WAIT1", FinWait2: "FIN_WAIT2", TimeWait: "TIME_WAIT",
	Close: "CLOSE", CloseWait: "CLOSE_WAIT", LastAck: "LAST_ACK",
	Listen: "LISTEN", Closing: "CLOSING",
}

// String returns the state's name as netstat writes it: "FIN_WAIT1".
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// Valid reports whether s is one of the eleven states.
func (s State) Valid() bool { return s >= Established && s <= Closing }

// MarshalText writes the state's name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name, as ParseState does.
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	*s = st
	return err
}

// ParseState reads a state name, in any case, with "_" or "-" and with or
// without the dashes ss writes: "fin-wait-1", "FIN_WAIT1", "estab".
func ParseState(name string) (State, error) {
	n := strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(name))
	if n == "ESTAB" {
		n = "ESTABLISHED"
	}
	for _, s := range AllStates {
		if strings.ReplaceAll(s.String(), "_", "") == n {
			return s, nil
		}
	}
	return 0, fmt.Errorf("states: unknown state %q: want one of %s", name, stateList())
}

func stateList() string {
	names := make([]string, len(AllStates))
	for i, s := range AllStates {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// kernelState maps the kernel's state number to a State: newSynRecv is
// SynRecv. Unknown numbers are kept, and print as STATE(n).
func kernelState(n uint8) State {
	if State(n) == newSynRecv {
		return SynRecv
	}
	return State(n)
}

// Socket is one TCP socket.
type Socket struct {
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"` // 0.0.0.0:0 or [::]:0 for a listener
	State  State          `json:"state"`
	RecvQ  uint32         `json:"recv_q"` // bytes not yet read; for a listener, connections not yet accepted
	SendQ  uint32         `json:"send_q"` // bytes not yet acknowledged; via netlink, a listener's backlog
	UID    uint32         `json:"uid"`
	Inode  uint64         `json:"inode"` // 0 for sockets no file refers to, such as TIME_WAIT

	// Set by Owners, where the caller may read the owning process.
	PID     int    `json:"pid,omitempty"`
	Program string `json:"program,omitempty"`
}

// Source says where Snapshot reads sockets from.
type Source string

// The sources: Auto is Netlink, or Proc when netlink sock_diag fails.
const (
	Auto    Source = "auto"
	Netlink Source = "netlink"
	Proc    Source = "proc"
)

// ParseSource reads "auto", "netlink" or "proc".
func ParseSource(s string) (Source, error) {
	switch src := Source(s); src {
	case Auto, Netlink, Proc:
		return src, nil
	}
	return "", fmt.Errorf("states: unknown source %q: want auto, netlink or proc", s)
}

// Filter picks sockets. The zero Filter picks every socket.
type Filter struct {
	Port  uint16 // local or remote port; 0 for any
	State State  // 0 for any
}

// Match reports whether s passes the filter.
func (f Filter) Match(s Socket) bool {
	if f.Port != 0 && s.Local.Port() != f.Port && s.Remote.Port() != f.Port {
		return false
	}
	return f.State == 0 || s.State == f.State
}

// Pick returns the sockets that pass f, in the order given: for counting,
// where Select's sorting is wasted.
func Pick(socks []Socket, f Filter) []Socket {
	if f == (Filter{}) {
		return socks
	}
	out := make([]Socket, 0, len(socks))
	for _, s := range socks {
		if f.Match(s) {
			out = append(out, s)
		}
	}
	return out
}

// Select returns the sockets that pass f, sorted by Sort's order.
func Select(socks []Socket, f Filter) []Socket {
	out := make([]Socket, 0, len(socks))
	for _, s := range socks {
		if f.Match(s) {
			out = append(out, s)
		}
	}
	Sort(out)
	return out
}

// Sort orders sockets by local address and port, then remote, then state.
func Sort(socks []Socket) {
	slices.SortFunc(socks, func(a, b Socket) int {
		// Not cmp.Or, which compares all three every time.
		if c := a.Local.Compare(b.Local); c != 0 {
			return c
		}
		if c := a.Remote.Compare(b.Remote); c != 0 {
			return c
		}
		return cmp.Compare(a.State, b.State)
	})
}

// Count returns how many sockets sit in each state.
func Count(socks []Socket) map[State]int {
	n := make(map[State]int)
	for _, s := range socks {
		n[s.State]++
	}
	return n
}

// CountFrom returns how many of the sockets that pass f sit in each state,
// reading them as Scan does: no memory per socket, where Count needs a
// Snapshot first.
func CountFrom(ctx context.Context, src Source, f Filter) (map[State]int, error) {
	var n [256]int
	if err := Scan(ctx, src, func(s Socket) {
		if f.Match(s) {
			n[s.State]++
		}
	}); err != nil {
		return nil, err
	}
	m := make(map[State]int)
	for st, c := range n {
		if c > 0 {
			m[State(st)] = c
		}
	}
	return m, nil
}

// Owner is the process holding a socket open.
type Owner struct {
	PID     int
	Program string // its command name, /proc/PID/comm
}

// SetOwners fills in PID and Program of the sockets whose inode is in
// owners.
func SetOwners(socks []Socket, owners map[uint64]Owner) {
	for i := range socks {
		if o, ok := owners[socks[i].Inode]; ok && socks[i].Inode != 0 {
			socks[i].PID, socks[i].Program = o.PID, o.Program
		}
	}
}

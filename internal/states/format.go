package states

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable writes socks as a table, one line per socket, in the order
// given.
func WriteTable(w io.Writer, socks []Socket) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tRECV-Q\tSEND-Q\tLOCAL\tREMOTE\tPID/PROGRAM")
	for _, s := range socks {
		owner := "-"
		if s.PID != 0 {
			owner = strconv.Itoa(s.PID) + "/" + s.Program
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", s.State, s.RecvQ, s.SendQ, addrString(s.Local), addrString(s.Remote), owner)
	}
	return tw.Flush()
}

// addrString writes port 0 as "*", the way netstat does: "0.0.0.0:*".
func addrString(ap netip.AddrPort) string {
	if ap.Port() != 0 {
		return ap.String()
	}
	if ap.Addr().Is4() {
		return ap.Addr().String() + ":*"
	}
	return "[" + ap.Addr().String() + "]:*"
}

// WriteJSON writes socks as one JSON array.
func WriteJSON(w io.Writer, socks []Socket) error {
	if socks == nil {
		socks = []Socket{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(socks)
}

// WriteSummary writes how many sockets sit in each state, every state
// listed, then the total.
func WriteSummary(w io.Writer, socks []Socket) error {
	n := Count(socks)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, s := range AllStates {
		fmt.Fprintf(tw, "%s\t%d\t\n", s, n[s])
	}
	for s, c := range n { // states the kernel may add later
		if !s.Valid() {
			fmt.Fprintf(tw, "%s\t%d\t\n", s, c)
		}
	}
	fmt.Fprintf(tw, "total\t%d\t\n", len(socks))
	return tw.Flush()
}

// WriteSummaryJSON writes the counts as a JSON object: {"LISTEN": 2, ...,
// "total": 9}.
func WriteSummaryJSON(w io.Writer, socks []Socket) error {
	m := map[string]int{"total": len(socks)}
	for _, s := range AllStates {
		m[s.String()] = 0
	}
	for s, c := range Count(socks) {
		m[s.String()] = c
	}
	return json.NewEncoder(w).Encode(m)
}

// diagram is the TCP state diagram of RFC 793 (figure 6) with the
// simultaneous-open and reset edges left out. Each {STATE  } box is
// replaced by the state's name and count, padded to the box's width.
const diagram = `                              +---------+ ---------\      active OPEN
                              |  CLOSED |            \    -----------
                              +---------+<---------\   \   create TCB
                                |     ^              \   \  snd SYN
                   passive OPEN |     |   CLOSE        \   \
                   ------------ |     | ----------       \   \
                    create TCB  |     | delete TCB         \   \
                                V     |                      \   \
                           {LISTEN           }                 |   |
                 rcv SYN      |     |     SEND                 |   |
                -----------   |     |    -------               |   V
 {SYN_RECV         }<---------+     +--------------------->{SYN_SENT         }
   |      snd SYN,ACK          rcv SYN,ACK / snd ACK              |
   | rcv ACK of SYN  \-------------------------------------\      |
   |  --------------                                        V     V
   |       x                                    {ESTABLISHED      }
   |   CLOSE / snd FIN                          |                 |
   V                                            | CLOSE           | rcv FIN
 {FIN_WAIT1        }<---------------------------+ -------         | -------
   |      |   rcv FIN / snd ACK                   snd FIN         | snd ACK
   |      \--------------------\                                  V
   | rcv ACK of FIN             V                     {CLOSE_WAIT       }
   | --------------      {CLOSING          }             | CLOSE
   V       x               | rcv ACK of FIN              | -------
 {FIN_WAIT2        }       | --------------              | snd FIN
   |                       V        x                    V
   | rcv FIN         {TIME_WAIT        }      {LAST_ACK         }
   | -------               ^    |                        | rcv ACK of FIN
   | snd ACK               |    | Timeout=2MSL           | --------------
   \-----------------------/    | ------------           V        x
                                | delete TCB       {CLOSE            }
                                \------------------------>  (gone)

 [STATE n]: n sockets in that state now. The kernel's CLOSE is a socket
 not yet bound or connected; the diagram's CLOSED is no socket at all.`

var boxRE = regexp.MustCompile(`\{[A-Z_0-9]+ *\}`)

// WriteDiagram writes the TCP state diagram with, in each state's box,
// how many of socks sit in it.
func WriteDiagram(w io.Writer, socks []Socket) error {
	n := Count(socks)
	var b strings.Builder
	last := 0
	for _, m := range boxRE.FindAllStringIndex(diagram, -1) {
		box := diagram[m[0]:m[1]]
		b.WriteString(diagram[last:m[0]])
		last = m[1]
		name := strings.TrimSpace(box[1 : len(box)-1])
		st, _ := ParseState(name)
		label := fmt.Sprintf("[%s %d]", name, n[st])
		pad := strings.Repeat(" ", max(0, len(box)-len(label)))
		if last < len(diagram) && diagram[last] == '<' {
			// Keep the arrow's head at the label: "[SYN_RECV 0]<-----".
			label += "<"
			pad = strings.Repeat("-", len(pad))
			last++
		}
		b.WriteString(label + pad)
	}
	b.WriteString(diagram[last:])
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	out := strings.Join(lines, "\n")
	_, err := io.WriteString(w, out+"\n")
	return err
}

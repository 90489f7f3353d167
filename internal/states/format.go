package states

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// tableHeader names the columns of WriteTable.
var tableHeader = [...]string{"STATE", "RECV-Q", "SEND-Q", "LOCAL", "REMOTE", "PID/PROGRAM"}

// WriteTable writes socks as a table, one line per socket, in the order
// given, with columns two spaces apart; the PID/PROGRAM column only with
// processes. It builds every cell in one buffer and measures the columns
// before writing: a snapshot of 20,000 sockets costs a handful of
// allocations, not several per cell.
func WriteTable(w io.Writer, socks []Socket, processes bool) error {
	cols := len(tableHeader)
	if !processes {
		cols--
	}
	text := make([]byte, 0, 64*(len(socks)+1))
	ends := make([]int, 0, cols*(len(socks)+1)) // where each cell ends in text
	var widths [len(tableHeader)]int
	cell := func(col, start int) {
		widths[col] = max(widths[col], utf8.RuneCount(text[start:]))
		ends = append(ends, len(text))
	}
	for col, h := range tableHeader[:cols] {
		start := len(text)
		text = append(text, h...)
		cell(col, start)
	}
	for _, s := range socks {
		start := len(text)
		text = append(text, s.State.String()...)
		cell(0, start)
		start = len(text)
		text = strconv.AppendUint(text, uint64(s.RecvQ), 10)
		cell(1, start)
		start = len(text)
		text = strconv.AppendUint(text, uint64(s.SendQ), 10)
		cell(2, start)
		start = len(text)
		text = appendAddr(text, s.Local)
		cell(3, start)
		start = len(text)
		text = appendAddr(text, s.Remote)
		cell(4, start)
		if !processes {
			continue
		}
		start = len(text)
		if s.PID != 0 {
			text = append(strconv.AppendInt(text, int64(s.PID), 10), '/')
			text = append(text, s.Program...)
		} else {
			text = append(text, '-')
		}
		cell(5, start)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	start := 0
	for i, end := range ends {
		c := text[start:end]
		start = end
		bw.Write(c)
		if col := i % cols; col == cols-1 {
			bw.WriteByte('\n')
		} else {
			for range widths[col] - utf8.RuneCount(c) + 2 {
				bw.WriteByte(' ')
			}
		}
	}
	return bw.Flush()
}

// appendAddr appends ap, with port 0 as "*" the way netstat writes it:
// "0.0.0.0:*".
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	if ap.Port() != 0 {
		return ap.AppendTo(b)
	}
	if ap.Addr().Is4() {
		return append(ap.Addr().AppendTo(b), ":*"...)
	}
	return append(ap.Addr().AppendTo(append(b, '[')), "]:*"...)
}

// addrString is appendAddr as a string.
func addrString(ap netip.AddrPort) string { return string(appendAddr(nil, ap)) }

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

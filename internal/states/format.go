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
	"sync"
	"text/tabwriter"
	"unicode/utf8"
)

// tableHeader names the columns of WriteTable.
var tableHeader = [...]string{"STATE", "RECV-Q", "SEND-Q", "LOCAL", "REMOTE", "PID/PROGRAM"}

// WriteTable writes socks as a table, one line per socket, in the order
// given, with columns two spaces apart; the PID/PROGRAM column only with
// processes. A first pass measures the columns, a second formats each
// row into one reused line and writes it through a buffered writer: a
// table of 10,000 sockets costs a few small allocations and no memory per
// socket, which for a one-shot command is most of the cost.
func WriteTable(w io.Writer, socks []Socket, processes bool) error {
	cols := len(tableHeader)
	if !processes {
		cols--
	}
	var widths [len(tableHeader)]int
	for col, h := range tableHeader[:cols] {
		widths[col] = len(h)
	}
	var scratch [128]byte
	for i := range socks {
		s := &socks[i]
		widths[0] = max(widths[0], len(s.State.String()))
		widths[1] = max(widths[1], digits(s.RecvQ))
		widths[2] = max(widths[2], digits(s.SendQ))
		widths[3] = max(widths[3], utf8.RuneCount(appendAddr(scratch[:0], s.Local)))
		widths[4] = max(widths[4], utf8.RuneCount(appendAddr(scratch[:0], s.Remote)))
		if processes {
			widths[5] = max(widths[5], utf8.RuneCount(appendOwner(scratch[:0], s)))
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	line := make([]byte, 0, 256)
	// cell appends c and pads it to its column, or ends the line after
	// the last column.
	cell := func(col, start int) {
		if col == cols-1 {
			line = append(line, '\n')
			return
		}
		n := len(line) - start
		if col >= 3 { // addresses with a zone, programs: any UTF-8
			n = utf8.RuneCount(line[start:])
		}
		for range widths[col] - n + 2 {
			line = append(line, ' ')
		}
	}
	line = line[:0]
	for col, h := range tableHeader[:cols] {
		start := len(line)
		line = append(line, h...)
		cell(col, start)
	}
	bw.Write(line)
	for i := range socks {
		s := &socks[i]
		line = line[:0]
		line = append(line, s.State.String()...)
		cell(0, 0)
		start := len(line)
		line = strconv.AppendUint(line, uint64(s.RecvQ), 10)
		cell(1, start)
		start = len(line)
		line = strconv.AppendUint(line, uint64(s.SendQ), 10)
		cell(2, start)
		start = len(line)
		line = appendAddr(line, s.Local)
		cell(3, start)
		start = len(line)
		line = appendAddr(line, s.Remote)
		cell(4, start)
		if processes {
			start = len(line)
			line = appendOwner(line, s)
			cell(5, start)
		}
		bw.Write(line)
	}
	return bw.Flush()
}

// digits returns how many decimal digits n has.
func digits(n uint32) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// appendOwner appends the PID/PROGRAM cell of s: "1234/nginx", or "-".
func appendOwner(b []byte, s *Socket) []byte {
	if s.PID == 0 {
		return append(b, '-')
	}
	b = append(strconv.AppendInt(b, int64(s.PID), 10), '/')
	return append(b, s.Program...)
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
	return WriteCounts(w, Count(socks))
}

// WriteCounts writes counts by state as WriteSummary does: every state
// listed, then the total.
func WriteCounts(w io.Writer, n map[State]int) error {
	total := 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, s := range AllStates {
		fmt.Fprintf(tw, "%s\t%d\t\n", s, n[s])
		total += n[s]
	}
	for s, c := range n { // states the kernel may add later
		if !s.Valid() {
			fmt.Fprintf(tw, "%s\t%d\t\n", s, c)
			total += c
		}
	}
	fmt.Fprintf(tw, "total\t%d\t\n", total)
	return tw.Flush()
}

// WriteSummaryJSON writes the counts as a JSON object: {"LISTEN": 2, ...,
// "total": 9}.
func WriteSummaryJSON(w io.Writer, socks []Socket) error {
	return WriteCountsJSON(w, Count(socks))
}

// WriteCountsJSON writes counts by state as WriteSummaryJSON does.
func WriteCountsJSON(w io.Writer, n map[State]int) error {
	m := map[string]int{}
	for _, s := range AllStates {
		m[s.String()] = 0
	}
	total := 0
	for s, c := range n {
		m[s.String()] = c
		total += c
	}
	m["total"] = total
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

// boxRE finds the state boxes in diagram; compiled on first use, not at
// start-up.
var boxRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{[A-Z_0-9]+ *\}`) })

// WriteDiagram writes the TCP state diagram with, in each state's box,
// how many of socks sit in it.
func WriteDiagram(w io.Writer, socks []Socket) error {
	n := Count(socks)
	var b strings.Builder
	last := 0
	for _, m := range boxRE().FindAllStringIndex(diagram, -1) {
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

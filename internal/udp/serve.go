package udp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/netkit/netkit/internal/termtext"
)

// Mode is what a server does with each datagram.
type Mode string

// The server modes.
const (
	ModeEcho    Mode = "echo"    // send it back to its sender
	ModePrint   Mode = "print"   // write "<peer> <bytes>: <text>" to Out
	ModeDiscard Mode = "discard" // count it only
)

// ParseMode returns the Mode named s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeEcho, ModePrint, ModeDiscard:
		return m, nil
	}
	return "", fmt.Errorf("udp: mode %q: want echo, print or discard", s)
}

// ServeConfig is how Serve treats datagrams.
type ServeConfig struct {
	Mode Mode      // echo, print or discard; "" means echo
	Out  io.Writer // print mode's output; nil discards it
}

// Stats are the totals of a Serve.
type Stats struct {
	Datagrams int64 // datagrams received
	Bytes     int64 // payload bytes received
	Peers     int   // distinct sender addresses
	Truncated int64 // datagrams larger than MaxDatagram, cut short
	Errors    int64 // failed echo writes
}

// String is the one-line summary printed when a server stops.
func (s Stats) String() string {
	out := fmt.Sprintf("%d datagrams, %d bytes, %d peers", s.Datagrams, s.Bytes, s.Peers)
	if s.Truncated > 0 {
		out += fmt.Sprintf(", %d truncated", s.Truncated)
	}
	if s.Errors > 0 {
		out += fmt.Sprintf(", %d echo errors", s.Errors)
	}
	return out
}

// serveBatch is how many datagrams Serve reads with one system call where
// the system reads in batches; its buffers take serveBatch*MaxDatagram
// bytes (2 MiB). Race-detector builds use 2, because the detector marks
// every buffer of the batch on each read.
var serveBatch = 32

func init() {
	if raceEnabled {
		serveBatch = 2
	}
}

// Serve reads datagrams from conn until ctx ends, then closes conn and
// returns the totals. Only a read error other than the close ends it early.
// On Linux it reads up to serveBatch datagrams with one recvmmsg and sends
// the echoes of a batch with one sendmmsg, with UDP GSO for runs to one
// peer where the kernel offers it (see batchConn). It asks for 4 MiB socket
// buffers, best effort (the system may cap them), so that bursts wait in
// the kernel instead of being dropped.
func Serve(ctx context.Context, conn *net.UDPConn, cfg ServeConfig) (Stats, error) {
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	var st Stats
	peers := make(map[netip.AddrPort]struct{})
	bc := newBatchConn(conn, serveBatch, MaxDatagram)
	batch := func(n int) bool {
		for i := range n {
			b, peer := bc.Data(i), bc.Peer(i)
			st.Datagrams++
			st.Bytes += int64(len(b))
			if _, ok := peers[peer]; !ok {
				peers[peer] = struct{}{}
				st.Peers = len(peers)
			}
			truncated := bc.Truncated(i)
			if truncated {
				st.Truncated++
			}
			switch cfg.Mode {
			case ModePrint:
				note := ""
				if truncated {
					note = " (truncated)"
				}
				fmt.Fprintf(out, "%s %d%s: %s\n", peer, len(b), note, termtext.Escape(b))
			case ModeDiscard:
			default:
				bc.QueueReply(i)
			}
		}
		_, failed, _ := bc.Flush()
		st.Errors += int64(failed)
		return ctx.Err() == nil
	}
	for {
		err := bc.ReadLoop(batch)
		switch {
		case ctx.Err() != nil:
			return st, nil
		case isRefused(err):
			continue // an ICMP error for an earlier echo; not ours to stop on
		}
		return st, fmt.Errorf("udp: serve: %w", err)
	}
}

package tcp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/netkit/netkit/internal/termtext"
)

// maxNick is the longest name /nick accepts, in bytes.
const maxNick = 32

// maxWrite is how much a chat writer joins from its queue into one write.
const maxWrite = 64 << 10

// chatRoom is every chat client, for the relay.
type chatRoom struct {
	mu      sync.Mutex
	clients map[*chatClient]struct{} // guarded by mu
}

func (r *chatRoom) join(c *chatClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients[c] = struct{}{}
}

func (r *chatRoom) leave(c *chatClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.clients, c)
}

// broadcast queues msg for every client but from (nil for all). It never
// blocks: a client whose queue is full is dropped.
func (r *chatRoom) broadcast(from *chatClient, msg []byte) {
	r.mu.Lock()
	to := make([]*chatClient, 0, len(r.clients))
	for c := range r.clients {
		if c != from {
			to = append(to, c)
		}
	}
	r.mu.Unlock()
	for _, c := range to {
		c.enqueue(msg)
	}
}

// chatClient is one chat connection: its handler reads lines, its writer
// owns every write.
type chatClient struct {
	conn    net.Conn
	queue   chan []byte        // bounded; senders never close it
	drop    context.CancelFunc // ends the connection
	dropped atomic.Bool        // the queue overflowed
	name    string             // owned by the handler goroutine
}

// enqueue queues msg without blocking, or drops the client if its queue
// is full.
func (c *chatClient) enqueue(msg []byte) {
	select {
	case c.queue <- msg:
	default:
		if c.dropped.CompareAndSwap(false, true) {
			c.drop()
		}
	}
}

// writeLoop writes what is queued, joining queued messages into one write,
// until ctx ends or a write fails.
func (c *chatClient) writeLoop(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.queue:
			buf = append(buf[:0], m...)
		}
	join:
		for len(buf) < maxWrite {
			select {
			case m := <-c.queue:
				buf = append(buf, m...)
			default:
				break join
			}
		}
		if _, err := c.conn.Write(buf); err != nil {
			return
		}
	}
}

// chat serves one chat client: it relays each line from r to the others
// as "<name> line", escaped, and handles /nick.
func (s *Server) chat(ctx context.Context, cancel context.CancelFunc, conn net.Conn, r io.Reader, peer string) error {
	c := &chatClient{conn: conn, queue: make(chan []byte, s.cfg.ChatQueue), drop: cancel, name: peer}
	var wg sync.WaitGroup
	wg.Go(func() { c.writeLoop(ctx, cancel) })
	defer wg.Wait()
	defer cancel()

	s.room.join(c)
	c.enqueue(fmt.Appendf(nil, "*** welcome, you are %s; /nick NAME to change it\n", c.name))
	s.room.broadcast(c, fmt.Appendf(nil, "*** %s joined\n", c.name))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	for sc.Scan() {
		line := string(trimEOL(sc.Bytes()))
		if nick, ok := strings.CutPrefix(line, "/nick "); ok {
			s.nick(c, nick)
			continue
		}
		s.room.broadcast(c, fmt.Appendf(nil, "<%s> %s\n", c.name, termtext.Escape([]byte(line))))
	}
	s.room.leave(c)
	note := ""
	if c.dropped.Load() {
		note = " (dropped: too slow)"
		s.log.Info("dropped slow chat client", "peer", peer, "name", c.name)
	}
	s.room.broadcast(c, fmt.Appendf(nil, "*** %s left%s\n", c.name, note))
	return sc.Err()
}

// nick renames c, telling everyone.
func (s *Server) nick(c *chatClient, name string) {
	name = strings.Join(strings.Fields(termtext.Escape([]byte(name))), "_")
	if len(name) > maxNick {
		name = name[:maxNick]
	}
	if name == "" || strings.ContainsAny(name, "<>") {
		c.enqueue([]byte("*** /nick NAME: want a name without spaces, < or >\n"))
		return
	}
	old := c.name
	c.name = name
	c.enqueue(fmt.Appendf(nil, "*** you are now %s\n", name))
	s.room.broadcast(c, fmt.Appendf(nil, "*** %s is now known as %s\n", old, name))
}

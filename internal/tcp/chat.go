package tcp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netkit/netkit/internal/termtext"
)

// maxNick is the longest name /nick accepts, in bytes.
const maxNick = 32

// maxWrite is how much a chat writer joins from its queue into one write.
const maxWrite = 64 << 10

// maxWho is how many names /who lists; it says how many more there are.
const maxWho = 100

// Chat flow control: the defaults of Config's chat limits.
const (
	// DefaultChatSoftLimit is the queued bytes above which a chat client's
	// senders stop being read until its queue drains.
	DefaultChatSoftLimit = 64 << 10
	// DefaultChatHardLimit is the queued bytes that drop a client at once.
	DefaultChatHardLimit = 1 << 20
	// MinChatHeadroom is the least room between the soft and the hard
	// limit: two of the longest lines.
	MinChatHeadroom = 2 * (maxLine + 1024)
	// DefaultChatStallTimeout is how long a queue may stay over the soft
	// limit before its client is dropped as not reading.
	DefaultChatStallTimeout = 10 * time.Second
)

// msgOverhead is what each queued message is charged besides its bytes
// (its slice header and allocation), so that a flood of tiny messages is
// bounded too.
const msgOverhead = 32

// chatHelp is the answer to /help.
const chatHelp = "*** /nick NAME  change your name (no spaces, < or >)\n" +
	"*** /who        list who is in the room\n" +
	"*** /help       show these commands\n"

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

// members returns every client in the room.
func (r *chatRoom) members() []*chatClient {
	r.mu.Lock()
	defer r.mu.Unlock()
	to := make([]*chatClient, 0, len(r.clients))
	for c := range r.clients {
		to = append(to, c)
	}
	return to
}

// broadcast queues msg for every client but from (nil for all) without
// blocking, and returns the clients whose queues are now over their soft
// limit: the sender waits for them before it reads on.
func (r *chatRoom) broadcast(from *chatClient, msg []byte) (full []*chatClient) {
	for _, c := range r.members() {
		if c != from && c.enqueue(msg) {
			full = append(full, c)
		}
	}
	return full
}

// chatClient is one chat connection: its handler reads lines, its writer
// owns every write. The queue never blocks the handlers that fill it: it
// is bounded by a soft limit, above which senders wait (backpressure), and
// a hard limit, which drops the client at once. A client whose queue stays
// over the soft limit for the stall timeout is not reading, and is dropped.
type chatClient struct {
	conn  net.Conn
	done  <-chan struct{}    // closed when the connection ends
	drop  context.CancelFunc // ends the connection
	soft  int                // see Config.ChatSoftLimit
	hard  int                // see Config.ChatHardLimit
	stall time.Duration      // see Config.ChatStallTimeout
	wake  chan struct{}      // capacity 1: the queue became non-empty

	mu        sync.Mutex
	name      string        // guarded by mu; written only by the handler
	queue     [][]byte      // guarded by mu
	queued    int           // guarded by mu; bytes in queue, msgOverhead each included
	below     chan struct{} // guarded by mu; closed when queued falls to soft; nil while not over
	overSince time.Time     // guarded by mu; when queued went over soft
	stallT    *time.Timer   // guarded by mu; fires stall after overSince
	why       string        // guarded by mu; why the client was dropped, "" while not
}

// getName returns the client's name.
func (c *chatClient) getName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// dropped returns why the client was dropped, or "".
func (c *chatClient) dropped() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

// enqueue queues msg without blocking and reports whether the queue is
// over its soft limit. A message that would take it over the hard limit
// drops the client instead.
func (c *chatClient) enqueue(msg []byte) (over bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.why != "" {
		return false
	}
	size := len(msg) + msgOverhead
	if c.queued+size > c.hard {
		c.dropLocked(fmt.Sprintf("queue over %s", sizeText(c.hard)))
		return false
	}
	if len(c.queue) == 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.queue = append(c.queue, msg)
	c.queued += size
	if c.queued > c.soft && c.below == nil {
		c.below = make(chan struct{})
		c.overSince = time.Now()
		if c.stallT == nil {
			c.stallT = time.AfterFunc(c.stall, c.checkStall)
		} else {
			c.stallT.Reset(c.stall)
		}
	}
	return c.below != nil
}

// checkStall drops the client if its queue has been over the soft limit
// for the stall timeout. Its timer may fire late or for an earlier spell
// over the limit: it checks the current one.
func (c *chatClient) checkStall() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.below != nil && c.why == "" && time.Since(c.overSince) >= c.stall {
		c.dropLocked(fmt.Sprintf("not reading for %v", c.stall))
	}
}

// dropLocked ends the connection, remembering why.
func (c *chatClient) dropLocked(why string) {
	if c.why == "" {
		c.why = why
		c.drop()
	}
}

// take appends queued messages to buf, up to about maxWrite bytes, and
// removes them from the queue. When the queue falls to its soft limit,
// waiting senders go on.
func (c *chatClient) take(buf []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(c.queue) && len(buf) < maxWrite {
		buf = append(buf, c.queue[n]...)
		c.queued -= len(c.queue[n]) + msgOverhead
		c.queue[n] = nil
		n++
	}
	c.queue = append(c.queue[:0], c.queue[n:]...)
	if c.below != nil && c.queued <= c.soft {
		close(c.below)
		c.below = nil
		c.stallT.Stop()
	}
	return buf
}

// waitBelow waits until c's queue is at or under its soft limit, c is gone
// or ctx ends.
func (c *chatClient) waitBelow(ctx context.Context) {
	c.mu.Lock()
	ch := c.below
	c.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-c.done:
	case <-ctx.Done():
	}
}

// stop releases the stall timer once the connection has ended.
func (c *chatClient) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stallT != nil {
		c.stallT.Stop()
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
		case <-c.wake:
		}
		for {
			buf = c.take(buf[:0])
			if len(buf) == 0 {
				break
			}
			if _, err := c.conn.Write(buf); err != nil {
				return
			}
		}
	}
}

// chat serves one chat client: it relays each line from r to the others
// as "<name> line", escaped, and answers /nick, /who and /help. While the
// line it relayed keeps a reader's queue over its soft limit, it reads no
// further line (backpressure).
func (s *Server) chat(ctx context.Context, cancel context.CancelFunc, conn net.Conn, r io.Reader, peer string) error {
	c := &chatClient{
		conn: conn, done: ctx.Done(), drop: cancel, name: peer, wake: make(chan struct{}, 1),
		soft: s.cfg.ChatSoftLimit, hard: s.cfg.ChatHardLimit, stall: s.cfg.ChatStallTimeout,
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.writeLoop(ctx, cancel) })
	defer wg.Wait()
	defer c.stop()
	defer cancel()

	// The others are told before the welcome is queued, so that a client
	// that has read its welcome knows every member present then has the
	// join notice in its queue; the wait for slow readers comes after.
	s.room.join(c)
	over := s.room.broadcast(c, fmt.Appendf(nil, "*** %s joined\n", peer))
	c.enqueue(fmt.Appendf(nil, "*** welcome, you are %s; /nick NAME to change it, /help for more\n", peer))
	for _, to := range over {
		to.waitBelow(ctx)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	for sc.Scan() {
		line := string(trimEOL(sc.Bytes()))
		switch cmd := strings.TrimSpace(line); {
		case cmd == "/help":
			c.enqueue([]byte(chatHelp))
		case cmd == "/who":
			c.enqueue(s.who(c))
		case cmd == "/nick" || strings.HasPrefix(line, "/nick "):
			s.nick(ctx, c, strings.TrimPrefix(line, "/nick"))
		default:
			s.relay(ctx, c, fmt.Appendf(nil, "<%s> %s\n", c.getName(), termtext.Escape([]byte(line))))
		}
	}
	s.room.leave(c)
	note := ""
	if why := c.dropped(); why != "" {
		note = " (dropped: too slow, " + why + ")"
		s.log.Info("dropped slow chat client", "peer", peer, "name", c.getName(), "reason", why)
	}
	s.room.broadcast(c, fmt.Appendf(nil, "*** %s left%s\n", c.getName(), note))
	return sc.Err()
}

// relay queues msg from c for every other client, then waits until every
// queue it took over the soft limit has drained to it (or its client has
// gone): a fast sender is slowed to what its readers take.
func (s *Server) relay(ctx context.Context, c *chatClient, msg []byte) {
	for _, to := range s.room.broadcast(c, msg) {
		to.waitBelow(ctx)
	}
}

// who lists the room's names for /who, c's marked, at most maxWho.
func (s *Server) who(c *chatClient) []byte {
	members := s.room.members()
	names := make([]string, 0, len(members))
	for _, m := range members {
		n := m.getName()
		if m == c {
			n += " (you)"
		}
		names = append(names, n)
	}
	slices.Sort(names)
	more := ""
	if len(names) > maxWho {
		more = fmt.Sprintf(" and %d more", len(names)-maxWho)
		names = names[:maxWho]
	}
	return fmt.Appendf(nil, "*** %d in the room: %s%s\n", len(members), strings.Join(names, ", "), more)
}

// nick renames c, telling everyone.
func (s *Server) nick(ctx context.Context, c *chatClient, name string) {
	name = strings.Join(strings.Fields(termtext.Escape([]byte(name))), "_")
	if len(name) > maxNick {
		name = name[:maxNick]
	}
	if name == "" || strings.ContainsAny(name, "<>") {
		c.enqueue([]byte("*** /nick NAME: want a name without spaces, < or >\n"))
		return
	}
	c.mu.Lock()
	old := c.name
	c.name = name
	c.mu.Unlock()
	c.enqueue(fmt.Appendf(nil, "*** you are now %s\n", name))
	s.relay(ctx, c, fmt.Appendf(nil, "*** %s is now known as %s\n", old, name))
}

// sizeText writes a byte count as the flags take it: 64KiB, 1MiB, 1000B.
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

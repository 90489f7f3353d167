package hub

import (
	"errors"
	"sync"
)

var (
	errClosed         = errors.New("hub: server is shutting down")
	errTooManyClients = errors.New("hub: connection limit reached")
)

// registry is the client map: it owns the node's clients, their users and
// their channel subscriptions.
type registry struct {
	maxClients int // 0 means no limit

	mu       sync.RWMutex
	closed   bool                            // guarded by mu; no more clients
	clients  map[*client]struct{}            // guarded by mu
	users    map[string]map[*client]struct{} // guarded by mu
	channels map[string][]*client            // subscribers per channel; guarded by mu
	subCount int                             // sum of len(channels[*]); guarded by mu
}

func newRegistry(maxClients int) *registry {
	return &registry{
		maxClients: maxClients,
		clients:    make(map[*client]struct{}),
		users:      make(map[string]map[*client]struct{}),
		channels:   make(map[string][]*client),
	}
}

// add registers c. Every added client must be removed with remove.
func (r *registry) add(c *client) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	if r.maxClients > 0 && len(r.clients) >= r.maxClients {
		return errTooManyClients
	}
	r.clients[c] = struct{}{}
	u := r.users[c.info.User]
	if u == nil {
		u = make(map[*client]struct{})
		r.users[c.info.User] = u
	}
	u[c] = struct{}{}
	return nil
}

// remove unregisters c and returns the channels it was subscribed to.
func (r *registry) remove(c *client) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.clients[c]; !ok {
		return nil
	}
	chans := make([]string, 0, len(c.subs))
	for ch := range c.subs {
		r.removeSubLocked(c, ch)
		chans = append(chans, ch)
	}
	delete(r.clients, c)
	if u := r.users[c.info.User]; u != nil {
		delete(u, c)
		if len(u) == 0 {
			delete(r.users, c.info.User)
		}
	}
	c.removed = true
	return chans
}

// addSub subscribes c to channel. It reports false if c is already gone.
func (r *registry) addSub(c *client, channel string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.removed {
		return false
	}
	if _, ok := c.subs[channel]; ok {
		return true
	}
	subs := r.channels[channel]
	c.subs[channel] = len(subs)
	r.channels[channel] = append(subs, c)
	r.subCount++
	return true
}

// removeSub unsubscribes c from channel and reports whether it was
// subscribed.
func (r *registry) removeSub(c *client, channel string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeSubLocked(c, channel)
}

func (r *registry) removeSubLocked(c *client, channel string) bool {
	i, ok := c.subs[channel]
	if !ok {
		return false
	}
	delete(c.subs, channel)
	subs := r.channels[channel]
	last := len(subs) - 1
	if i != last {
		moved := subs[last]
		subs[i] = moved
		moved.subs[channel] = i
	}
	subs[last] = nil
	if last == 0 {
		delete(r.channels, channel)
	} else {
		r.channels[channel] = subs[:last]
	}
	r.subCount--
	return true
}

// subscribed reports whether c is subscribed to channel, and how many
// channels c is subscribed to.
func (r *registry) subscribed(c *client, channel string) (bool, int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := c.subs[channel]
	return ok, len(c.subs)
}

// fanOut enqueues push to every subscriber of channel except skip. Enqueue
// never blocks, so holding the read lock is cheap.
func (r *registry) fanOut(channel string, push []byte, skip string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.channels[channel] {
		if skip != "" && c.info.Client == skip {
			continue
		}
		c.conn.Enqueue(push)
	}
}

// userClients returns the clients of user.
func (r *registry) userClients(user string) []*client {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[user]
	out := make([]*client, 0, len(u))
	for c := range u {
		out = append(out, c)
	}
	return out
}

// closeAll stops new registrations and returns every client.
func (r *registry) closeAll() []*client {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	out := make([]*client, 0, len(r.clients))
	for c := range r.clients {
		out = append(out, c)
	}
	return out
}

// stats returns the number of clients, channels with local subscribers, and
// subscriptions.
func (r *registry) stats() (clients, channels, subs int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.clients), len(r.channels), r.subCount
}

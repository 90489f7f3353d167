package hub

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

var (
	errClosed         = errors.New("hub: server is shutting down")
	errTooManyClients = errors.New("hub: connection limit reached")
)

// registry is the client map: it owns the node's clients, their users and
// their channel subscriptions. Changes take mu; fan-out takes it only to
// find a channel, then reads the channel's subscriber list without a lock.
type registry struct {
	maxClients int // 0 means no limit

	mu       sync.RWMutex
	closed   bool                 // guarded by mu; no more clients
	clients  map[*client]struct{} // guarded by mu
	users    map[string][]*client // a user's clients; guarded by mu
	channels map[string]*channel  // channels with local subscribers; guarded by mu
	subCount int                  // sum of the channels' subscribers; guarded by mu
	reserved int                  // places held by reserve for clients being upgraded; guarded by mu
}

// channel is one channel with local subscribers.
type channel struct {
	name string
	// subs is the subscriber list, never modified once stored: a change
	// stores a new slice (under registry.mu), so a fan-out reads it
	// without a lock and stalls no subscribe, unsubscribe or disconnect.
	subs atomic.Pointer[[]*client]
	flow flowGate // publishers wait here while subscribers catch up
}

func newRegistry(maxClients int) *registry {
	return &registry{
		maxClients: maxClients,
		clients:    make(map[*client]struct{}),
		users:      make(map[string][]*client),
		channels:   make(map[string]*channel),
	}
}

// add registers c. Every added client must be removed with remove.
func (r *registry) add(c *client) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.roomLocked(); err != nil {
		return err
	}
	r.addLocked(c)
	return nil
}

// reserve holds a place for a client whose connection is being upgraded,
// so that the connection limit is known before the 101 response is sent.
// Each reserve that returns nil is followed by one addReserved or release.
func (r *registry) reserve() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.roomLocked(); err != nil {
		return err
	}
	r.reserved++
	return nil
}

// release gives back a place reserve held.
func (r *registry) release() {
	r.mu.Lock()
	r.reserved--
	r.mu.Unlock()
}

// addReserved registers c in the place reserve held for it; it fails only
// when the registry has closed since.
func (r *registry) addReserved(c *client) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reserved--
	if r.closed {
		return errClosed
	}
	r.addLocked(c)
	return nil
}

// roomLocked reports whether one more client may be added or reserved.
func (r *registry) roomLocked() error {
	if r.closed {
		return errClosed
	}
	if r.maxClients > 0 && len(r.clients)+r.reserved >= r.maxClients {
		return errTooManyClients
	}
	return nil
}

func (r *registry) addLocked(c *client) {
	r.clients[c] = struct{}{}
	r.users[c.info.User] = append(r.users[c.info.User], c)
}

// remove unregisters c and returns the channels it was subscribed to.
func (r *registry) remove(c *client) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.clients[c]; !ok {
		return nil
	}
	chans := c.subs.names()
	for _, name := range chans {
		r.removeSubLocked(c, name)
	}
	delete(r.clients, c)
	if u := r.users[c.info.User]; len(u) <= 1 {
		delete(r.users, c.info.User)
	} else if i := slices.Index(u, c); i >= 0 {
		r.users[c.info.User] = slices.Delete(u, i, i+1)
	}
	c.removed = true
	return chans
}

// addSub subscribes c to name. It reports false if c is already gone.
func (r *registry) addSub(c *client, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.removed {
		return false
	}
	if _, ok := c.subs.get(name); ok {
		return true
	}
	ch := r.channels[name]
	var old []*client
	if ch == nil {
		ch = &channel{name: name}
		r.channels[name] = ch
	} else {
		old = *ch.subs.Load()
	}
	subs := make([]*client, len(old), len(old)+1)
	copy(subs, old)
	subs = append(subs, c)
	ch.subs.Store(&subs)
	c.subs.add(ch)
	r.subCount++
	return true
}

// removeSub unsubscribes c from name and reports whether it was
// subscribed.
func (r *registry) removeSub(c *client, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeSubLocked(c, name)
}

func (r *registry) removeSubLocked(c *client, name string) bool {
	ch, ok := c.subs.get(name)
	if !ok {
		return false
	}
	c.subs.del(name)
	r.subCount--
	old := *ch.subs.Load()
	if len(old) == 1 {
		delete(r.channels, name)
		ch.subs.Store(&[]*client{})
		return true
	}
	i := slices.Index(old, c)
	subs := make([]*client, 0, len(old)-1)
	subs = append(append(subs, old[:i]...), old[i+1:]...)
	ch.subs.Store(&subs)
	return true
}

// subscribed reports whether c is subscribed to name, and how many
// channels c is subscribed to.
func (r *registry) subscribed(c *client, name string) (bool, int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := c.subs.get(name)
	return ok, c.subs.len()
}

// channel returns the local channel name, or nil when it has no local
// subscribers.
func (r *registry) channel(name string) *channel {
	r.mu.RLock()
	ch := r.channels[name]
	r.mu.RUnlock()
	return ch
}

// fanOut enqueues push to every subscriber of name except the client with
// id skip, and returns how many it tried. It holds no lock while it
// enqueues.
func (r *registry) fanOut(name string, push []byte, skip string) int {
	ch := r.channel(name)
	if ch == nil {
		return 0
	}
	n := 0
	for _, c := range *ch.subs.Load() {
		if skip != "" && c.info.Client == skip {
			continue
		}
		c.deliver(push, ch)
		n++
	}
	return n
}

// userClients returns the clients of user.
func (r *registry) userClients(user string) []*client {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.users[user])
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

// subSet is a client's channels: a short slice while there are few (an
// idle client in one channel pays a pointer, not a map), plus an index
// once there are many.
type subSet struct {
	list   []*channel
	byName map[string]*channel // when len(list) > subSetIndex
}

const subSetIndex = 16

func (s *subSet) len() int { return len(s.list) }

func (s *subSet) get(name string) (*channel, bool) {
	if s.byName != nil {
		ch, ok := s.byName[name]
		return ch, ok
	}
	for _, ch := range s.list {
		if ch.name == name {
			return ch, true
		}
	}
	return nil, false
}

func (s *subSet) add(ch *channel) {
	s.list = append(s.list, ch)
	switch {
	case s.byName != nil:
		s.byName[ch.name] = ch
	case len(s.list) > subSetIndex:
		s.byName = make(map[string]*channel, len(s.list))
		for _, c := range s.list {
			s.byName[c.name] = c
		}
	}
}

func (s *subSet) del(name string) {
	i := slices.IndexFunc(s.list, func(ch *channel) bool { return ch.name == name })
	if i < 0 {
		return
	}
	s.list = slices.Delete(s.list, i, i+1)
	if s.byName != nil {
		delete(s.byName, name)
		if len(s.list) <= subSetIndex/2 {
			s.byName = nil
		}
	}
}

func (s *subSet) names() []string {
	out := make([]string, len(s.list))
	for i, ch := range s.list {
		out[i] = ch.name
	}
	return out
}

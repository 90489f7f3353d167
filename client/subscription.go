package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/netkit/netkit/internal/protocol"
)

// Message is one publication on a channel.
type Message struct {
	Channel string
	Offset  uint64          // grows by 1 per message within an epoch
	Epoch   string          // the sequence Offset belongs to
	From    string          // the publisher's user id; "" from the HTTP API
	Data    json.RawMessage // the published JSON value
}

// JoinLeave is another client subscribing to (Join) or leaving a channel.
type JoinLeave struct {
	Join    bool
	Channel string
	Client  string
	User    string
}

// Subscribed reports a subscribe reply: the first one, and one after each
// reconnect (Resubscribe). Recovered is true only when the hub confirmed
// that every message after the subscription's last position follows:
// false after a resubscribe means messages may have been missed (a new
// epoch after a hub restart, history evicted, or a hub without history).
type Subscribed struct {
	Position         // the channel's position at the reply
	Recovered   bool // the hub answered recovered:true
	Resubscribe bool // after a reconnect
}

// SubscribeOption configures one subscription.
type SubscribeOption func(*subOptions)

type subOptions struct {
	onMessage    func(Message)
	onJoinLeave  func(JoinLeave)
	onSubscribed func(Subscribed)
	since        *Position
	last         int
	buffer       int
}

// OnMessage delivers messages to f, in order, on a goroutine of the
// subscription, instead of through Messages.
func OnMessage(f func(Message)) SubscribeOption { return func(o *subOptions) { o.onMessage = f } }

// OnJoinLeave calls f for every join and leave on the channel, in order
// with the messages.
func OnJoinLeave(f func(JoinLeave)) SubscribeOption {
	return func(o *subOptions) { o.onJoinLeave = f }
}

// OnSubscribed calls f with every subscribe reply, in order with the
// messages (the recovered messages follow it).
func OnSubscribed(f func(Subscribed)) SubscribeOption {
	return func(o *subOptions) { o.onSubscribed = f }
}

// Since starts the subscription after pos: a hub with history pushes the
// messages after it first, and OnSubscribed tells whether it could.
func Since(pos Position) SubscribeOption { return func(o *subOptions) { o.since = &pos } }

// Last asks the hub to push the channel's last n messages first.
func Last(n int) SubscribeOption { return func(o *subOptions) { o.last = n } }

// Buffer sets how many messages and events may wait for a slow consumer
// (default 1024). When it is full the connection's reader waits, which
// slows every subscription of the client; a handler that then calls the
// client waits for its call's context.
func Buffer(n int) SubscribeOption { return func(o *subOptions) { o.buffer = n } }

// Subscription is one channel's subscription. Its messages come through
// Messages, or OnMessage when given.
type Subscription struct {
	c       *Client
	channel string
	opts    subOptions
	q       chan item    // messages and events in order; bounded by opts.buffer
	out     chan Message // Messages(); nil with OnMessage
	stop    chan struct{}
	ended   chan struct{} // closed when the delivery goroutine has returned

	stopOnce sync.Once
	mu       sync.Mutex
	pos      Position // epoch of the last reply, offset of the last message queued; guarded by mu
	handed   Position // the last message handed to the caller (what Position reports); guarded by mu
	on       *conn    // the connection the subscribe was last answered on; guarded by mu
	err      error    // why it ended; guarded by mu
}

type item struct {
	msg *Message
	jl  *JoinLeave
	sub *Subscribed
}

// Subscribe subscribes to channel. The subscription lasts until
// Unsubscribe or Close, across reconnects. It is an error to subscribe to
// a channel twice on one Client.
func (c *Client) Subscribe(ctx context.Context, channel string, opts ...SubscribeOption) (*Subscription, error) {
	s := &Subscription{c: c, channel: channel, stop: make(chan struct{}), ended: make(chan struct{})}
	s.opts.buffer = 1024
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.since != nil {
		s.pos = *s.opts.since
		s.handed = *s.opts.since
	}
	s.q = make(chan item, max(1, s.opts.buffer))
	if s.opts.onMessage == nil {
		s.out = make(chan Message)
	}
	c.mu.Lock()
	switch {
	case c.err != nil || c.stopped:
		c.mu.Unlock()
		return nil, ErrClosed
	case c.subs[channel] != nil:
		c.mu.Unlock()
		return nil, fmt.Errorf("client: subscribe to %s: already subscribed", channel)
	}
	c.subs[channel] = s
	c.subWG.Add(1)
	c.mu.Unlock()
	go s.deliver()

	for {
		cn, err := c.current(ctx)
		if err != nil {
			return nil, s.fail(fmt.Errorf("client: subscribe to %s: %w", channel, err))
		}
		err = s.subscribeOn(ctx, cn, false)
		switch {
		case err == nil, errors.Is(err, ErrConnectionLost):
			return s, nil // a lost connection resubscribes it
		case errors.Is(err, errNotSent):
			c.lost(cn)
		default:
			return nil, s.fail(fmt.Errorf("client: subscribe to %s: %w", channel, err))
		}
	}
}

// subscribeOn subscribes on cn and waits for the reply, unless cn already
// answered a subscribe.
func (s *Subscription) subscribeOn(ctx context.Context, cn *conn, resub bool) error {
	c, err := s.sendSubscribe(ctx, cn, resub)
	if c == nil {
		return err
	}
	_, err = cn.await(ctx, c)
	return err
}

// sendSubscribe sends the subscribe command on cn, from the last position
// when there is one. It returns a nil call when cn already answered one.
func (s *Subscription) sendSubscribe(ctx context.Context, cn *conn, resub bool) (*call, error) {
	s.mu.Lock()
	if s.on == cn {
		s.mu.Unlock()
		return nil, nil
	}
	cmd := protocol.ClientCommand{Op: protocol.OpSubscribe, Channel: s.channel}
	if s.pos.Epoch != "" {
		cmd.Since = &protocol.StreamPos{Offset: s.pos.Offset, Epoch: s.pos.Epoch}
	} else if !resub && s.opts.last > 0 {
		cmd.Last = s.opts.last
	}
	s.mu.Unlock()
	return cn.send(ctx, s.c.ids.Add(1), cmd, func(o protocol.ServerObject) { s.onReply(cn, o, resub) })
}

// onReply runs on the reader goroutine when the subscribe reply arrives,
// before any message that follows it.
func (s *Subscription) onReply(cn *conn, o protocol.ServerObject, resub bool) {
	var r protocol.SubscribeResult
	if o.Error != nil || json.Unmarshal(o.Result, &r) != nil {
		return
	}
	s.mu.Lock()
	s.on = cn
	if s.pos.Epoch != r.Epoch {
		s.pos = Position{Epoch: r.Epoch} // a new sequence: nothing of it delivered yet
	}
	s.mu.Unlock()
	ev := &Subscribed{Position: Position{Offset: r.Offset, Epoch: r.Epoch}, Recovered: r.Recovered != nil && *r.Recovered, Resubscribe: resub}
	s.enqueue(cn, item{sub: ev})
}

// push takes a message, join or leave from the reader goroutine of cn.
func (s *Subscription) push(cn *conn, o protocol.ServerObject) {
	if o.Push != protocol.PushMessage {
		s.enqueue(cn, item{jl: &JoinLeave{Join: o.Push == protocol.PushJoin, Channel: o.Channel, Client: o.Client, User: o.User}})
		return
	}
	s.mu.Lock()
	epoch, last := s.pos.Epoch, s.pos.Offset
	s.mu.Unlock()
	if o.Offset <= last {
		return // already delivered in this epoch
	}
	m := &Message{Channel: o.Channel, Offset: o.Offset, Epoch: epoch, From: o.From, Data: o.Data}
	if s.enqueue(cn, item{msg: m}) {
		s.mu.Lock()
		if s.pos.Epoch == epoch {
			s.pos.Offset = o.Offset
		}
		s.mu.Unlock()
	}
}

// enqueue queues it for delivery, waiting while the queue is full unless
// the subscription or the connection ends.
func (s *Subscription) enqueue(cn *conn, it item) bool {
	select {
	case s.q <- it:
		return true
	case <-s.stop:
	case <-cn.stop:
	}
	return false
}

// deliver hands queued items to the caller, in order, until the
// subscription ends.
func (s *Subscription) deliver() {
	defer s.c.subWG.Done()
	defer close(s.ended)
	if s.out != nil {
		defer close(s.out)
	}
	for {
		var it item
		select {
		case it = <-s.q:
		case <-s.stop:
			return
		}
		switch {
		case it.msg != nil && s.opts.onMessage != nil:
			s.hand(Position{Offset: it.msg.Offset, Epoch: it.msg.Epoch})
			s.opts.onMessage(*it.msg)
		case it.msg != nil:
			prev := s.hand(Position{Offset: it.msg.Offset, Epoch: it.msg.Epoch})
			select {
			case s.out <- *it.msg:
			case <-s.stop:
				s.hand(prev) // never handed: a later Since resumes before it
				return
			}
		case it.jl != nil && s.opts.onJoinLeave != nil:
			s.opts.onJoinLeave(*it.jl)
		case it.sub != nil:
			s.mu.Lock()
			if s.handed.Epoch != it.sub.Epoch {
				s.handed = Position{Epoch: it.sub.Epoch} // a new sequence: nothing of it handed yet
			}
			s.mu.Unlock()
			if s.opts.onSubscribed != nil {
				s.opts.onSubscribed(*it.sub)
			}
		}
	}
}

// hand records pos as the last message handed to the caller, before the
// hand-over, so that Position includes a message as soon as the caller
// can see it. It returns the position it replaced.
func (s *Subscription) hand(pos Position) Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.handed
	s.handed = pos
	return prev
}

// Channel returns the subscription's channel.
func (s *Subscription) Channel() string { return s.channel }

// Messages returns the channel of messages, closed when the subscription
// ends. It is nil when the subscription has an OnMessage function.
func (s *Subscription) Messages() <-chan Message { return s.out }

// Position returns the position of the last message handed to the caller
// (received from Messages, or passed to OnMessage), to resume from later
// with Since. Messages still queued inside the client are not counted.
func (s *Subscription) Position() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handed
}

// Done is closed when the subscription has ended and delivers no more.
func (s *Subscription) Done() <-chan struct{} { return s.ended }

// Err returns why the subscription ended: nil while it runs or after
// Unsubscribe; ErrClosed or the client's cause after Close or a final
// disconnect; an *Error when the hub refused a resubscribe.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Unsubscribe ends the subscription and tells the hub. Messages stop at
// once; the channel of Messages is closed.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	if c.subs[s.channel] == s {
		delete(c.subs, s.channel)
	}
	cn := c.cn
	c.mu.Unlock()
	s.end(nil)
	if cn == nil {
		return nil // the next connection does not subscribe it
	}
	_, err := cn.do(ctx, c.ids.Add(1), protocol.ClientCommand{Op: protocol.OpUnsubscribe, Channel: s.channel}, nil)
	if err != nil && !errors.Is(err, ErrConnectionLost) && !errors.Is(err, errNotSent) {
		return fmt.Errorf("client: unsubscribe from %s: %w", s.channel, err)
	}
	return nil
}

// fail removes the subscription from its client, ends it with err and
// returns err.
func (s *Subscription) fail(err error) error {
	c := s.c
	c.mu.Lock()
	if c.subs[s.channel] == s {
		delete(c.subs, s.channel)
	}
	c.mu.Unlock()
	s.end(err)
	return err
}

// end stops delivery; the first cause counts.
func (s *Subscription) end(err error) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.stop)
	})
}

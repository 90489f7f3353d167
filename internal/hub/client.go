package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// client is one connected WebSocket client. It is its connection's
// wsloop.Handler.
type client struct {
	srv    *Server
	conn   wsloop.Conn
	info   protocol.ClientInfo
	ctx    context.Context // ends with the connection
	cancel context.CancelFunc
	q      cmdQueue                // commands waiting to run (exec.go)
	pipe   atomic.Pointer[pubPipe] // publishes in flight (pipeline.go); made by the first publish
	flow   clientFlow              // channel gates this client holds closed (flow.go)
	sess   session                 // token, its expiry, command rate (access.go)

	// Guarded by srv.reg.mu.
	subs    subSet
	removed bool
}

// OnClose implements wsloop.Handler. It cleans up after the connection
// has closed: the client leaves the registry, its channels and their
// presence. With a broker that may block, that runs on a goroutine of its
// own, counted in srv.conns like the connection.
func (c *client) OnClose() {
	c.cancel()
	c.endSession()
	c.stopQueue()
	c.releaseGates(true)
	if c.srv.inline {
		c.cleanup()
		return
	}
	go c.cleanup()
}

func (c *client) cleanup() {
	s := c.srv
	defer s.conns.Done()
	for _, ch := range s.reg.remove(c) {
		s.unsubscribeBroker(ch, c.info)
	}
	level, attrs := slog.LevelDebug, []any{"client", c.info.Client, "user", c.info.User, "remote", c.conn.RemoteAddr()}
	code := "peer"
	if d, ok := c.conn.Closed(); ok {
		level, attrs = slog.LevelInfo, append(attrs, "code", d.Reason, "close_status", d.Status)
		code = d.Reason
	}
	s.metrics.disconnected(code)
	s.log.Log(context.Background(), level, "client disconnected", attrs...)
}

// errBinary is the reply to a binary message.
var errBinary = protocol.AppendError(nil, 0, false, protocol.Errorf(protocol.CodeBadRequest, "binary frames are not supported; send text frames of JSON"))

// OnMessage implements wsloop.Handler: it runs every command of one
// inbound message, in order.
func (c *client) OnMessage(msg []byte, binary bool) {
	if binary {
		c.enqueueReply(errBinary)
		return
	}
	c.srv.metrics.received(len(msg))
	protocol.ForEachCommand(msg, c.command)
}

// run runs one command and enqueues its reply.
func (c *client) run(cmd protocol.Command, perr *protocol.Error) {
	if !c.srv.inline {
		if ap, ok := c.srv.broker.(broker.AsyncPublisher); ok && perr == nil && cmd.Op == protocol.OpPublish {
			c.publishAsync(ap, cmd)
			return
		}
		if p := c.pipe.Load(); p != nil {
			p.wait()
		}
	}
	if perr == nil {
		start := c.srv.metrics.start()
		perr = c.handle(cmd)
		c.srv.metrics.ran(cmd.Op, start)
	}
	if perr != nil {
		c.srv.metrics.failed(perr.Code)
		c.enqueueReply(protocol.AppendError(nil, cmd.ID, cmd.HasID, perr))
	}
}

// handle runs one command and enqueues its reply; an error is replied by
// the caller.
func (c *client) handle(cmd protocol.Command) *protocol.Error {
	switch cmd.Op {
	case protocol.OpSubscribe:
		return c.subscribe(cmd)
	case protocol.OpUnsubscribe:
		return c.unsubscribe(cmd)
	case protocol.OpPublish:
		if _, perr := c.permit(permPublish, cmd.Channel); perr != nil {
			return perr
		}
		start := c.srv.metrics.start()
		pos, err := c.srv.broker.Publish(c.ctx, cmd.Channel, c.info.User, cmd.Data)
		c.srv.metrics.published(start)
		if err != nil {
			return c.fail("publish", err)
		}
		c.enqueueReply(protocol.AppendOffsetReply(nil, cmd.ID, cmd.HasID, pos.Offset))
	case protocol.OpSend:
		n, err := c.srv.send(c.ctx, cmd.To, c.info.User, cmd.Data)
		if err != nil {
			return c.fail("send", err)
		}
		c.reply(cmd, struct {
			Delivered int `json:"delivered"`
		}{n})
	case protocol.OpPresence:
		ns, perr := c.permit(permRead, cmd.Channel)
		if perr != nil {
			return perr
		}
		if !ns.Presence {
			return protocol.Errorf(protocol.CodeForbidden, "presence is off for channel %q (presence = false)", cmd.Channel)
		}
		clients, err := c.srv.broker.Presence(c.ctx, cmd.Channel)
		if err != nil {
			return c.fail("presence", err)
		}
		c.reply(cmd, presenceResult{Clients: clients})
	case protocol.OpHistory:
		if _, perr := c.permit(permRead, cmd.Channel); perr != nil {
			return perr
		}
		q := history.Query{Since: positionOf(cmd.Since), Limit: cmd.Limit}
		res, err := c.srv.broker.History(c.ctx, cmd.Channel, q)
		if err != nil {
			return c.fail("history", err)
		}
		c.enqueueReply(protocol.AppendReply(nil, cmd.ID, cmd.HasID, appendHistory(nil, res, q.Since != nil)))
	case protocol.OpRefresh:
		return c.refresh(cmd)
	case protocol.OpPing:
		c.enqueueReply(protocol.AppendReply(nil, cmd.ID, cmd.HasID, emptyObject))
	}
	return nil
}

var emptyObject = []byte("{}")

type presenceResult struct {
	Clients []protocol.ClientInfo `json:"clients"`
}

type subscribeResult struct {
	Channel   string `json:"channel"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Recovered *bool  `json:"recovered,omitempty"` // only for a subscribe with since
}

// positionOf converts a command's since to a history position.
func positionOf(p *protocol.StreamPos) *history.Position {
	if p == nil {
		return nil
	}
	return &history.Position{Offset: p.Offset, Epoch: p.Epoch}
}

// appendHistory appends the result of a history read: the channel's epoch
// and offset, recovered when since was asked, and the stored message
// pushes as they are, oldest first.
func appendHistory(dst []byte, res history.Result, since bool) []byte {
	dst = append(dst, `{"epoch":`...)
	dst = protocol.AppendString(dst, res.Position.Epoch)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, res.Position.Offset, 10)
	if since {
		dst = append(dst, `,"recovered":`...)
		dst = strconv.AppendBool(dst, res.Recovered)
	}
	dst = append(dst, `,"messages":[`...)
	for i, m := range res.Messages {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m...)
	}
	return append(dst, "]}"...)
}

func (c *client) reply(cmd protocol.Command, v any) {
	c.enqueueReply(protocol.AppendReplyValue(nil, cmd.ID, cmd.HasID, v))
}

// subscribe subscribes c to a channel. With since it recovers: the reply
// says whether every message after since is still in history, and if so
// they follow the reply, before any newer message. With last the last
// messages follow the reply.
func (c *client) subscribe(cmd protocol.Command) *protocol.Error {
	ns, perr := c.permit(permRead, cmd.Channel)
	if perr != nil {
		return perr
	}
	reg := c.srv.reg
	already, n := reg.subscribed(c, cmd.Channel)
	if already {
		pos, err := c.srv.broker.Position(c.ctx, cmd.Channel)
		if err != nil {
			return c.fail("subscribe", err)
		}
		c.reply(cmd, subscribeResult{Channel: cmd.Channel, Offset: pos.Offset, Epoch: pos.Epoch})
		return nil
	}
	if n >= c.srv.cfg.MaxSubscriptions {
		return protocol.Errorf(protocol.CodeTooManyRequests, "subscription limit reached: %d channels per connection", c.srv.cfg.MaxSubscriptions)
	}
	var q *history.Query
	switch {
	case cmd.Since != nil:
		q = &history.Query{Since: positionOf(cmd.Since)}
	case cmd.Last > 0:
		q = &history.Query{Limit: cmd.Last}
	}
	// Join first: a client that has its subscribe reply is in presence.
	if ns.Presence {
		if err := c.srv.broker.Join(c.ctx, cmd.Channel, c.info, ns.JoinLeave); err != nil {
			return c.fail("subscribe", err)
		}
	}
	added := false
	err := c.srv.broker.Subscribe(c.ctx, cmd.Channel, q, func(res history.Result) {
		// Runs while no publication on the channel is in flight: the reply
		// and the history go out before any message after res.Position.
		if added = reg.addSub(c, cmd.Channel); !added {
			return
		}
		r := subscribeResult{Channel: cmd.Channel, Offset: res.Position.Offset, Epoch: res.Position.Epoch}
		if cmd.Since != nil {
			r.Recovered = &res.Recovered
		}
		c.reply(cmd, r)
		if cmd.Last > 0 || res.Recovered {
			for _, m := range res.Messages {
				c.enqueueReply(m)
			}
		}
	})
	switch {
	case err != nil:
		if ns.Presence {
			c.srv.leave(cmd.Channel, c.info, ns)
		}
		return c.fail("subscribe", err)
	case !added: // the connection closed meanwhile
		c.srv.unsubscribeBroker(cmd.Channel, c.info)
	}
	return nil
}

func (c *client) unsubscribe(cmd protocol.Command) *protocol.Error {
	if c.srv.reg.removeSub(c, cmd.Channel) {
		c.srv.unsubscribeBroker(cmd.Channel, c.info)
	}
	c.enqueueReply(protocol.AppendReply(nil, cmd.ID, cmd.HasID, emptyObject))
	return nil
}

// fail is internal for a command of c; a call cut short because c's
// connection ended is not an error of the hub's and gets no reply.
func (c *client) fail(op string, err error) *protocol.Error {
	if c.ctx.Err() != nil {
		return nil
	}
	return c.srv.internal(op, err)
}

// internal logs err and returns the error a client sees.
func (s *Server) internal(op string, err error) *protocol.Error {
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Code == protocol.CodeUnavailable { // the broker cannot be reached
		s.log.Warn("command failed", "op", op, "err", err)
		return perr
	}
	s.log.Error("command failed", "op", op, "err", err)
	return protocol.Errorf(protocol.CodeInternal, "%s failed; see the hub's log", op)
}

// unsubscribeBroker tells the broker that one local subscriber of channel
// left. It must not depend on the client's context, which may have ended.
func (s *Server) unsubscribeBroker(channel string, info protocol.ClientInfo) {
	if ns, err := s.ns.of(channel); err == nil && ns.Presence {
		s.leave(channel, info, ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	if err := s.broker.Unsubscribe(ctx, channel); err != nil {
		s.log.Warn("broker unsubscribe failed", "channel", channel, "err", err)
	}
}

// leave takes a client out of channel's presence. It must not depend on
// the client's context, which may have ended.
func (s *Server) leave(channel string, info protocol.ClientInfo, ns *Namespace) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	if err := s.broker.Leave(ctx, channel, info, ns.JoinLeave); err != nil {
		s.log.Warn("presence leave failed", "channel", channel, "err", err)
	}
}

// send encodes a direct push once and hands it to the broker.
func (s *Server) send(ctx context.Context, to, from string, data json.RawMessage) (int, error) {
	return s.broker.Send(ctx, to, protocol.AppendDirect(nil, from, data))
}

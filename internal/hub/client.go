package hub

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// transport is one client connection as the hub sees it: the connection
// layer's Conn. The hub hands it encoded server objects and never waits on
// it; the layer calls the client's OnMessage for each inbound message.
type transport = wsloop.Conn

// client is one connected WebSocket client. It is its connection's
// wsloop.Handler.
type client struct {
	srv    *Server
	conn   transport
	info   protocol.ClientInfo
	remote string
	ctx    context.Context // ends with the connection
	cancel context.CancelFunc

	// Guarded by srv.reg.mu.
	subs    map[string]int // channel -> index in registry.channels[channel]
	removed bool
}

// OnClose cleans up after the connection has closed: the client leaves the
// registry and its channels.
func (c *client) OnClose() {
	s := c.srv
	c.cancel()
	for _, ch := range s.reg.remove(c) {
		s.unsubscribeBroker(ch, c.info)
	}
	level, attrs := slog.LevelDebug, []any{"client", c.info.Client, "user", c.info.User, "remote", c.remote}
	if cl, ok := c.conn.Closed(); ok {
		level, attrs = slog.LevelInfo, append(attrs, "code", cl.Reason, "status", cl.Status)
	}
	s.log.Log(context.Background(), level, "client disconnected", attrs...)
	s.conns.Done()
}

// OnMessage runs every command of one inbound text message, in order; a
// binary message gets a bad_request error.
func (c *client) OnMessage(msg []byte, binary bool) {
	if binary {
		c.conn.Enqueue(protocol.AppendError(nil, 0, false, protocol.Errorf(protocol.CodeBadRequest, "binary frames are not supported; send text frames of JSON")))
		return
	}
	protocol.ForEachCommand(msg, func(cmd protocol.Command, perr *protocol.Error) {
		if perr == nil {
			perr = c.handle(cmd)
		}
		if perr != nil {
			c.conn.Enqueue(protocol.AppendError(nil, cmd.ID, cmd.HasID, perr))
		}
	})
}

// OnDrain is called when the client's queue is back under its soft limits
// after it was congested. Flow control is not wired yet.
func (c *client) OnDrain() {}

// handle runs one command and enqueues its reply; an error is replied by
// the caller.
func (c *client) handle(cmd protocol.Command) *protocol.Error {
	switch cmd.Op {
	case protocol.OpSubscribe:
		return c.subscribe(cmd)
	case protocol.OpUnsubscribe:
		return c.unsubscribe(cmd)
	case protocol.OpPublish:
		pos, err := c.srv.broker.Publish(c.ctx, cmd.Channel, c.info.User, cmd.Data)
		if err != nil {
			return c.srv.internal("publish", err)
		}
		c.conn.Enqueue(protocol.AppendOffsetReply(nil, cmd.ID, cmd.HasID, pos.Offset))
	case protocol.OpSend:
		n, err := c.srv.send(c.ctx, cmd.To, c.info.User, cmd.Data)
		if err != nil {
			return c.srv.internal("send", err)
		}
		c.reply(cmd, struct {
			Delivered int `json:"delivered"`
		}{n})
	case protocol.OpPresence:
		clients, err := c.srv.broker.Presence(c.ctx, cmd.Channel)
		if err != nil {
			return c.srv.internal("presence", err)
		}
		c.reply(cmd, presenceResult{Clients: clients})
	case protocol.OpPing:
		c.conn.Enqueue(protocol.AppendReply(nil, cmd.ID, cmd.HasID, emptyObject))
	}
	return nil
}

var emptyObject = []byte("{}")

type presenceResult struct {
	Clients []protocol.ClientInfo `json:"clients"`
}

type subscribeResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

func (c *client) reply(cmd protocol.Command, v any) {
	c.conn.Enqueue(protocol.AppendReplyValue(nil, cmd.ID, cmd.HasID, v))
}

func (c *client) subscribe(cmd protocol.Command) *protocol.Error {
	reg := c.srv.reg
	already, n := reg.subscribed(c, cmd.Channel)
	if already {
		pos, err := c.srv.broker.Position(c.ctx, cmd.Channel)
		if err != nil {
			return c.srv.internal("subscribe", err)
		}
		c.reply(cmd, subscribeResult{cmd.Channel, pos.Offset, pos.Epoch})
		return nil
	}
	if n >= c.srv.cfg.MaxSubscriptions {
		return protocol.Errorf(protocol.CodeTooManyRequests, "subscription limit reached: %d channels per connection", c.srv.cfg.MaxSubscriptions)
	}
	added := false
	err := c.srv.broker.Subscribe(c.ctx, cmd.Channel, nil, func(res history.Result) {
		pos := res.Position
		// Runs while no publication on the channel is in flight: the reply
		// goes out before any message after pos.
		if added = reg.addSub(c, cmd.Channel); added {
			c.reply(cmd, subscribeResult{cmd.Channel, pos.Offset, pos.Epoch})
		}
	})
	if err != nil {
		return c.srv.internal("subscribe", err)
	}
	if !added { // the connection closed meanwhile
		c.srv.unsubscribeBroker(cmd.Channel, c.info)
		return nil
	}
	if err := c.srv.broker.Join(c.ctx, cmd.Channel, c.info, c.srv.cfg.JoinLeave); err != nil {
		c.srv.log.Warn("presence join failed", "channel", cmd.Channel, "err", err)
	}
	return nil
}

func (c *client) unsubscribe(cmd protocol.Command) *protocol.Error {
	if c.srv.reg.removeSub(c, cmd.Channel) {
		c.srv.unsubscribeBroker(cmd.Channel, c.info)
	}
	c.conn.Enqueue(protocol.AppendReply(nil, cmd.ID, cmd.HasID, emptyObject))
	return nil
}

// internal logs err and returns the error a client sees.
func (s *Server) internal(op string, err error) *protocol.Error {
	s.log.Error("command failed", "op", op, "err", err)
	return protocol.Errorf(protocol.CodeInternal, "%s failed; see the hub's log", op)
}

// unsubscribeBroker tells the broker that one local subscriber of channel
// left. It must not depend on the client's context, which may have ended.
func (s *Server) unsubscribeBroker(channel string, info protocol.ClientInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	if err := s.broker.Leave(ctx, channel, info, s.cfg.JoinLeave); err != nil {
		s.log.Warn("presence leave failed", "channel", channel, "err", err)
	}
	if err := s.broker.Unsubscribe(ctx, channel); err != nil {
		s.log.Warn("broker unsubscribe failed", "channel", channel, "err", err)
	}
}

// send encodes a direct push once and hands it to the broker.
func (s *Server) send(ctx context.Context, to, from string, data json.RawMessage) (int, error) {
	return s.broker.Send(ctx, to, protocol.AppendDirect(nil, from, data))
}

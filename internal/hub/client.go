package hub

import (
	"context"
	"encoding/json"
	"log/slog"

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
	remote string
	ctx    context.Context // ends with the connection
	cancel context.CancelFunc
	q      cmdQueue   // commands waiting to run (exec.go)
	flow   clientFlow // channel gates this client holds closed (flow.go)

	// Guarded by srv.reg.mu.
	subs    map[string]*channel
	removed bool
}

// OnClose implements wsloop.Handler. It cleans up after the connection
// has closed: the client leaves the registry, its channels and their
// presence. With a broker that may block, that runs on a goroutine of its
// own, counted in srv.conns like the connection.
func (c *client) OnClose() {
	c.cancel()
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
	level, attrs := slog.LevelDebug, []any{"client", c.info.Client, "user", c.info.User, "remote", c.remote}
	if d, ok := c.conn.Closed(); ok {
		level, attrs = slog.LevelInfo, append(attrs, "code", d.Reason, "close_status", d.Status)
	}
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
	protocol.ForEachCommand(msg, c.command)
}

// run runs one command and enqueues its reply.
func (c *client) run(cmd protocol.Command, perr *protocol.Error) {
	if perr == nil {
		perr = c.handle(cmd)
	}
	if perr != nil {
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
		pos, err := c.srv.broker.Publish(c.ctx, cmd.Channel, c.info.User, cmd.Data)
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
		clients, err := c.srv.broker.Presence(c.ctx, cmd.Channel)
		if err != nil {
			return c.fail("presence", err)
		}
		c.reply(cmd, presenceResult{Clients: clients})
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
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

func (c *client) reply(cmd protocol.Command, v any) {
	c.enqueueReply(protocol.AppendReplyValue(nil, cmd.ID, cmd.HasID, v))
}

func (c *client) subscribe(cmd protocol.Command) *protocol.Error {
	reg := c.srv.reg
	already, n := reg.subscribed(c, cmd.Channel)
	if already {
		pos, err := c.srv.broker.Position(c.ctx, cmd.Channel)
		if err != nil {
			return c.fail("subscribe", err)
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
		return c.fail("subscribe", err)
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

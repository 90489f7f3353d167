// Package broker carries channel messages, join/leave events, presence,
// direct messages and user disconnects between hub nodes. The hub talks to
// the rest of the cluster only through a Broker, so nothing outside this
// package assumes a single process. Memory is the single-node broker.
package broker

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// ErrClosed is returned by a broker that has stopped.
var ErrClosed = errors.New("broker: closed")

// Publication is one channel message as the broker delivers it.
type Publication struct {
	Channel string
	Offset  uint64
	Epoch   string
	From    string          // publisher's user id; "" for the HTTP API
	Data    json.RawMessage // compact JSON
	// Push is the encoded message push (protocol.AppendMessage), made once
	// by the history store: the hub sends these bytes to every subscriber.
	// It is shared with history: never modify it.
	Push []byte
}

// ChannelInfo summarises one channel with subscribers.
type ChannelInfo struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
	Offset      uint64 `json:"offset"`
}

// Handler is the node side of a broker: the hub implements it. The broker
// calls HandlePublication for each channel the node subscribed to, one call
// at a time per channel, in offset order. Handlers must not block: they
// enqueue and return.
type Handler interface {
	HandlePublication(p Publication)
	HandleJoinLeave(channel string, join bool, c protocol.ClientInfo)
	// HandleDirect delivers an encoded direct push to the node's connections
	// of user and returns how many it reached.
	HandleDirect(user string, push []byte) int
	// HandleDisconnectUser disconnects the node's connections of user and
	// returns how many.
	HandleDisconnectUser(user string) int
}

// Broker fans messages out across nodes. Every method is safe for concurrent
// use.
//
// A method may block (on the network, a disk, another node) unless the
// broker reports NonBlocking. The hub relies on that report, not on a
// convention: it calls a non-blocking broker straight from its event loop,
// and any other broker only from a connection's own worker goroutine, so a
// slow broker delays the connection that asked and nothing else.
type Broker interface {
	// Run does the broker's background work until ctx ends.
	Run(ctx context.Context) error
	// NonBlocking reports whether every other method returns without
	// waiting on I/O, other nodes or locks held across such waits.
	NonBlocking() bool
	// Publish assigns the next offset of channel and delivers the message
	// to every node subscribed to channel.
	Publish(ctx context.Context, channel, from string, data json.RawMessage) (history.Position, error)
	// Subscribe adds one subscriber on this node to channel. It calls fn
	// once, at a moment when no publication on the channel is in flight to
	// this node: every publication after the position fn gets is delivered
	// after fn returns, and none before it. fn gets the channel's position
	// and, when q is not nil, the history q selects, read at that same
	// moment: with q.Since that is a recovery (Result.Recovered says
	// whether the messages are exactly the ones after Since, given a Limit
	// that allows them all); without it the last q.Limit messages. So a
	// subscriber that sends fn's messages and then the publications
	// delivered to it sees no gap and no duplicate. Subscribe and
	// Unsubscribe are counted: the node gets a channel's publications
	// while its count is above zero.
	Subscribe(ctx context.Context, channel string, q *history.Query, fn func(history.Result)) error
	// Unsubscribe removes one subscriber on this node from channel. It
	// returns after every publication on channel that was in flight to
	// this node has been handed to the Handler, so a subscriber removed
	// from the node's list before the call gets no message after it.
	Unsubscribe(ctx context.Context, channel string) error
	// Join adds c to channel's presence and, when notify is set, tells
	// every node subscribed to channel. Leave undoes it.
	Join(ctx context.Context, channel string, c protocol.ClientInfo, notify bool) error
	Leave(ctx context.Context, channel string, c protocol.ClientInfo, notify bool) error
	// Presence lists the clients subscribed to channel on all nodes.
	Presence(ctx context.Context, channel string) ([]protocol.ClientInfo, error)
	// Send delivers an encoded direct push to every connection of user on
	// all nodes and returns how many it reached.
	Send(ctx context.Context, user string, push []byte) (int, error)
	// DisconnectUser disconnects every connection of user on all nodes.
	DisconnectUser(ctx context.Context, user string) (int, error)
	// Channels lists the channels that have subscribers.
	Channels(ctx context.Context) ([]ChannelInfo, error)
	// Position returns channel's position.
	Position(ctx context.Context, channel string) (history.Position, error)
	// History returns channel's position and the messages q selects.
	History(ctx context.Context, channel string, q history.Query) (history.Result, error)
}

// AsyncPublisher is a Broker that can take a publish without waiting for
// it to be stored: the hub then lets a connection send its next publish
// while earlier ones are in flight, and replies to each in order.
type AsyncPublisher interface {
	// PublishAsync does what Publish does without waiting: it never
	// blocks (the hub may call it from its event loop), and calls done
	// exactly once, with what Publish would have returned, on a
	// goroutine of the broker's or, for a publish refused at once,
	// before returning. done must not block.
	// Publishes to one channel through PublishAsync are stored in the
	// order of the calls, and their done calls run in that order.
	PublishAsync(ctx context.Context, channel, from string, data json.RawMessage, done func(history.Position, error))
}

// BatchHandler is a Handler that can take several consecutive
// publications of one channel in one call. A broker that receives
// messages in batches hands them over this way when its Handler offers
// it, so the node can queue each subscriber's share back to back (and
// write it together) rather than message by message.
type BatchHandler interface {
	// HandlePublications delivers ps, consecutive publications of one
	// channel in offset order, as HandlePublication would one by one.
	HandlePublications(ps []Publication)
}

// Package history owns each channel's offset sequence and its recent
// messages: the offset of the last message, the epoch that names the
// sequence, and the message pushes a reconnecting client can recover.
// A Store decides the offset of every publication and encodes its push
// once; the broker calls it once per message and fans out those bytes.
package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Position is where a channel's sequence stands: the offset of its last
// message (0 if none) and the epoch that names the sequence.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Limits bound one channel's history.
type Limits struct {
	// Size is how many recent messages the channel keeps; 0 keeps none
	// (offsets still count).
	Size int
	// TTL is how long a message is kept; 0 keeps it until Size or the
	// store's memory cap evicts it.
	TTL time.Duration
}

// DefaultLimits are the limits of a channel when the store is given none:
// the last 100 messages of the last 10 minutes.
var DefaultLimits = Limits{Size: 100, TTL: 10 * time.Minute}

// Query selects messages of one channel's history.
type Query struct {
	// Since, when set, asks for the messages after Since.Offset, oldest
	// first. Without it a read returns the newest messages.
	Since *Position
	// Limit caps how many messages are returned: without Since the newest
	// Limit, with Since the oldest Limit after it (so a client can page
	// forward). 0 returns every message the history holds.
	Limit int
}

// Result is the answer to a Query.
type Result struct {
	// Position is the channel's current position.
	Position Position
	// Messages are encoded message pushes, oldest first. They are shared
	// with every other reader and subscriber: never modify them.
	Messages [][]byte
	// Recovered is set for a Query with Since when Since is in the current
	// epoch and every message after Since.Offset is still held, so that
	// Messages, if Limit allowed them all, are exactly the messages after
	// Since. When it is false a client missed messages it cannot get back.
	Recovered bool
}

// Store assigns offsets and keeps history. Implementations must be safe for
// concurrent use; callers serialise Append per channel when they need
// delivery order to match offset order.
type Store interface {
	// Append records one message on channel and returns its position and
	// its encoded message push (protocol.AppendMessage), the bytes every
	// subscriber gets. The push is shared: never modify it.
	Append(ctx context.Context, channel, from string, data json.RawMessage) (Position, []byte, error)
	// Position returns the channel's current position without changing it.
	// A channel never published to gets offset 0 and a fresh epoch, which
	// stays its epoch once it has messages.
	Position(ctx context.Context, channel string) (Position, error)
	// Read returns the channel's position and the messages q selects.
	Read(ctx context.Context, channel string, q Query) (Result, error)
}

// Pinner is implemented by stores that forget channels: a pinned channel's
// sequence is never forgotten (its messages still expire). The memory
// broker pins a channel while the node has subscribers to it, so their
// offsets never restart under them. Pins are counted.
type Pinner interface {
	Pin(channel string)
	Unpin(channel string)
}

// NewEpoch returns a random epoch name (8 hex digits).
func NewEpoch() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

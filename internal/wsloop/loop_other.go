//go:build !linux

package wsloop

import (
	"context"
	"errors"
	"net"

	"github.com/netkit/netkit/internal/protocol"
)

// Supported reports whether this platform has the event loop.
const Supported = false

// ErrNotSupported is returned by New on platforms without epoll.
var ErrNotSupported = errors.New("wsloop: the event loop needs Linux (epoll); use the goroutine transport")

// Loop is not available on this platform.
type Loop struct{}

// New returns ErrNotSupported.
func New(Config) (*Loop, error) { return nil, ErrNotSupported }

// Run returns ErrNotSupported.
func (*Loop) Run(context.Context) error { return ErrNotSupported }

// Attach returns ErrNotSupported.
func (*Loop) Attach(nc net.Conn) (*Conn, error) { nc.Close(); return nil, ErrNotSupported }

// Conn is not available on this platform.
type Conn struct{}

// Start does nothing.
func (*Conn) Start(Handler) {}

// Enqueue reports false.
func (*Conn) Enqueue([]byte) bool { return false }

// Close does nothing.
func (*Conn) Close(protocol.Disconnect) {}

// Abort does nothing.
func (*Conn) Abort() {}

// Reason returns the zero Disconnect.
func (*Conn) Reason() protocol.Disconnect { return protocol.Disconnect{} }

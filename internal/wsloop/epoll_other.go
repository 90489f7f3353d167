//go:build !linux

package wsloop

import (
	"context"
	"errors"
	"net"
)

// epollSupported reports whether this platform has the event loop: here it
// has not, and every connection takes the goroutine path.
const epollSupported = false

// epoll is not available on this platform.
type epoll struct{}

func newEpoll(*Layer) (*epoll, error) {
	return nil, errors.New("wsloop: no event loop on this platform")
}

func (*epoll) run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// epollConn is never made on this platform (Layer.ep is nil).
type epollConn struct{ Conn }

func (*epoll) newConn(string, Options) *epollConn {
	panic("wsloop: no event loop on this platform")
}

func (*epoll) attach(*epollConn, *net.TCPConn) error {
	return errors.New("wsloop: no event loop on this platform")
}

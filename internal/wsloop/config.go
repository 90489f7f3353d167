package wsloop

import (
	"errors"
	"log/slog"
	"time"
)

// Config sets a loop's limits; the hub fills it from its own Config.
type Config struct {
	Pollers       int           // event-loop goroutines; 0 means GOMAXPROCS
	MaxMessage    int64         // largest inbound message; larger ones close with too_large
	QueueMessages int           // outbound queue limit per connection, in objects
	QueueBytes    int64         // outbound queue limit per connection, in bytes
	PingInterval  time.Duration // how often each connection is pinged
	PongTimeout   time.Duration // how long after a ping a silent connection is dropped
	WriteTimeout  time.Duration // how long a connection may leave written bytes untaken
	Log           *slog.Logger  // nil discards
}

func (c *Config) check() error {
	if c.MaxMessage <= 0 || c.QueueMessages <= 0 || c.QueueBytes <= 0 || c.PingInterval <= 0 || c.PongTimeout <= 0 || c.WriteTimeout <= 0 {
		return errors.New("wsloop: every limit in Config must be positive")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Handler gets a connection's events on its poller goroutine, so it must
// not block.
type Handler interface {
	// OnFrame gets one text message, valid UTF-8; frame is valid only
	// during the call.
	OnFrame(frame []byte)
	// OnClose is called once, after the socket is closed.
	OnClose()
}

package brokertest

import (
	"context"
	"encoding/json"
	"time"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
)

// Delayed wraps a broker so that every call first waits, as a call to a
// broker on a slow network would. It reports NonBlocking false, so a hub
// must keep its calls off the event loop.
type Delayed struct {
	broker.Broker
	// Wait runs before each call with the call's name ("publish",
	// "subscribe", ...). Nil waits Delay or until ctx ends.
	Wait  func(ctx context.Context, op string) error
	Delay time.Duration
}

func (d *Delayed) wait(ctx context.Context, op string) error {
	if d.Wait != nil {
		return d.Wait(ctx, op)
	}
	t := time.NewTimer(d.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NonBlocking implements broker.Broker: a delayed broker blocks.
func (d *Delayed) NonBlocking() bool { return false }

// Publish implements broker.Broker.
func (d *Delayed) Publish(ctx context.Context, channel, from string, data json.RawMessage) (history.Position, error) {
	if err := d.wait(ctx, "publish"); err != nil {
		return history.Position{}, err
	}
	return d.Broker.Publish(ctx, channel, from, data)
}

// Subscribe implements broker.Broker.
func (d *Delayed) Subscribe(ctx context.Context, channel string, q *history.Query, fn func(history.Result)) error {
	if err := d.wait(ctx, "subscribe"); err != nil {
		return err
	}
	return d.Broker.Subscribe(ctx, channel, q, fn)
}

// Unsubscribe implements broker.Broker.
func (d *Delayed) Unsubscribe(ctx context.Context, channel string) error {
	if err := d.wait(ctx, "unsubscribe"); err != nil {
		return err
	}
	return d.Broker.Unsubscribe(ctx, channel)
}

// Join implements broker.Broker.
func (d *Delayed) Join(ctx context.Context, channel string, c protocol.ClientInfo, notify bool) error {
	if err := d.wait(ctx, "join"); err != nil {
		return err
	}
	return d.Broker.Join(ctx, channel, c, notify)
}

// Leave implements broker.Broker.
func (d *Delayed) Leave(ctx context.Context, channel string, c protocol.ClientInfo, notify bool) error {
	if err := d.wait(ctx, "leave"); err != nil {
		return err
	}
	return d.Broker.Leave(ctx, channel, c, notify)
}

// Presence implements broker.Broker.
func (d *Delayed) Presence(ctx context.Context, channel string) ([]protocol.ClientInfo, error) {
	if err := d.wait(ctx, "presence"); err != nil {
		return nil, err
	}
	return d.Broker.Presence(ctx, channel)
}

// Send implements broker.Broker.
func (d *Delayed) Send(ctx context.Context, user string, push []byte) (int, error) {
	if err := d.wait(ctx, "send"); err != nil {
		return 0, err
	}
	return d.Broker.Send(ctx, user, push)
}

// DisconnectUser implements broker.Broker.
func (d *Delayed) DisconnectUser(ctx context.Context, user string) (int, error) {
	if err := d.wait(ctx, "disconnect"); err != nil {
		return 0, err
	}
	return d.Broker.DisconnectUser(ctx, user)
}

// Channels implements broker.Broker.
func (d *Delayed) Channels(ctx context.Context) ([]broker.ChannelInfo, error) {
	if err := d.wait(ctx, "channels"); err != nil {
		return nil, err
	}
	return d.Broker.Channels(ctx)
}

// Position implements broker.Broker.
func (d *Delayed) Position(ctx context.Context, channel string) (history.Position, error) {
	if err := d.wait(ctx, "position"); err != nil {
		return history.Position{}, err
	}
	return d.Broker.Position(ctx, channel)
}

// History implements broker.Broker.
func (d *Delayed) History(ctx context.Context, channel string, q history.Query) (history.Result, error) {
	if err := d.wait(ctx, "history"); err != nil {
		return history.Result{}, err
	}
	return d.Broker.History(ctx, channel, q)
}

package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netkit/netkit/internal/protocol"
)

// Presence lives in a key-value bucket whose entries expire PresenceTTL
// after their last write: key "<channel>.<client>" (each encoded), value
// the client's info. Each node rewrites its own entries every third of
// the TTL, so the entries of a node that dies expire within the TTL.
// Nodes announce themselves the same way in the nodes bucket, so that a
// direct send knows how many answers to wait for.

// presenceEntry is a presence value.
type presenceEntry struct {
	Info protocol.ClientInfo `json:"info"`
	Node string              `json:"node"`
}

// joinLeave is a join or leave event between nodes.
type joinLeave struct {
	Join bool                `json:"join"`
	Info protocol.ClientInfo `json:"info"`
}

// userAnswerWait bounds how long Send and DisconnectUser wait for the
// other nodes' counts.
const userAnswerWait = 2 * time.Second

func presenceKey(channel, client string) string { return enc(channel) + "." + enc(client) }

// Join implements broker.Broker.
func (b *Broker) Join(ctx context.Context, channel string, c protocol.ClientInfo, notify bool) error {
	a, err := b.get(ctx)
	if err != nil {
		return fmt.Errorf("natsbroker: join %s: %w", channel, err)
	}
	val, _ := json.Marshal(presenceEntry{Info: c, Node: b.cfg.NodeID})
	key := presenceKey(channel, c.Client)
	if _, err := a.presence.Put(ctx, key, val); err != nil {
		return fmt.Errorf("natsbroker: join %s: %w", channel, unavailable(err))
	}
	b.mu.Lock()
	b.joined[key] = val
	b.mu.Unlock()
	if notify {
		return b.notify(channel, true, c)
	}
	return nil
}

// Leave implements broker.Broker. A client not in presence makes no event.
func (b *Broker) Leave(ctx context.Context, channel string, c protocol.ClientInfo, notify bool) error {
	key := presenceKey(channel, c.Client)
	b.mu.Lock()
	delete(b.joined, key)
	b.mu.Unlock()
	a, err := b.get(ctx)
	if err != nil {
		return fmt.Errorf("natsbroker: leave %s: %w", channel, err)
	}
	if _, err := a.presence.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("natsbroker: leave %s: %w", channel, unavailable(err))
	}
	if err := a.presence.Delete(ctx, key); err != nil {
		return fmt.Errorf("natsbroker: leave %s: %w", channel, unavailable(err))
	}
	if notify {
		return b.notify(channel, false, c)
	}
	return nil
}

// notify hands a join or leave to this node's Handler at once and to the
// other nodes subscribed to channel through NATS.
func (b *Broker) notify(channel string, join bool, c protocol.ClientInfo) error {
	cs := b.channelState(channel)
	if cs != nil {
		cs.mu.Lock()
		if cs.refs > 0 {
			b.handler.HandleJoinLeave(channel, join, c)
		}
		cs.mu.Unlock()
	}
	m := nats.NewMsg(subjJoinLeave + enc(channel))
	m.Header.Set(hdrNode, b.cfg.NodeID)
	m.Data, _ = json.Marshal(joinLeave{Join: join, Info: c})
	if err := b.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("natsbroker: notify %s: %w", channel, unavailable(err))
	}
	return nil
}

func (b *Broker) onJoinLeave(channel string, cs *chanState, m *nats.Msg) {
	if m.Header.Get(hdrNode) == b.cfg.NodeID {
		return
	}
	var ev joinLeave
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.refs > 0 {
		b.handler.HandleJoinLeave(channel, ev.Join, ev.Info)
	}
}

// Presence implements broker.Broker: the clients of every node, sorted by
// client id.
func (b *Broker) Presence(ctx context.Context, channel string) ([]protocol.ClientInfo, error) {
	a, err := b.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: presence %s: %w", channel, err)
	}
	w, err := a.presence.WatchFiltered(ctx, []string{enc(channel) + ".*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("natsbroker: presence %s: %w", channel, unavailable(err))
	}
	defer w.Stop()
	out := []protocol.ClientInfo{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
				return out, nil
			}
			var p presenceEntry
			if json.Unmarshal(e.Value(), &p) == nil {
				out = append(out, p.Info)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("natsbroker: presence %s: %w", channel, unavailable(ctx.Err()))
		}
	}
}

// refresh rewrites this node's presence entries and its node entry.
func (b *Broker) refresh(ctx context.Context) {
	a, err := b.get(ctx)
	if err != nil {
		return
	}
	b.mu.Lock()
	entries := make(map[string][]byte, len(b.joined))
	for k, v := range b.joined {
		entries[k] = v
	}
	b.mu.Unlock()
	for k, v := range entries {
		if _, err := a.presence.Put(ctx, k, v); err != nil {
			b.log.Warn("natsbroker: presence refresh", "err", err)
			return
		}
	}
	if _, err := a.nodes.Put(ctx, enc(b.cfg.NodeID), []byte(b.cfg.NodeID)); err != nil {
		b.log.Warn("natsbroker: node refresh", "err", err)
	}
}

// removeNode takes this node and its presence out as it stops.
func (b *Broker) removeNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b.setupMu.Lock()
	a := b.assets
	b.setupMu.Unlock()
	if a == nil || !b.nc.IsConnected() {
		return
	}
	b.mu.Lock()
	keys := make([]string, 0, len(b.joined))
	for k := range b.joined {
		keys = append(keys, k)
	}
	b.mu.Unlock()
	for _, k := range keys {
		a.presence.Delete(ctx, k)
	}
	a.nodes.Delete(ctx, enc(b.cfg.NodeID))
}

// Send implements broker.Broker.
func (b *Broker) Send(ctx context.Context, user string, push []byte) (int, error) {
	n, err := b.askNodes(ctx, "send", user, push)
	if err != nil {
		return 0, fmt.Errorf("natsbroker: send to %s: %w", user, err)
	}
	return n + b.handler.HandleDirect(user, push), nil
}

// DisconnectUser implements broker.Broker.
func (b *Broker) DisconnectUser(ctx context.Context, user string) (int, error) {
	n, err := b.askNodes(ctx, "disconnect", user, nil)
	if err != nil {
		return 0, fmt.Errorf("natsbroker: disconnect %s: %w", user, err)
	}
	return n + b.handler.HandleDisconnectUser(user), nil
}

// askNodes sends op to the other nodes and sums their counts; it waits
// for as many answers as the nodes bucket lists other nodes, at most
// userAnswerWait.
func (b *Broker) askNodes(ctx context.Context, op, user string, push []byte) (int, error) {
	a, err := b.get(ctx)
	if err != nil {
		return 0, err
	}
	others, err := b.otherNodes(ctx, a)
	if err != nil {
		return 0, unavailable(err)
	}
	inbox := b.nc.NewRespInbox()
	answers := make(chan *nats.Msg, others+1)
	sub, err := b.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return 0, unavailable(err)
	}
	defer sub.Unsubscribe()
	m := nats.NewMsg(subjUser + op)
	m.Reply = inbox
	m.Header.Set(hdrNode, b.cfg.NodeID)
	m.Header.Set("Netkit-User", user)
	m.Data = push
	if err := b.nc.PublishMsg(m); err != nil {
		return 0, unavailable(err)
	}
	total := 0
	timer := time.NewTimer(userAnswerWait)
	defer timer.Stop()
	for range others {
		select {
		case ans := <-answers:
			n, _ := strconv.Atoi(string(ans.Data))
			total += n
		case <-timer.C:
			return total, nil
		case <-ctx.Done():
			return total, nil
		}
	}
	return total, nil
}

func (b *Broker) otherNodes(ctx context.Context, a *assets) (int, error) {
	keys, err := a.nodes.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	self := enc(b.cfg.NodeID)
	for k := range keys.Keys() {
		if k != self {
			n++
		}
	}
	return n, nil
}

// subscribeUsers answers the other nodes' sends and disconnects.
func (b *Broker) subscribeUsers() (*nats.Subscription, error) {
	return b.nc.Subscribe(subjUser+"*", func(m *nats.Msg) {
		if m.Header.Get(hdrNode) == b.cfg.NodeID {
			return
		}
		user := m.Header.Get("Netkit-User")
		var n int
		switch strings.TrimPrefix(m.Subject, subjUser) {
		case "send":
			n = b.handler.HandleDirect(user, m.Data)
		case "disconnect":
			n = b.handler.HandleDisconnectUser(user)
		default:
			return
		}
		m.Respond([]byte(strconv.Itoa(n)))
	})
}

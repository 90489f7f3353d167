package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/netkit/netkit/internal/protocol"
)

// run owns the client's connections: it waits for the current one to end,
// reconnects and resubscribes, until Close, a final disconnect or the
// reconnect policy gives up. It returns after every goroutine of the
// client has.
func (c *Client) run(ctx context.Context, cn *conn) {
	for {
		cause, closing := c.watch(ctx, cn)
		cn.close()
		cn.wait()
		c.lost(cn)
		if closing {
			c.finish(nil)
			return
		}
		var de *DisconnectError
		if errors.As(cause, &de) && isFinal(de) {
			de.Final = true
		}
		c.log.Info("connection lost", "err", cause)
		if c.opts.onDisconnect != nil {
			c.opts.onDisconnect(cause)
		}
		if (de != nil && de.Final) || c.opts.reconnect.Disabled {
			c.finish(cause)
			return
		}
		if cn = c.reconnect(ctx, cause); cn == nil {
			return
		}
		if c.opts.onConnect != nil {
			c.opts.onConnect()
		}
	}
}

// watch waits until cn ends (returning its cause) or the client closes
// (closing true), renewing the token before it expires meanwhile.
func (c *Client) watch(ctx context.Context, cn *conn) (cause error, closing bool) {
	for {
		renew := time.NewTimer(time.Hour)
		renew.Stop()
		if c.opts.refresh != nil {
			c.mu.Lock()
			tok := c.token
			c.mu.Unlock()
			if exp, ok := tokenExpiry(tok); ok {
				renew.Reset(renewalWait(time.Until(exp)))
			}
		}
		select {
		case <-ctx.Done():
			renew.Stop()
			return nil, true
		case <-cn.done:
			renew.Stop()
			return cn.cause(), false
		case <-renew.C:
			c.renew(ctx, cn)
		}
	}
}

// renewalWait is how long to wait before renewing a token that expires in
// left: 30s before, or at nine tenths of a shorter life, and never sooner
// than in 1s (so that a refresh func returning the same token cannot spin).
func renewalWait(left time.Duration) time.Duration {
	return max(time.Second, left-min(30*time.Second, left/10))
}

// renew gets a new token and hands it to the hub on cn.
func (c *Client) renew(ctx context.Context, cn *conn) {
	tok, err := c.freshToken(ctx)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.handshakeTimeout)
	defer cancel()
	_, err = cn.do(ctx, c.ids.Add(1), protocol.ClientCommand{Op: opRefresh, Token: tok}, nil)
	if err != nil {
		c.log.Warn("token refresh refused", "err", err)
	}
}

// freshToken calls the refresh func and keeps its token for reconnects.
func (c *Client) freshToken(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.handshakeTimeout)
	defer cancel()
	tok, err := c.opts.refresh(ctx)
	if err != nil {
		c.log.Warn("token refresh failed", "err", err)
		return "", err
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return tok, nil
}

// lost forgets cn as the current connection, so that calls wait for the
// next one.
func (c *Client) lost(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == cn {
		c.cn = nil
		c.connected = make(chan struct{})
	}
}

// reconnect dials until a connection is up and every subscription renewed,
// with backoff and jitter. It returns nil after finishing the client, when
// it closes, gives up or the hub refuses the token.
func (c *Client) reconnect(ctx context.Context, cause error) *conn {
	p := c.opts.reconnect
	since := time.Now()
	for attempt := 0; ; attempt++ {
		if !c.sleep(p.delay(attempt)) {
			c.finish(nil)
			return nil
		}
		if p.GiveUpAfter > 0 && time.Since(since) > p.GiveUpAfter {
			c.finish(fmt.Errorf("%w after %s: %w", ErrGaveUp, p.GiveUpAfter, cause))
			return nil
		}
		if c.opts.refresh != nil {
			c.freshToken(ctx)
		}
		c.mu.Lock()
		tok := c.token
		c.mu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, c.opts.handshakeTimeout)
		cn, err := dialConn(dctx, &c.opts, c.url, tok)
		cancel()
		var he *Error
		switch {
		case ctx.Err() != nil:
			c.finish(nil)
			return nil
		case errors.As(err, &he) && he.Code == CodeUnauthorized:
			c.finish(err) // a refused token stays refused
			return nil
		case err != nil:
			c.log.Debug("reconnect failed", "attempt", attempt+1, "err", err)
			cause = err
			continue
		}
		c.startConn(cn)
		if err := c.resubscribe(ctx, cn); err != nil {
			cn.close()
			cn.wait()
			c.log.Debug("resubscribe failed", "err", err)
			cause = err
			continue
		}
		c.publishConn(cn)
		c.log.Info("reconnected", "attempt", attempt+1)
		return cn
	}
}

// resubscribe renews every subscription on cn, each from its last
// position, with all the commands sent before the first reply is awaited.
// A subscription the hub now refuses ends with the hub's error.
func (c *Client) resubscribe(ctx context.Context, cn *conn) error {
	c.mu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.opts.handshakeTimeout)
	defer cancel()
	calls := make([]*call, len(subs))
	for i, s := range subs {
		var err error
		if calls[i], err = s.sendSubscribe(ctx, cn, true); err != nil {
			return err
		}
	}
	for i, s := range subs {
		if calls[i] == nil {
			continue
		}
		_, err := cn.await(ctx, calls[i])
		var he *Error
		switch {
		case errors.As(err, &he):
			s.fail(fmt.Errorf("client: resubscribe to %s: %w", s.channel, err))
		case err != nil:
			return err
		}
	}
	return nil
}

// finish stops the client for good with err as its cause: every
// subscription ends, and Done closes once their goroutines have returned.
func (c *Client) finish(err error) {
	c.mu.Lock()
	c.err, c.stopped = err, true
	subs := c.subs
	c.subs = make(map[string]*Subscription)
	c.mu.Unlock()
	cause := err
	if cause == nil {
		cause = ErrClosed
	}
	for _, s := range subs {
		s.end(cause)
	}
	c.subWG.Wait()
	c.cancel()
	close(c.done)
}

// tokenExpiry reads the "exp" claim of a JWT without verifying it (only the
// hub can): the client uses it to renew in time.
func tokenExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	// A JWT's exp is seconds since 1970; past 1e11 (year 5138) it is noise,
	// and float to int64 conversion would wrap.
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 || claims.Exp > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(claims.Exp), 0), true
}

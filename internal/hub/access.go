package hub

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/auth"
	"github.com/netkit/netkit/internal/protocol"
)

// Access control: who may connect (origin, connection rate, token), what
// a connection may do (namespaces, token channels, private channels), and
// how fast (command rate).

// access holds the checks built from the Config.
type access struct {
	verifier  *auth.Verifier // nil: the hub accepts no tokens
	origins   *auth.OriginChecker
	connLimit *auth.ConnLimiter // nil: no limit
	rate      auth.RateConfig
}

func newAccess(cfg *Config) (access, error) {
	var a access
	var errs []error
	if cfg.JWTSecret != "" || cfg.JWTPublicKey != "" {
		v, err := auth.NewVerifier(auth.VerifierConfig{Secret: cfg.JWTSecret, PublicKeyFile: cfg.JWTPublicKey})
		errs = append(errs, err)
		a.verifier = v
	}
	o, err := auth.NewOriginChecker(cfg.AllowedOrigins)
	if err != nil {
		errs = append(errs, fmt.Errorf("hub.allowed_origins: %w", err))
	}
	a.origins = o
	a.rate = auth.DefaultRateConfig()
	a.rate.CommandRate, a.rate.CommandBurst = cfg.CommandRate, cfg.CommandBurst
	a.rate.ConnectRate, a.rate.ConnectBurst = cfg.ConnectRate, cfg.ConnectBurst
	if err := a.rate.Validate(); err != nil {
		errs = append(errs, err)
	}
	a.connLimit = auth.NewConnLimiter(a.rate)
	return a, errors.Join(errs...)
}

// admit runs the checks of an upgrade request before the upgrade, and
// answers it when they fail. It returns the token's claims, nil for an
// anonymous client.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (claims *auth.Claims, ok bool) {
	if !websocket.IsWebSocketUpgrade(r) {
		return nil, true // the upgrade answers what is wrong with the request
	}
	now := time.Now()
	if s.access.connLimit != nil && !s.access.connLimit.Allow(auth.RemoteAddr(r), now) {
		writeError(w, http.StatusTooManyRequests, protocol.Errorf(protocol.CodeTooManyRequests, "too many new connections from this address; retry in a few seconds (hub.connect_rate)"))
		return nil, false
	}
	if err := s.access.origins.Check(r); err != nil {
		s.log.Info("upgrade refused: origin", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, protocol.Errorf(protocol.CodeForbidden, "%v", err))
		return nil, false
	}
	token, err := auth.TokenFromRequest(r)
	switch {
	case err != nil:
		writeError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "%v", err))
		return nil, false
	case token == "" && !s.cfg.AllowAnonymous:
		writeError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "a token is required (hub.allow_anonymous is false): send ?token=<jwt> or Authorization: Bearer <jwt>"))
		return nil, false
	case token == "":
		return nil, true
	case s.access.verifier == nil:
		writeError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "this hub accepts no tokens (set hub.jwt_secret or hub.jwt_public_key); connect without one"))
		return nil, false
	}
	c, err := s.access.verifier.Verify(token, now)
	if err != nil {
		writeError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "%v", err))
		return nil, false
	}
	return &c, true
}

// session is a connection's identity and limits. The command path reads
// and changes it; the expiry timer only reads the connection.
type session struct {
	mu       sync.Mutex
	claims   *auth.Claims // nil: anonymous; guarded by mu
	expiry   *time.Timer  // fires token_expired; guarded by mu
	commands int          // commands before the limiter exists
	limiter  *auth.CommandLimiter
}

// freeCommands is how many commands a connection sends before it gets a
// rate limiter: an idle connection that only subscribed keeps none (two
// rate.Limiters cost about 170 bytes). A limiter starts with a full burst,
// so a client gets at most this many commands more than the burst.
const freeCommands = 64

// startSession arms the token's expiry for c.
func (c *client) startSession(claims *auth.Claims) {
	if claims == nil {
		return
	}
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	c.sess.claims = claims
	c.armExpiryLocked()
}

func (c *client) armExpiryLocked() {
	if c.sess.expiry != nil {
		c.sess.expiry.Stop()
		c.sess.expiry = nil
	}
	if d := c.sess.claims.Deadline(); !d.IsZero() {
		c.sess.expiry = time.AfterFunc(time.Until(d), c.tokenExpired)
	}
}

func (c *client) tokenExpired() {
	c.srv.log.Info("token expired", "client", c.info.Client, "user", c.info.User)
	c.conn.Close(closingFor(protocol.DisconnectTokenExpired))
}

// endSession stops the expiry timer.
func (c *client) endSession() {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	if c.sess.expiry != nil {
		c.sess.expiry.Stop()
	}
}

func (c *client) claims() *auth.Claims {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.claims
}

// limit takes one command from c's allowance. A refused command gets
// too_many_requests; sustained abuse disconnects with policy.
func (c *client) limit() *protocol.Error {
	if c.srv.access.rate.CommandRate == 0 {
		return nil
	}
	if c.sess.limiter == nil { // only the transport's goroutine gets here
		if c.sess.commands++; c.sess.commands <= min(freeCommands, c.srv.cfg.CommandBurst) {
			return nil
		}
		c.sess.limiter = auth.NewCommandLimiter(c.srv.access.rate)
	}
	switch c.sess.limiter.Allow(time.Now()) {
	case auth.Refused:
		return protocol.Errorf(protocol.CodeTooManyRequests, "too many commands: at most %d per second (hub.command_rate)", c.srv.cfg.CommandRate)
	case auth.Disconnect:
		c.conn.Close(closingFor(protocol.DisconnectAbuse))
		return protocol.Errorf(protocol.CodeTooManyRequests, "too many commands refused: disconnecting")
	}
	return nil
}

// refresh renews c's token without a reconnect.
func (c *client) refresh(cmd protocol.Command) *protocol.Error {
	v := c.srv.access.verifier
	if v == nil {
		return protocol.Errorf(protocol.CodeBadRequest, "this hub accepts no tokens (hub.jwt_secret and hub.jwt_public_key are unset)")
	}
	claims, err := v.Verify(cmd.Token, time.Now())
	if err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "token: %v", err)
	}
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	if c.sess.claims == nil {
		return protocol.Errorf(protocol.CodeForbidden, "this connection is anonymous; connect with a token to use refresh")
	}
	if claims.User != c.sess.claims.User {
		return protocol.Errorf(protocol.CodeForbidden, "the new token is for user %q, this connection is %q", claims.User, c.sess.claims.User)
	}
	c.sess.claims = &claims
	c.armExpiryLocked()
	var expires int64
	if !claims.Expires.IsZero() {
		expires = claims.Expires.Unix()
	}
	c.reply(cmd, struct {
		Expires int64 `json:"expires"`
	}{expires})
	return nil
}

// Channel operations a permission check is about.
const (
	permRead    = iota // subscribe, presence, history
	permPublish        // publish
)

// permit checks that c may do op on channel and returns the channel's
// namespace.
func (c *client) permit(op int, channel string) (*Namespace, *protocol.Error) {
	ns, err := c.srv.ns.of(channel)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeNotFound, "channel %q: %v (see hub.namespaces)", channel, err)
	}
	claims := c.claims()
	if claims == nil && !ns.AllowAnonymous {
		return nil, protocol.Errorf(protocol.CodeForbidden, "channel %q needs a token: its namespace does not allow anonymous clients", channel)
	}
	if !auth.AllowsPrivate(c.info.User, channel) {
		return nil, protocol.Errorf(protocol.CodeForbidden, "channel %q is private to the users after its last #", channel)
	}
	if claims != nil && !claims.Allows(channel) {
		return nil, protocol.Errorf(protocol.CodeForbidden, "your token's channels claim does not allow %q", channel)
	}
	if op == permPublish {
		switch ns.Publish {
		case PublishAPI:
			return nil, protocol.Errorf(protocol.CodeForbidden, "only the HTTP API may publish to %q (publish = \"api\")", channel)
		case PublishSubscribers:
			if ok, _ := c.srv.reg.subscribed(c, channel); !ok {
				return nil, protocol.Errorf(protocol.CodeForbidden, "subscribe to %q before publishing to it (publish = \"subscribers\")", channel)
			}
		}
	}
	return ns, nil
}

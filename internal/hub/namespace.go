package hub

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/netkit/netkit/internal/history"
)

// Who may publish to a namespace's channels (Namespace.Publish).
const (
	PublishSubscribers = "subscribers" // clients subscribed to the channel, and the API
	PublishClients     = "clients"     // any connected client, and the API
	PublishAPI         = "api"         // only the HTTP API
)

// Namespace holds the options of the channels named "NAME:rest". The
// channels without ":" take the options of the [hub] keys of the same
// names; a namespace table that leaves a key out takes the [hub] value.
type Namespace struct {
	Name           string        `koanf:"name" help:"the namespace: its channels are named NAME:rest"`
	Publish        string        `koanf:"publish" help:"who may publish: subscribers (of the channel), clients (any client) or api (only the HTTP API)"`
	Presence       bool          `koanf:"presence" help:"keep the channel's presence (who is subscribed); off also turns off join and leave pushes"`
	JoinLeave      bool          `koanf:"join_leave" help:"send join and leave pushes to a channel's subscribers (each join reaches every subscriber: n joins cost n*n/2 pushes)"`
	HistorySize    int           `koanf:"history_size" help:"messages each channel keeps for history and recovery; 0 keeps none"`
	HistoryTTL     time.Duration `koanf:"history_ttl" help:"how long a channel keeps a message for history and recovery"`
	AllowAnonymous bool          `koanf:"allow_anonymous" help:"let clients without a token subscribe, publish and read history and presence"`
}

// validate checks ns; key names its place in the config.
func (ns *Namespace) validate(key string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", key, field, fmt.Sprintf(format, args...)))
	}
	switch ns.Publish {
	case PublishSubscribers, PublishClients, PublishAPI:
	default:
		bad("publish", `want "subscribers", "clients" or "api", got %q`, ns.Publish)
	}
	if ns.HistorySize < 0 {
		bad("history_size", "want 0 or more, got %d", ns.HistorySize)
	}
	if ns.HistoryTTL <= 0 {
		bad("history_ttl", `want a positive duration like "10m", got %s`, ns.HistoryTTL)
	}
	return errs
}

// namespaces resolves a channel's namespace.
type namespaces struct {
	def    Namespace
	byName map[string]*Namespace
}

func newNamespaces(cfg *Config) namespaces {
	n := namespaces{def: cfg.defaultNamespace(), byName: make(map[string]*Namespace, len(cfg.Namespaces))}
	for i := range cfg.Namespaces {
		n.byName[cfg.Namespaces[i].Name] = &cfg.Namespaces[i]
	}
	return n
}

// errNoNamespace is the cause of a not_found reply.
var errNoNamespace = errors.New("no such namespace")

// of returns channel's namespace: the part before the first ":", or the
// default one for a name without ":".
func (n *namespaces) of(channel string) (*Namespace, error) {
	name, _, ok := strings.Cut(channel, ":")
	if !ok {
		return &n.def, nil
	}
	if ns := n.byName[name]; ns != nil {
		return ns, nil
	}
	return nil, fmt.Errorf("%w %q", errNoNamespace, name)
}

// limits returns channel's history limits, for the history store.
func (n *namespaces) limits(channel string) history.Limits {
	ns, err := n.of(channel)
	if err != nil {
		return history.Limits{} // nobody can publish there: keep nothing
	}
	return history.Limits{Size: ns.HistorySize, TTL: ns.HistoryTTL}
}

// NewNamespace returns a namespace called name with the options of the
// channels without ":", as a [[hub.namespaces]] table that sets only its
// name gets them.
func (c *Config) NewNamespace(name string) Namespace {
	ns := c.defaultNamespace()
	ns.Name = name
	return ns
}

// defaultNamespace is the namespace of channels without ":".
func (c *Config) defaultNamespace() Namespace {
	return Namespace{
		Name:           "",
		Publish:        c.Publish,
		Presence:       c.Presence,
		JoinLeave:      c.JoinLeave,
		HistorySize:    c.HistorySize,
		HistoryTTL:     c.HistoryTTL,
		AllowAnonymous: c.AllowAnonymous,
	}
}

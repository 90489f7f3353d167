package auth

import (
	"fmt"
	"strings"

	"github.com/netkit/netkit/internal/protocol"
)

// Allows reports whether the "channels" claim lets c's holder subscribe and
// publish to channel.
//
// Without the claim (Channels nil) every channel is allowed; with
// "channels":[] none is. Otherwise channel must match at least one pattern.
// A pattern matches a name when they are equal byte for byte (case
// matters), except that each '*' in the pattern stands for any run of zero
// or more bytes, ':' '#' and ',' included: "chat:*" matches "chat:" and
// "chat:a:b", "*" matches every name, "a*z" matches "az" and "a:z". There is
// no other special character and no escape.
//
// Allows does not look at private channels: the hub checks AllowsPrivate
// too.
func (c Claims) Allows(channel string) bool {
	if c.Channels == nil {
		return true
	}
	for _, p := range c.Channels {
		if Match(p, channel) {
			return true
		}
	}
	return false
}

// Match reports whether name matches the glob pattern, in which '*' stands
// for any run of zero or more bytes and every other byte for itself (see
// Claims.Allows). It takes time proportional to len(pattern)*len(name) at
// worst.
func Match(pattern, name string) bool {
	// Greedy match with one backtrack point: the last '*' seen and where in
	// name it started matching. Later stars only ever extend it.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			mark++
			p, n = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// CheckPattern returns an error if p cannot be a channel pattern: 1 to
// protocol.MaxChannelLen bytes of the channel name bytes, ',' and '*'.
func CheckPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty channel pattern")
	}
	if len(p) > protocol.MaxChannelLen {
		return fmt.Errorf("channel pattern of %d bytes, want at most %d", len(p), protocol.MaxChannelLen)
	}
	// Replacing every '*' and ',' by a byte a name may hold leaves a valid
	// name exactly when the pattern is valid.
	if !protocol.ValidChannel(strings.Map(func(r rune) rune {
		if r == '*' || r == ',' {
			return 'x'
		}
		return r
	}, p)) {
		return fmt.Errorf("channel pattern %q: allowed are A-Z a-z 0-9 _ . : @ # / - , and *", truncate(p))
	}
	return nil
}

// PrivateUsers returns the users a private channel belongs to: a channel
// whose name holds '#' is private to the comma-separated user ids after the
// LAST '#' ("dm#alice,bob": alice and bob; "a#b#carol": carol). Empty
// entries are skipped, so "room#" is private to nobody. For a name without
// '#' it returns nil, false.
func PrivateUsers(channel string) (users []string, private bool) {
	i := strings.LastIndexByte(channel, '#')
	if i < 0 {
		return nil, false
	}
	for u := range strings.SplitSeq(channel[i+1:], ",") {
		if u != "" {
			users = append(users, u)
		}
	}
	return users, true
}

// AllowsPrivate reports whether user may subscribe and publish to channel
// as far as private channels go: always for a name without '#', otherwise
// only when user is one of PrivateUsers(channel). An anonymous user ("") is
// never one of them.
func AllowsPrivate(user, channel string) bool {
	i := strings.LastIndexByte(channel, '#')
	if i < 0 {
		return true
	}
	if user == "" {
		return false
	}
	for u := range strings.SplitSeq(channel[i+1:], ",") {
		if u == user {
			return true
		}
	}
	return false
}

// truncate shortens untrusted text quoted back in error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrOriginRefused is wrapped by every *OriginError.
var ErrOriginRefused = errors.New("auth: origin refused")

// OriginError is a refused Origin. Its message is the body of the hub's 403:
// it names the setting to change.
type OriginError struct {
	Origin string // the Origin header as sent (shortened if long)
	Reason string // why, for the log
}

// Error returns the refusal with the setting to change.
func (e *OriginError) Error() string {
	return fmt.Sprintf("origin %q refused: %s; to accept it, add it (or a glob pattern such as \"https://*.example.com\") to hub.allowed_origins",
		e.Origin, e.Reason)
}

// Unwrap returns ErrOriginRefused.
func (e *OriginError) Unwrap() error { return ErrOriginRefused }

// OriginChecker decides which browser pages may open a WebSocket to the hub
// (against cross-site WebSocket hijacking). It is safe for concurrent use.
type OriginChecker struct {
	patterns []string // lower case
}

// NewOriginChecker returns a checker that accepts, besides requests
// without an Origin and the hub's own origin, the origins matching one of
// allowed (hub.allowed_origins). A pattern is an origin,
// "scheme://host[:port]" with scheme http or https, in which '*' stands for
// any run of bytes (as in Match), compared without regard to case:
// "http://localhost:*", "https://*.example.com", "https://app.example.com".
// A pattern without a port matches only the scheme's default port:
// "http://localhost:*" does not match "http://localhost". Two special
// patterns: "null" accepts the Origin "null" (sandboxed iframes, file://
// pages) and "*" accepts every origin, which turns the check off.
func NewOriginChecker(allowed []string) (*OriginChecker, error) {
	c := &OriginChecker{}
	var errs []error
	for _, p := range allowed {
		if err := checkOriginPattern(p); err != nil {
			errs = append(errs, fmt.Errorf("auth: hub.allowed_origins: %q: %w", truncate(p), err))
			continue
		}
		c.patterns = append(c.patterns, lowerASCII(p))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func checkOriginPattern(p string) error {
	if p == "*" || p == "null" {
		return nil
	}
	scheme, rest, ok := strings.Cut(lowerASCII(p), "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return errors.New(`want "http://HOST[:PORT]" or "https://HOST[:PORT]", with * as wildcard`)
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@\\ ") {
		return errors.New("want only a scheme, a host and a port: no path, query, user or spaces")
	}
	return nil
}

// Check returns nil if the upgrade request r may proceed, else an
// *OriginError. It accepts:
//   - a request without an Origin header (not a browser);
//   - the hub's own origin: the Origin's scheme is https when r came over
//     TLS and http otherwise, and its host and port equal r.Host's (default
//     ports filled in, host compared without case);
//   - an Origin matching one of the allowed patterns.
//
// A malformed Origin, or more than one, is refused. Behind a proxy that
// ends TLS, the hub sees http requests from https pages: list the public
// origin in hub.allowed_origins.
func (c *OriginChecker) Check(r *http.Request) error {
	values := r.Header.Values("Origin")
	switch len(values) {
	case 0:
		return nil
	case 1:
	default:
		return &OriginError{Origin: truncate(strings.Join(values, ", ")), Reason: "more than one Origin header"}
	}
	origin, err := ParseOrigin(values[0])
	if err != nil {
		return &OriginError{Origin: truncate(values[0]), Reason: err.Error()}
	}
	if origin == ownOrigin(r) {
		return nil
	}
	for _, p := range c.patterns {
		if p == "*" || Match(p, origin) {
			return nil
		}
	}
	return &OriginError{Origin: truncate(values[0]), Reason: "not the hub's own origin " + ownOrigin(r) + " and not in hub.allowed_origins"}
}

// ParseOrigin returns the Origin header value s in canonical form:
// "scheme://host[:port]" in lower case, without the scheme's default port,
// or "null". It refuses anything else: another scheme, a path, a query,
// a fragment, user info, an empty host or a bad port.
func ParseOrigin(s string) (string, error) {
	if s == "null" {
		return s, nil
	}
	if len(s) > 2048 {
		return "", fmt.Errorf("malformed Origin: %d bytes", len(s))
	}
	// Browsers send hosts in ASCII (punycode).
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "", errors.New("malformed Origin: want printable ASCII")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("malformed Origin")
	}
	scheme := lowerASCII(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", errors.New("malformed Origin: want scheme http or https")
	case u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("malformed Origin: want only scheme://host[:port]")
	case u.Hostname() == "" || strings.ContainsAny(u.Host, " *%"):
		return "", errors.New("malformed Origin: bad host")
	}
	return scheme + "://" + hostPort(scheme, u.Host), nil
}

// ownOrigin returns the canonical origin of the hub as r reached it.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + hostPort(scheme, r.Host)
}

// hostPort returns host (a URL's host[:port]) in lower case without the
// scheme's default port.
func hostPort(scheme, host string) string {
	u := url.URL{Host: lowerASCII(host)}
	h, port := u.Hostname(), u.Port()
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if port == "" || (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return h
	}
	return h + ":" + port
}

// lowerASCII returns s with A-Z in lower case and every other byte as it
// is (unlike strings.ToLower, which rewrites invalid UTF-8).
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

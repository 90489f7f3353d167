// Package auth holds the hub's building blocks for deciding who may connect
// and what they may do: JWT verification and minting (Verifier, Sign),
// channel permissions (Claims.Allows, PrivateUsers), the browser Origin check
// (OriginChecker) and rate limits (CommandLimiter, ConnLimiter).
//
// Nothing here touches a socket or the hub's state; the hub calls these at
// the upgrade and on each command.
package auth

import (
	"crypto/elliptic"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/netkit/netkit/internal/protocol"
)

// Errors of Verify and TokenFromRequest; callers branch on them with
// errors.Is. The hub answers each with 401 before the upgrade.
var (
	// ErrMissing: no token was given.
	ErrMissing = errors.New("auth: missing token")
	// ErrExpired: the token's signature is good but its exp has passed
	// (by more than Leeway).
	ErrExpired = errors.New("auth: token expired")
	// ErrInvalid: anything else wrong with the token: malformed, too long,
	// bad signature, an algorithm other than the configured one ("none"
	// included), not yet valid (nbf), or claims the hub cannot use.
	ErrInvalid = errors.New("auth: invalid token")
)

// MaxTokenLen is the longest token Verify reads, in bytes. Longer ones are
// ErrInvalid before any decoding.
const MaxTokenLen = 16 << 10

// Leeway is the clock skew allowed between the token's issuer and the hub:
// a token verifies until Leeway after its exp, and from Leeway before its
// nbf.
const Leeway = 5 * time.Second

// MaxChannelPatterns is the most entries a "channels" claim may have.
const MaxChannelPatterns = 1000

// Claims is what a verified token says about its holder.
type Claims struct {
	// User is the token's "sub": the user id, 1 to protocol.MaxUserLen
	// bytes. Required.
	User string
	// Channels are the patterns of the "channels" claim (see Allows). nil
	// (claim absent or null) allows every channel; an empty, non-nil slice
	// (the claim is []) allows none.
	Channels []string
	// Expires is the token's "exp", in UTC; the zero time if it has none.
	// The hub treats the token as valid until Expires plus Leeway (see
	// Deadline).
	Expires time.Time
}

// Deadline returns when a connection holding c should be told
// token_expired: Expires plus Leeway, or the zero time if the token does not
// expire.
func (c Claims) Deadline() time.Time {
	if c.Expires.IsZero() {
		return time.Time{}
	}
	return c.Expires.Add(Leeway)
}

// Validate returns an error if c cannot be a token's claims: User must be
// 1 to protocol.MaxUserLen bytes, Channels at most MaxChannelPatterns
// patterns that pass CheckPattern. Sign and Verify call it.
func (c Claims) Validate() error {
	if e := protocol.CheckUser(c.User); e != nil {
		return fmt.Errorf("sub: %s", e.Message)
	}
	if len(c.Channels) > MaxChannelPatterns {
		return fmt.Errorf("channels: %d patterns, want at most %d", len(c.Channels), MaxChannelPatterns)
	}
	for i, p := range c.Channels {
		if err := CheckPattern(p); err != nil {
			return fmt.Errorf("channels[%d]: %w", i, err)
		}
	}
	return nil
}

// wireClaims is the JSON payload of a netkit token.
type wireClaims struct {
	jwt.RegisteredClaims
	// A pointer tells an absent claim (all channels) from [] (none).
	Channels *[]string `json:"channels,omitempty"`
}

// VerifierConfig says which tokens a Verifier accepts. Exactly one of
// Secret and PublicKeyFile must be set.
type VerifierConfig struct {
	// Secret is hub.jwt_secret: the shared secret of HS256 tokens.
	Secret string
	// PublicKeyFile is hub.jwt_public_key: the path of a PEM file holding
	// an RSA public key (RS256 tokens, at least 2048 bits) or an ECDSA
	// P-256 public key (ES256 tokens). PEM blocks "PUBLIC KEY" (PKIX),
	// "RSA PUBLIC KEY" (PKCS #1) and "CERTIFICATE" are read.
	PublicKeyFile string
}

// Verifier checks tokens signed with one configured key. It is safe for
// concurrent use.
type Verifier struct {
	key    any    // []byte, *rsa.PublicKey or *ecdsa.PublicKey
	alg    string // the one algorithm accepted
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for cfg. Errors name the setting at fault.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{}
	switch {
	case cfg.Secret != "" && cfg.PublicKeyFile != "":
		return nil, errors.New("auth: hub.jwt_secret and hub.jwt_public_key are both set: set one")
	case cfg.Secret != "":
		v.key, v.alg = []byte(cfg.Secret), jwt.SigningMethodHS256.Alg()
	case cfg.PublicKeyFile != "":
		data, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: hub.jwt_public_key: %w", err)
		}
		v.key, v.alg, err = parsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("auth: hub.jwt_public_key %s: %w", cfg.PublicKeyFile, err)
		}
	default:
		return nil, errors.New("auth: no key: set hub.jwt_secret (HS256) or hub.jwt_public_key (RS256, ES256)")
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{v.alg}),
		// Canonical base64 only, so one token has one spelling.
		jwt.WithStrictDecoding(),
		// Verify checks exp and nbf against its now argument.
		jwt.WithoutClaimsValidation(),
	)
	return v, nil
}

// parsePublicKey reads an RSA or ECDSA P-256 public key from PEM and
// returns it with the one algorithm it verifies.
func parsePublicKey(data []byte) (key any, alg string, err error) {
	if b, _ := pem.Decode(data); b != nil && strings.Contains(b.Type, "PRIVATE") {
		return nil, "", fmt.Errorf("holds a %s: give the public key (openssl pkey -in KEY -pubout)", b.Type)
	}
	if k, err := jwt.ParseRSAPublicKeyFromPEM(data); err == nil {
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("RSA key of %d bits, want at least 2048", k.N.BitLen())
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	}
	k, err := jwt.ParseECPublicKeyFromPEM(data)
	if err != nil {
		return nil, "", errors.New("want a PEM RSA or ECDSA P-256 public key")
	}
	if k.Curve != elliptic.P256() {
		return nil, "", fmt.Errorf("ECDSA key on %s, want P-256 (ES256)", k.Curve.Params().Name)
	}
	return k, jwt.SigningMethodES256.Alg(), nil
}

// Algorithm returns the one JWT algorithm v accepts: HS256, RS256 or ES256.
func (v *Verifier) Algorithm() string { return v.alg }

// Verify checks token's signature with the configured key and algorithm and
// its exp and nbf against now (with Leeway), and returns its claims. Errors
// wrap ErrMissing (token is ""), ErrExpired or ErrInvalid; their text is fit
// to show the client and never holds the key.
func (v *Verifier) Verify(token string, now time.Time) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissing
	}
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: %d bytes, want at most %d", ErrInvalid, len(token), MaxTokenLen)
	}
	var wc wireClaims
	if t, err := v.parser.ParseWithClaims(token, &wc, v.keyFunc); err != nil {
		if alg := headerAlg(t); alg != "" && alg != v.alg {
			return Claims{}, fmt.Errorf("%w: algorithm %q, want %s", ErrInvalid, truncate(alg), v.alg)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := Claims{User: wc.Subject}
	if wc.Channels != nil {
		c.Channels = *wc.Channels
		if c.Channels == nil {
			c.Channels = []string{} // "channels":[] allows nothing
		}
	}
	if wc.ExpiresAt != nil {
		c.Expires = wc.ExpiresAt.UTC()
		if now.After(c.Deadline()) {
			return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.Expires.UTC().Format(time.RFC3339))
		}
	}
	if wc.NotBefore != nil && now.Add(Leeway).Before(wc.NotBefore.Time) {
		return Claims{}, fmt.Errorf("%w: not valid before %s", ErrInvalid, wc.NotBefore.UTC().Format(time.RFC3339))
	}
	if err := c.Validate(); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

// headerAlg returns the "alg" of a token the parser refused, or "" if it
// got no header that far.
func headerAlg(t *jwt.Token) string {
	if t == nil {
		return ""
	}
	alg, _ := t.Header["alg"].(string)
	return alg
}

// keyFunc hands the parser the configured key; WithValidMethods has
// already refused any other algorithm, so an HS256 token is never checked
// against an RSA key's bytes.
func (v *Verifier) keyFunc(*jwt.Token) (any, error) { return v.key, nil }

// Sign returns an HS256 token for c signed with secret, as "netkit token"
// prints it. With ttl > 0 the token expires ttl from now; with ttl 0 its exp
// is c.Expires, or none if that is zero. c.Channels nil writes no
// "channels" claim (all channels); empty, non-nil writes [] (none).
func Sign(secret []byte, c Claims, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("auth: sign: empty secret")
	}
	if ttl < 0 {
		return "", fmt.Errorf("auth: sign: ttl %v, want 0 (use Expires) or more", ttl)
	}
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	now := time.Now()
	wc := wireClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:  c.User,
		IssuedAt: jwt.NewNumericDate(now),
	}}
	switch {
	case ttl > 0:
		wc.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	case !c.Expires.IsZero():
		wc.ExpiresAt = jwt.NewNumericDate(c.Expires)
	}
	if c.Channels != nil {
		wc.Channels = &c.Channels
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, wc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// TokenFromRequest returns the token of an upgrade request: the "token"
// query parameter or the "Authorization: Bearer" header. It returns "" and
// no error when there is neither (anonymous), and ErrInvalid when both are
// given and differ, or either is given twice.
func TokenFromRequest(r *http.Request) (string, error) {
	var query, header string
	if vs := r.URL.Query()["token"]; len(vs) > 1 {
		return "", fmt.Errorf("%w: more than one token query parameter", ErrInvalid)
	} else if len(vs) == 1 {
		query = vs[0]
	}
	if hs := r.Header.Values("Authorization"); len(hs) > 1 {
		return "", fmt.Errorf("%w: more than one Authorization header", ErrInvalid)
	} else if len(hs) == 1 {
		scheme, rest, _ := strings.Cut(hs[0], " ")
		if strings.EqualFold(scheme, "Bearer") {
			header = strings.TrimSpace(rest)
		}
	}
	if query != "" && header != "" && query != header {
		return "", fmt.Errorf("%w: different tokens in ?token= and Authorization", ErrInvalid)
	}
	if header != "" {
		return header, nil
	}
	return query, nil
}

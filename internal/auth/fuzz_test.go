package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify checks that no input panics Verify, that every error is one of
// the three sentinels, and that an input verifies only if it carries a real
// HMAC-SHA256 of its header and payload under the secret, with alg HS256.
func FuzzVerify(f *testing.F) {
	v := newVerifier(f, VerifierConfig{Secret: testSecret})
	now := t0
	seed := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	// Good tokens, to mutate from.
	seed(jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "alice"})
	seed(jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "bob", "exp": now.Add(time.Hour).Unix(), "channels": []string{"room", "chat:*"}})
	// Bad ones: another key, another algorithm, none, expired, odd claims.
	seed(jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"sub": "alice"})
	seed(jwt.SigningMethodHS512, []byte(testSecret), jwt.MapClaims{"sub": "alice"})
	seed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice"})
	seed(jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Hour).Unix()})
	seed(jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": 1, "channels": "x", "nbf": "y"})
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.bnVsbA.x")

	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrMissing) {
				t.Fatalf("Verify(%q): error %v is none of ErrInvalid, ErrExpired, ErrMissing", token, err)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("Verify(%q) accepted a token of %d parts", token, len(parts))
		}
		var header struct{ Alg string }
		hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
		sig, err2 := base64.RawURLEncoding.DecodeString(parts[2])
		if err1 != nil || err2 != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "HS256" {
			t.Fatalf("Verify(%q) accepted a token whose header is not HS256", token)
		}
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("Verify(%q) accepted a token without the key's signature", token)
		}
		if c.Validate() != nil || (!c.Expires.IsZero() && now.After(c.Deadline())) {
			t.Fatalf("Verify(%q) = %+v: claims it should have refused", token, c)
		}
	})
}

// FuzzMatch checks Match against a regular expression built from the
// pattern, and the private channel helpers against each other.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"chat:*", "chat:general"},
		{"*", ""},
		{"a*b*c", "axxbyyc"},
		{"*aaa*b", "aaaaaaaaaaaaaaaaaaaaa"},
		{"dm#*", "dm#alice,bob"},
		{"**x", "x"},
		{"room", "room"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 256 {
			return // keep the reference regexp small
		}
		// regexp works on UTF-8 runes, Match on bytes: they agree on valid
		// UTF-8, and regexp refuses the rest.
		if utf8.ValidString(pattern) && utf8.ValidString(name) {
			pieces := strings.Split(pattern, "*")
			for i, p := range pieces {
				pieces[i] = regexp.QuoteMeta(p)
			}
			re := regexp.MustCompile(`^(?s:` + strings.Join(pieces, ".*") + `)$`)
			if want := re.MatchString(name); Match(pattern, name) != want {
				t.Fatalf("Match(%q, %q) = %v, want %v", pattern, name, !want, want)
			}
		}
		if !strings.Contains(name, "*") && !Match(name, name) {
			t.Fatalf("Match(%q, itself) = false", name)
		}
		users, private := PrivateUsers(name)
		if private != strings.Contains(name, "#") {
			t.Fatalf("PrivateUsers(%q): private = %v", name, private)
		}
		for _, u := range users {
			if u == "" || strings.ContainsAny(u, ",#") || !AllowsPrivate(u, name) {
				t.Fatalf("PrivateUsers(%q) = %q: %q is not allowed", name, users, u)
			}
		}
		if AllowsPrivate(pattern, name) != (!private || slices.Contains(users, pattern) && pattern != "") {
			t.Fatalf("AllowsPrivate(%q, %q) disagrees with PrivateUsers = %q", pattern, name, users)
		}
	})
}

// FuzzOrigin checks that ParseOrigin never panics, that what it accepts is
// in canonical form (parsing it again gives it back), and that Check never
// panics on any Origin and Host.
func FuzzOrigin(f *testing.F) {
	for _, s := range [][2]string{
		{"http://localhost:3000", "localhost:9999"},
		{"https://app.example.com", "hub.example.com"},
		{"HTTPS://App.Example.com:443", "app.example.com"},
		{"http://[::1]:80", "[::1]"},
		{"null", "hub"},
		{"http://x@y/z?q#f", "y"},
		{"http://localhost:1.evil.com", "localhost:1"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	c, err := NewOriginChecker([]string{"http://localhost:*", "https://*.example.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, origin, host string) {
		if o, err := ParseOrigin(origin); err == nil {
			again, err := ParseOrigin(o)
			if err != nil || again != o {
				t.Fatalf("ParseOrigin(%q) = %q, which parses to %q, %v", origin, o, again, err)
			}
			if o != "null" && strings.Count(o, "/") != 2 {
				t.Fatalf("ParseOrigin(%q) = %q: more than scheme://host", origin, o)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/ws", nil)
		r.Host = host
		r.Header.Set("Origin", origin)
		if err := c.Check(r); err != nil && !errors.Is(err, ErrOriginRefused) {
			t.Fatalf("Check: %v does not wrap ErrOriginRefused", err)
		}
	})
}

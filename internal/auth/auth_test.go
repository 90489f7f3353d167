package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "test-secret-of-at-least-32-bytes!"

// t0 is the "now" of the tests: tokens carry exp and nbf around it.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testKeys are generated once: RSA generation is slow under -race.
var testKeys = sync.OnceValue(func() (k struct {
	rsa, rsaSmall *rsa.PrivateKey
	ec, ec384     *ecdsa.PrivateKey
}) {
	var err error
	must := func() {
		if err != nil {
			panic(err)
		}
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must()
	k.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024)
	must()
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must()
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must()
	return k
})

// writePEM writes der as a PEM block of type typ to a file in dir.
func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// publicPEM writes pub as a PKIX "PUBLIC KEY" file.
func publicPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "PUBLIC KEY", der)
}

// sign returns a token with claims signed by method and key.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func newVerifier(t testing.TB, cfg VerifierConfig) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerify(t *testing.T) {
	keys := testKeys()
	hs := newVerifier(t, VerifierConfig{Secret: testSecret})
	rsaPath := publicPEM(t, &keys.rsa.PublicKey)
	rs := newVerifier(t, VerifierConfig{PublicKeyFile: rsaPath})
	es := newVerifier(t, VerifierConfig{PublicKeyFile: publicPEM(t, &keys.ec.PublicKey)})
	rsaPEM, err := os.ReadFile(rsaPath)
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	alice := jwt.MapClaims{"sub": "alice", "exp": exp.Unix()}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, alice).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), alice)

	tests := []struct {
		name    string
		v       *Verifier
		token   string
		want    Claims
		wantErr error
	}{
		{"HS256", hs, good, Claims{User: "alice", Expires: exp}, nil},
		{"RS256", rs, sign(t, jwt.SigningMethodRS256, keys.rsa, alice), Claims{User: "alice", Expires: exp}, nil},
		{"ES256", es, sign(t, jwt.SigningMethodES256, keys.ec, alice), Claims{User: "alice", Expires: exp}, nil},
		{"no exp", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "bob"}), Claims{User: "bob"}, nil},
		{"channels", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "bob", "channels": []string{"room", "chat:*", "dm#*"}}),
			Claims{User: "bob", Channels: []string{"room", "chat:*", "dm#*"}}, nil},
		{"channels empty", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "bob", "channels": []string{}}),
			Claims{User: "bob", Channels: []string{}}, nil},
		{"channels null", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "bob", "channels": nil}), Claims{User: "bob"}, nil},
		{"expired within leeway", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "exp": t0.Add(-Leeway).Unix()}),
			Claims{User: "a", Expires: t0.Add(-Leeway)}, nil},
		{"nbf within leeway", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "nbf": t0.Add(Leeway).Unix()}), Claims{User: "a"}, nil},
		{"unknown claims ignored", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "iss": "x", "aud": "y", "info": map[string]int{"n": 1}}), Claims{User: "a"}, nil},

		{"missing", hs, "", Claims{}, ErrMissing},
		{"expired", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "exp": t0.Add(-Leeway - time.Second).Unix()}), Claims{}, ErrExpired},
		{"bad signature", hs, sign(t, jwt.SigningMethodHS256, []byte("another secret"), alice), Claims{}, ErrInvalid},
		{"signature cut", hs, good[:len(good)-2], Claims{}, ErrInvalid},
		{"payload changed", hs, tamper(good), Claims{}, ErrInvalid},
		{"alg none", hs, none, Claims{}, ErrInvalid},
		{"alg none to RS256", rs, none, Claims{}, ErrInvalid},
		{"HS256 signed with the RSA public key", rs, sign(t, jwt.SigningMethodHS256, rsaPEM, alice), Claims{}, ErrInvalid},
		{"HS512 to HS256", hs, sign(t, jwt.SigningMethodHS512, []byte(testSecret), alice), Claims{}, ErrInvalid},
		{"RS256 to HS256", hs, sign(t, jwt.SigningMethodRS256, keys.rsa, alice), Claims{}, ErrInvalid},
		{"PS256 to RS256", rs, sign(t, jwt.SigningMethodPS256, keys.rsa, alice), Claims{}, ErrInvalid},
		{"RS512 to RS256", rs, sign(t, jwt.SigningMethodRS512, keys.rsa, alice), Claims{}, ErrInvalid},
		{"ES256 to RS256", rs, sign(t, jwt.SigningMethodES256, keys.ec, alice), Claims{}, ErrInvalid},
		{"ES256 other key", es, sign(t, jwt.SigningMethodES256, mustEC(t), alice), Claims{}, ErrInvalid},
		{"not before", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "nbf": t0.Add(time.Minute).Unix()}), Claims{}, ErrInvalid},
		{"no sub", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"exp": exp.Unix()}), Claims{}, ErrInvalid},
		{"sub too long", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": strings.Repeat("a", 256)}), Claims{}, ErrInvalid},
		{"sub a number", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": 42}), Claims{}, ErrInvalid},
		{"exp a string", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "exp": "tomorrow"}), Claims{}, ErrInvalid},
		{"channels a string", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "channels": "room"}), Claims{}, ErrInvalid},
		{"channel pattern with a space", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "channels": []string{"a b"}}), Claims{}, ErrInvalid},
		{"empty channel pattern", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "channels": []string{""}}), Claims{}, ErrInvalid},
		{"too many channel patterns", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "channels": make([]string, MaxChannelPatterns+1)}), Claims{}, ErrInvalid},
		{"too long", hs, strings.Repeat("a", MaxTokenLen+1), Claims{}, ErrInvalid},
		{"garbage", hs, "not a token", Claims{}, ErrInvalid},
		{"three empty parts", hs, "..", Claims{}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Verify(tc.token, t0)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Verify: error %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Verify = %#v, want %#v", got, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// tamper changes the payload of a token and keeps its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload := []byte(parts[1])
	payload[len(payload)/2] ^= 1
	parts[1] = string(payload)
	return strings.Join(parts, ".")
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewVerifierErrors(t *testing.T) {
	keys := testKeys()
	ecDER, err := x509.MarshalECPrivateKey(keys.ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  VerifierConfig
		want string // in the error
	}{
		{"no key", VerifierConfig{}, "set hub.jwt_secret (HS256) or hub.jwt_public_key"},
		{"both", VerifierConfig{Secret: "s", PublicKeyFile: publicPEM(t, &keys.ec.PublicKey)}, "both set"},
		{"no file", VerifierConfig{PublicKeyFile: filepath.Join(t.TempDir(), "nope.pem")}, "hub.jwt_public_key: open"},
		{"not PEM", VerifierConfig{PublicKeyFile: writeFile(t, "hello")}, "want a PEM RSA or ECDSA P-256 public key"},
		{"private key", VerifierConfig{PublicKeyFile: writePEM(t, "EC PRIVATE KEY", ecDER)}, "give the public key"},
		{"P-384", VerifierConfig{PublicKeyFile: publicPEM(t, &keys.ec384.PublicKey)}, "want P-256"},
		{"RSA 1024", VerifierConfig{PublicKeyFile: publicPEM(t, &keys.rsaSmall.PublicKey)}, "RSA key of 1024 bits, want at least 2048"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier = %v, %v; want an error with %q", v, err, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifierAlgorithm(t *testing.T) {
	keys := testKeys()
	rsaDER := x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey)
	tests := []struct {
		name string
		cfg  VerifierConfig
		want string
	}{
		{"secret", VerifierConfig{Secret: "s"}, "HS256"},
		{"RSA PKIX", VerifierConfig{PublicKeyFile: publicPEM(t, &keys.rsa.PublicKey)}, "RS256"},
		{"RSA PKCS1", VerifierConfig{PublicKeyFile: writePEM(t, "RSA PUBLIC KEY", rsaDER)}, "RS256"},
		{"ECDSA P-256", VerifierConfig{PublicKeyFile: publicPEM(t, &keys.ec.PublicKey)}, "ES256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := newVerifier(t, tc.cfg).Algorithm(); got != tc.want {
				t.Fatalf("Algorithm() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	v := newVerifier(t, VerifierConfig{Secret: testSecret})
	tests := []struct {
		name   string
		claims Claims
		ttl    time.Duration
	}{
		{"user only", Claims{User: "alice"}, 0},
		{"ttl", Claims{User: "alice"}, time.Hour},
		{"expires", Claims{User: "alice", Expires: time.Now().Add(time.Hour).Truncate(time.Second).UTC()}, 0},
		{"channels", Claims{User: "bob", Channels: []string{"room", "chat:*", "dm#*"}}, time.Minute},
		{"no channels", Claims{User: "bob", Channels: []string{}}, 0},
		{"user with spaces", Claims{User: "Bob Smith ✓"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			token, err := Sign([]byte(testSecret), tc.claims, tc.ttl)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			got, err := v.Verify(token, time.Now())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tc.claims
			if tc.ttl > 0 {
				// exp is whole seconds: between before+ttl and now+ttl.
				if got.Expires.Before(before.Add(tc.ttl)) || got.Expires.After(time.Now().Add(tc.ttl)) {
					t.Fatalf("Expires = %v, want about %v from now", got.Expires, tc.ttl)
				}
				want.Expires = got.Expires
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Verify(Sign(c)) = %#v, want %#v", got, want)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		claims Claims
		ttl    time.Duration
		want   string
	}{
		{"no secret", "", Claims{User: "a"}, 0, "empty secret"},
		{"no user", "s", Claims{}, 0, "sub: missing user id"},
		{"bad pattern", "s", Claims{User: "a", Channels: []string{"a b"}}, 0, "channels[0]"},
		{"negative ttl", "s", Claims{User: "a"}, -time.Second, "ttl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sign([]byte(tc.secret), tc.claims, tc.ttl)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "auth: sign: ") {
				t.Fatalf("Sign: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	if d := (Claims{User: "a"}).Deadline(); !d.IsZero() {
		t.Fatalf("Deadline without exp = %v, want zero", d)
	}
	if d := (Claims{User: "a", Expires: t0}).Deadline(); !d.Equal(t0.Add(Leeway)) {
		t.Fatalf("Deadline = %v, want %v", d, t0.Add(Leeway))
	}
}

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		auth    []string
		want    string
		wantErr error
	}{
		{"none", "/ws", nil, "", nil},
		{"query", "/ws?token=abc", nil, "abc", nil},
		{"header", "/ws", []string{"Bearer abc"}, "abc", nil},
		{"header lower case scheme", "/ws", []string{"bearer abc"}, "abc", nil},
		{"both equal", "/ws?token=abc", []string{"Bearer abc"}, "abc", nil},
		{"basic auth ignored", "/ws?token=abc", []string{"Basic dXNlcjpwYXNz"}, "abc", nil},
		{"empty query", "/ws?token=", nil, "", nil},
		{"both differ", "/ws?token=abc", []string{"Bearer xyz"}, "", ErrInvalid},
		{"two queries", "/ws?token=a&token=b", nil, "", ErrInvalid},
		{"two headers", "/ws", []string{"Bearer a", "Bearer b"}, "", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			got, err := TokenFromRequest(r)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("TokenFromRequest = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// BenchmarkVerify measures verifying one token as a connect does: HS256
// with and without a channels claim, and RS256 and ES256 for comparison.
func BenchmarkVerify(b *testing.B) {
	keys := testKeys()
	now := time.Now()
	claims := jwt.MapClaims{"sub": "user-12345", "exp": now.Add(time.Hour).Unix()}
	withChannels := jwt.MapClaims{"sub": "user-12345", "exp": now.Add(time.Hour).Unix(),
		"channels": []string{"room", "chat:*", "dm#*", "news:sport", "news:weather"}}
	hs := newVerifier(b, VerifierConfig{Secret: testSecret})
	for _, bc := range []struct {
		name   string
		v      *Verifier
		method jwt.SigningMethod
		key    any
		claims jwt.MapClaims
	}{
		{"HS256", hs, jwt.SigningMethodHS256, []byte(testSecret), claims},
		{"HS256-channels", hs, jwt.SigningMethodHS256, []byte(testSecret), withChannels},
		{"RS256", newVerifier(b, VerifierConfig{PublicKeyFile: benchPEM(b, &keys.rsa.PublicKey)}), jwt.SigningMethodRS256, keys.rsa, claims},
		{"ES256", newVerifier(b, VerifierConfig{PublicKeyFile: benchPEM(b, &keys.ec.PublicKey)}), jwt.SigningMethodES256, keys.ec, claims},
	} {
		token, err := jwt.NewWithClaims(bc.method, bc.claims).SignedString(bc.key)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			done := startCPU(b)
			for b.Loop() {
				if _, err := bc.v.Verify(token, now); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// benchPEM writes pub to a PEM file for a benchmark.
func benchPEM(b *testing.B, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkAllows measures the permission checks of one command.
func BenchmarkAllows(b *testing.B) {
	c := Claims{User: "alice", Channels: []string{"room", "news:*", "chat:*", "dm#*"}}
	b.ReportAllocs()
	done := startCPU(b)
	for b.Loop() {
		if !c.Allows("chat:general") || !AllowsPrivate("alice", "dm#bob,alice") {
			b.Fatal("refused")
		}
	}
	done()
}

// TestVerifyMessages checks the errors a client reads in the 401 body.
func TestVerifyMessages(t *testing.T) {
	v := newVerifier(t, VerifierConfig{Secret: testSecret})
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "a"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, want string
	}{
		{"missing", "", "auth: missing token"},
		{"wrong algorithm", sign(t, jwt.SigningMethodHS512, []byte(testSecret), jwt.MapClaims{"sub": "a"}), `auth: invalid token: algorithm "HS512", want HS256`},
		{"none", none, `auth: invalid token: algorithm "none", want HS256`},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("x"), jwt.MapClaims{"sub": "a"}), "auth: invalid token: token signature is invalid: signature is invalid"},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "a", "exp": t0.Add(-time.Hour).Unix()}), "auth: token expired at 2026-01-02T02:04:05Z"},
		{"no sub", sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{}), "auth: invalid token: sub: missing user id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(tc.token, t0); err == nil || err.Error() != tc.want {
				t.Fatalf("Verify: %v, want %q", err, tc.want)
			}
		})
	}
}

package client

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestTokenExpiry(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	tests := []struct {
		name  string
		token string
		want  int64 // unix seconds; 0: none
	}{
		{"exp", jwt(`{"sub":"alice","exp":1700000000}`), 1700000000},
		{"no exp", jwt(`{"sub":"alice"}`), 0},
		{"not a JWT", "opaque-token", 0},
		{"bad base64", "a.!!!.c", 0},
		{"bad JSON", jwt(`{"exp":`), 0},
		{"absurd exp", jwt(`{"exp":1e300}`), 0},
		{"empty", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tokenExpiry(tc.token)
			if ok != (tc.want != 0) || (ok && got.Unix() != tc.want) {
				t.Fatalf("tokenExpiry = %v, %v; want %d", got, ok, tc.want)
			}
		})
	}
}

func TestRenewalWait(t *testing.T) {
	tests := []struct{ left, want time.Duration }{
		{time.Hour, time.Hour - 30*time.Second},
		{100 * time.Second, 90 * time.Second},
		{0, time.Second},
		{-time.Minute, time.Second},
	}
	for _, tc := range tests {
		if got := renewalWait(tc.left); got != tc.want {
			t.Errorf("renewalWait(%v) = %v, want %v", tc.left, got, tc.want)
		}
	}
}

func TestReconnectDelay(t *testing.T) {
	p := ReconnectPolicy{MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for attempt, full := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		full *= time.Millisecond
		for range 50 {
			if d := p.delay(attempt); d < full/2 || d > full {
				t.Fatalf("delay(%d) = %v, want between %v and %v", attempt, d, full/2, full)
			}
		}
	}
	if d := (ReconnectPolicy{}).delay(100); d > 10*time.Second {
		t.Fatalf("default delay after many attempts = %v, want at most 10s", d)
	}
}

func TestIsFinal(t *testing.T) {
	tests := []struct {
		d    DisconnectError
		want bool
	}{
		{DisconnectError{Code: "token_expired", CloseStatus: 1008}, true},
		{DisconnectError{Code: "policy", CloseStatus: 1008}, true},
		{DisconnectError{Code: "policy", CloseStatus: 1013}, false},
		{DisconnectError{Code: "shutdown", CloseStatus: 1001}, false},
		{DisconnectError{Code: "slow_consumer", CloseStatus: 1008}, false},
		{DisconnectError{CloseStatus: 1006}, false},
	}
	for _, tc := range tests {
		if got := isFinal(&tc.d); got != tc.want {
			t.Errorf("isFinal(%+v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

// FuzzTokenExpiry: the client reads the exp claim of tokens it is given
// without verifying them; no token makes it panic.
func FuzzTokenExpiry(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.sig", // {"exp":1700000000}
		"a.b.c", "..", "", "opaque",
		"x." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1e300}`)) + ".y",  // far future
		"x." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":-5}`)) + ".y",     // negative
		"x." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":"soon"}`)) + ".y", // wrong type
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if exp, ok := tokenExpiry(tok); ok {
			renewalWait(time.Until(exp)) // must not panic either
		}
	})
}

package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/netkit/netkit/client"
	"github.com/netkit/netkit/internal/auth"
	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
)

const hubSecret = "client-test-secret-of-32-bytes-long"

func hubToken(t *testing.T, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign([]byte(hubSecret), auth.Claims{User: user}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAgainstHubWithAuth runs History, Refresh and a refused token against
// a real hub with history and JWT auth.
func TestAgainstHubWithAuth(t *testing.T) {
	h := hubtest.Start(t, func(c *hub.Config) { c.JWTSecret = hubSecret; c.AllowAnonymous = false })
	ctx := testCtx(t)

	if _, err := client.Dial(ctx, h.URL, client.WithToken("not-a-token")); err == nil {
		t.Fatal("Dial with a bad token succeeded")
	} else if de := (*client.DisconnectError)(nil); errors.As(err, &de) && !de.Final {
		t.Fatalf("Dial with a bad token: %v, want a final refusal", err)
	}
	if _, err := client.Dial(ctx, h.URL); err == nil {
		t.Fatal("Dial without a token succeeded on a hub that requires one")
	}

	c := dial(t, h.URL, client.WithToken(hubToken(t, "alice", time.Hour)))
	if c.User() != "alice" {
		t.Fatalf("user = %q, want alice", c.User())
	}
	for i := 1; i <= 5; i++ {
		if _, err := c.Publish(ctx, "room", i); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.History(ctx, "room", client.HistoryOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 2 || string(res.Messages[0].Data) != "4" || string(res.Messages[1].Data) != "5" || res.Offset != 5 {
		t.Fatalf("History limit 2 = %+v, want messages 4 and 5 at offset 5", res)
	}
	after, err := c.History(ctx, "room", client.HistoryOptions{Since: &client.Position{Offset: 3, Epoch: res.Epoch}})
	if err != nil || len(after.Messages) != 2 {
		t.Fatalf("History since 3 = %+v, %v; want messages 4 and 5", after, err)
	}

	if err := c.Refresh(ctx, hubToken(t, "alice", 2*time.Hour)); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	err = c.Refresh(ctx, hubToken(t, "mallory", time.Hour))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "forbidden" {
		t.Fatalf("Refresh for another user = %v, want a forbidden *client.Error", err)
	}
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"testing"
	"time"

	"github.com/netkit/netkit/client"
	"github.com/netkit/netkit/internal/hub"
)

// hubURL is the hub the examples talk to: in a program it would be
// "ws://localhost:9999/ws". TestMain runs one in-process on 127.0.0.1.
var hubURL string

func TestMain(m *testing.M) {
	cfg := hub.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.APIKey = "example-key"
	srv, err := hub.New(cfg, hub.Options{Version: "example"})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Fatal(err)
	}
	hubURL = "ws://" + ln.Addr().String() + cfg.WSPath
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		log.Print(err)
		code = 1
	}
	os.Exit(code)
}

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hubURL) // e.g. "ws://localhost:9999/ws"
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	sub, err := c.Subscribe(ctx, "example")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Publish(ctx, "example", map[string]string{"text": "hello"}); err != nil {
		log.Fatal(err)
	}
	m := <-sub.Messages()
	fmt.Printf("%s at offset %d: %s\n", m.Channel, m.Offset, m.Data)
	// Output: example at offset 1: {"text":"hello"}
}

func ExampleClient_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hubURL,
		client.WithReconnect(client.ReconnectPolicy{MaxDelay: 5 * time.Second, GiveUpAfter: time.Minute}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got := make(chan client.Message)
	_, err = c.Subscribe(ctx, "orders",
		client.OnMessage(func(m client.Message) { got <- m }),
		client.OnSubscribed(func(s client.Subscribed) {
			if s.Resubscribe && !s.Recovered {
				// Messages may have been missed while reconnecting: reload
				// the state from its source of truth.
				fmt.Println("reload needed")
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	c.Publish(ctx, "orders", 1)
	c.Publish(ctx, "orders", 2)
	for range 2 {
		m := <-got
		fmt.Println(m.Offset, string(m.Data))
	}
	// Output:
	// 1 1
	// 2 2
}

func ExampleError() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hubURL)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Publish(ctx, "no spaces allowed", "hi")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("hub said:", e.Code)
	}
	// Output: hub said: bad_request
}

func ExampleClient_Presence() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hubURL)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "lobby"); err != nil {
		log.Fatal(err)
	}
	clients, err := c.Presence(ctx, "lobby")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(clients), clients[0].User == c.User())
	// Output: 1 true
}

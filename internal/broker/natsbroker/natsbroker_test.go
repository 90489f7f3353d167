package natsbroker_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/broker/brokertest"
	"github.com/netkit/netkit/internal/broker/natsbroker"
	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/natstest"
	"github.com/netkit/netkit/internal/testenv"
	"github.com/netkit/netkit/internal/tlsutil"
)

// TestConformance runs the broker suite against a broker on an in-process
// NATS server; each case gets its own server, so streams start empty.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, h broker.Handler, o brokertest.Options) broker.Broker {
		if o.Now != nil {
			t.Skip("JetStream keeps time on the server: no test clock")
		}
		srv := natstest.Start(t)
		cfg := natsbroker.Config{URLs: []string{srv.URL()}, MaxBytes: o.MaxBytes}
		if o.Limits != nil {
			lim := *o.Limits
			cfg.Limits = func(string) history.Limits { return lim }
			cfg.MaxHistorySize, cfg.MaxHistoryTTL = lim.Size, lim.TTL
		}
		return run(t, cfg, h)
	})
}

// run starts a broker and waits until it is ready; it stops it in
// t.Cleanup.
func run(t testing.TB, cfg natsbroker.Config, h broker.Handler) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitReady(t, b)
	return b
}

func waitReady(t testing.TB, b *natsbroker.Broker) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, b.Ready)
}

// TestCredentials connects with a user and password, a token and TLS, as
// hub.nats.user/password, hub.nats.token and hub.nats.tls_ca configure
// it: the right ones get a working broker, wrong ones a broker that is not
// ready and fails calls with unavailable.
func TestCredentials(t *testing.T) {
	ca := testCA(t)
	withTLS := func(o *server.Options) {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.cert}, MinVersion: tls.VersionTLS12}
		o.TLS = true
	}
	withUser := func(o *server.Options) { o.Username, o.Password = "hub", "s3cret" }
	withToken := func(o *server.Options) { o.Authorization = "t0ken" }
	tests := []struct {
		name   string
		server func(*server.Options)
		cfg    natsbroker.Config
		ok     bool
	}{
		{"user and password", withUser, natsbroker.Config{User: "hub", Password: "s3cret"}, true},
		{"wrong password", withUser, natsbroker.Config{User: "hub", Password: "guess"}, false},
		{"token", withToken, natsbroker.Config{Token: "t0ken"}, true},
		{"no credentials", withToken, natsbroker.Config{}, false},
		{"TLS with the CA", withTLS, natsbroker.Config{TLSCA: ca.file}, true},
		{"TLS without the CA", withTLS, natsbroker.Config{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.StartWith(t, tc.server)
			cfg := tc.cfg
			cfg.URLs = []string{srv.URL()}
			if tc.ok {
				b := run(t, cfg, brokertest.NewRecorder())
				if _, err := b.Publish(context.Background(), "c", "u", []byte(`1`)); err != nil {
					t.Fatalf("Publish: %v", err)
				}
				return
			}
			b, err := natsbroker.New(cfg, brokertest.NewRecorder())
			if err != nil {
				t.Fatalf("New: %v (want a broker that keeps trying)", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()
			defer func() { cancel(); <-done }()
			if b.Ready() == nil {
				t.Fatal("Ready = nil with refused credentials")
			}
			_, err = b.Publish(ctx, "c", "u", []byte(`1`))
			if !errors.Is(err, natsbroker.ErrUnavailable) {
				t.Fatalf("Publish = %v, want ErrUnavailable", err)
			}
		})
	}
}

type testCert struct {
	cert tls.Certificate
	file string // the certificate as a PEM file
}

// testCA makes a self-signed CA certificate for 127.0.0.1.
func testCA(t *testing.T) testCert {
	t.Helper()
	cert, err := tlsutil.SelfSigned(tlsutil.Options{CommonName: "natsbroker test", Hosts: []string{"127.0.0.1"}, CA: true})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := tlsutil.PEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return testCert{cert, file}
}

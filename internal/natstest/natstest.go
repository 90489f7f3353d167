// Package natstest runs an in-process NATS server with JetStream on
// 127.0.0.1, for tests: a random port, no logs, no signal handlers, and
// storage in t.TempDir().
package natstest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a test NATS server. It can be stopped and started again on the
// same port with the same storage, as a restarted server would be.
type Server struct {
	t    testing.TB
	opts server.Options

	mu  sync.Mutex
	srv *server.Server // nil while stopped; guarded by mu
}

// Start runs a NATS server with JetStream and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with options changed by edit first (credentials, for
// example); edit may be nil.
func StartWith(t testing.TB, edit func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	if edit != nil {
		edit(&s.opts)
	}
	s.Restart()
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port // later starts keep it
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.ClientURL()
}

// Stop shuts the server down and waits until it has; stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again (or the first time) and waits until it
// takes connections.
func (s *Server) Restart() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.t.Fatal("natstest: server not ready after 10s")
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

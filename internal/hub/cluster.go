package hub

import (
	"fmt"

	"github.com/netkit/netkit/internal/broker"
	"github.com/netkit/netkit/internal/broker/natsbroker"
	"github.com/netkit/netkit/internal/history"
)

// newNATSBroker makes the cluster broker of hub.broker = "nats" or
// "nats-embedded" (which first starts the NATS server it connects to).
// History limits come from the namespaces; the stream keeps the largest.
func (s *Server) newNATSBroker(h broker.Handler) (broker.Broker, error) {
	cfg := s.cfg
	bc := natsbroker.Config{
		URLs:        cfg.NATS.URL,
		User:        cfg.NATS.User,
		Password:    cfg.NATS.Password,
		Token:       cfg.NATS.Token,
		CredsFile:   cfg.NATS.Creds,
		TLSCA:       cfg.NATS.TLSCA,
		TLSCert:     cfg.NATS.TLSCert,
		TLSKey:      cfg.NATS.TLSKey,
		NodeID:      s.nodeID,
		Limits:      s.ns.limits,
		MaxBytes:    cfg.HistoryMaxBytes,
		PresenceTTL: cfg.NATS.PresenceTTL,
		Logger:      s.log,
	}
	for _, ns := range append([]Namespace{s.ns.def}, cfg.Namespaces...) {
		bc.MaxHistorySize = max(bc.MaxHistorySize, ns.HistorySize)
		bc.MaxHistoryTTL = max(bc.MaxHistoryTTL, ns.HistoryTTL)
	}
	if bc.MaxHistorySize == 0 {
		bc.MaxHistorySize = 1 // the last message carries the offset
	}
	if bc.MaxHistoryTTL == 0 {
		bc.MaxHistoryTTL = history.DefaultLimits.TTL
	}
	if cfg.Broker != BrokerNATSEmbedded {
		return natsbroker.New(bc, h)
	}
	srv, err := natsbroker.StartEmbedded(natsbroker.EmbeddedConfig{Listen: cfg.NATS.EmbeddedListen, Dir: cfg.NATS.EmbeddedDir, Name: s.nodeID})
	if err != nil {
		return nil, err
	}
	s.log.Info("embedded NATS server with JetStream: other hub nodes connect with hub.broker = \"nats\"", "nats_url", srv.ClientURL(), "dir", cfg.NATS.EmbeddedDir)
	bc.URLs = []string{srv.ClientURL()}
	b, err := natsbroker.New(bc, h)
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	b.StopWith(srv)
	return b, nil
}

// HandlePublications implements broker.BatchHandler: each local
// subscriber gets the whole run queued back to back, so its connection
// writes the messages together instead of one write each.
func (s *Server) HandlePublications(ps []broker.Publication) {
	if len(ps) == 0 {
		return
	}
	ch := s.reg.channel(ps[0].Channel)
	if ch == nil {
		return
	}
	subs := *ch.subs.Load()
	for _, c := range subs {
		for _, p := range ps {
			c.deliver(p.Push, ch)
		}
	}
	for _, p := range ps {
		s.metrics.sent(outPublication, len(subs), len(p.Push))
	}
}

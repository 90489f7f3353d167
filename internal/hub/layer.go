package hub

import (
	"fmt"
	"net/http"

	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// modes maps hub.transport to the connection layer's Mode.
var modes = map[string]string{
	TransportAuto:      wsloop.ModeAuto,
	TransportEpoll:     wsloop.ModeEpoll,
	TransportGoroutine: wsloop.ModeGoroutine,
}

// newLayer builds the WebSocket connection layer from the hub's Config.
func (s *Server) newLayer(pollers int) error {
	cfg := &s.cfg
	tooLarge := protocol.DisconnectTooLarge
	tooLarge.Reason = fmt.Sprintf("message exceeds the maximum size of %s (hub.max_message_size)", formatSize(cfg.MaxMessageSize))
	s.closings = map[wsloop.Reason]wsloop.Closing{
		wsloop.ReasonTooLarge:     closingFor(tooLarge),
		wsloop.ReasonBadUTF8:      closingFor(protocol.DisconnectBadUTF8),
		wsloop.ReasonProtocol:     closingFor(protocol.DisconnectProtocol),
		wsloop.ReasonSlowConsumer: closingFor(protocol.DisconnectSlowConsumer),
	}
	layer, err := wsloop.New(wsloop.Config{
		Mode:          modes[cfg.Transport],
		Pollers:       pollers,
		MaxMessage:    cfg.MaxMessageSize,
		QueueMessages: cfg.QueueMessages,
		QueueBytes:    cfg.QueueBytes,
		TotalBytes:    cfg.MaxQueuedBytes,
		PingInterval:  cfg.PingInterval,
		PongTimeout:   cfg.PongTimeout,
		WriteTimeout:  cfg.WriteTimeout,
		WriteDelay:    cfg.WriteDelay,
		Closings:      s.closings,
		CheckOrigin:   func(*http.Request) bool { return true }, // admit checked it
		UpgradeError:  s.upgradeError,
		Log:           s.log,
	})
	if err != nil {
		return fmt.Errorf("hub.transport: %w", err)
	}
	s.layer = layer
	return nil
}

// closingFor is how a connection closed with d ends: the disconnect push,
// then a close frame with d's status and code.
func closingFor(d protocol.Disconnect) wsloop.Closing {
	return wsloop.Closing{Push: protocol.AppendDisconnect(nil, d), Status: d.CloseStatus, Reason: d.Code}
}

// formatSize writes n bytes the way config sizes are written: "64KiB".
func formatSize(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.unit)
		}
	}
	return fmt.Sprintf("%dB", n)
}

package hub_test

import (
	"testing"

	"github.com/netkit/netkit/internal/hub"
	"github.com/netkit/netkit/internal/hubtest"
)

// TestGoroutineTransport runs the WebSocket tests again on the
// goroutine-per-connection transport; the others run on the default, the
// event loop where the platform has one.
func TestGoroutineTransport(t *testing.T) {
	hubtest.Transport = hub.TransportGoroutine
	t.Cleanup(func() { hubtest.Transport = "" })
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"BadCommands", TestBadCommands},
		{"ChannelNames", TestChannelNames},
		{"MaxSubscriptions", TestMaxSubscriptions},
		{"BinaryFrame", TestBinaryFrame},
		{"InvalidUTF8", TestInvalidUTF8},
		{"MaxMessageSize", TestMaxMessageSize},
		{"MaxConnections", TestMaxConnections},
		{"SlowConsumer", TestSlowConsumer},
		{"DeadPeer", TestDeadPeer},
		{"Shutdown", TestShutdown},
		{"ShutdownDraining", TestShutdownDraining},
		{"GoroutinesReturn", TestGoroutinesReturn},
		{"Welcome", TestWelcome},
		{"Subscribe", TestSubscribe},
		{"Unsubscribe", TestUnsubscribe},
		{"Publish", TestPublish},
		{"PublishData", TestPublishData},
		{"Send", TestSend},
		{"Presence", TestPresence},
		{"JoinLeave", TestJoinLeave},
		{"PingIDs", TestPingIDs},
		{"SeveralCommandsInOneFrame", TestSeveralCommandsInOneFrame},
		{"EmptyFrames", TestEmptyFrames},
		{"Ordering", TestOrdering},
		{"SubscribeWhilePublishing", TestSubscribeWhilePublishing},
	} {
		t.Run(tc.name, tc.fn)
	}
}

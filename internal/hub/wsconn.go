package hub

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/protocol"
)

// closeWait bounds the closing handshake: how long the hub waits for the
// peer's close frame after sending its own.
const closeWait = 2 * time.Second

var newline = []byte{'\n'}

// wsConn is the gorilla/websocket transport: the goroutine that calls run
// is the only reader; the writer goroutine it starts owns every write,
// ping and write deadline.
type wsConn struct {
	ws  *websocket.Conn
	log *slog.Logger

	maxMessage   int64
	pingInterval time.Duration
	pongTimeout  time.Duration
	writeTimeout time.Duration

	out   *outbox
	batch [][]byte // owned by the writer

	closeOnce  sync.Once
	disconnect protocol.Disconnect // written once, before closing is closed
	closing    chan struct{}
	readerDone chan struct{}
}

func newWSConn(ws *websocket.Conn, cfg *Config, log *slog.Logger) *wsConn {
	return &wsConn{
		ws:           ws,
		log:          log,
		maxMessage:   cfg.MaxMessageSize,
		pingInterval: cfg.PingInterval,
		pongTimeout:  cfg.PongTimeout,
		writeTimeout: cfg.WriteTimeout,
		out:          newOutbox(cfg.QueueMessages, cfg.QueueBytes),
		closing:      make(chan struct{}),
		readerDone:   make(chan struct{}),
	}
}

// Enqueue implements transport.
func (t *wsConn) Enqueue(b []byte) bool {
	if t.out.push(b) {
		return true
	}
	t.Close(protocol.DisconnectSlowConsumer)
	return false
}

// Close implements transport. A zero Disconnect closes without a push or
// close frame (the peer is gone).
func (t *wsConn) Close(d protocol.Disconnect) {
	t.closeOnce.Do(func() {
		t.disconnect = d
		close(t.closing)
	})
}

// Abort implements transport.
func (t *wsConn) Abort() {
	t.Close(protocol.Disconnect{})
	t.ws.NetConn().Close()
}

func (t *wsConn) isClosing() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// run reads frames and passes each text frame to onFrame until the
// connection ends. It starts the writer and returns after it, with the
// socket closed.
func (t *wsConn) run(onFrame func([]byte)) {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		t.writeLoop()
	}()
	err := t.readLoop(onFrame)
	if !t.isClosing() {
		t.log.Debug("connection ended by peer", "err", err)
	}
	t.Close(protocol.Disconnect{})
	close(t.readerDone)
	<-writerDone
	t.ws.Close()
}

func (t *wsConn) readLoop(onFrame func([]byte)) error {
	deadline := t.pingInterval + t.pongTimeout
	t.ws.SetPongHandler(func(string) error {
		if t.isClosing() {
			return nil
		}
		return t.ws.SetReadDeadline(time.Now().Add(deadline))
	})
	var buf bytes.Buffer
	for {
		if !t.isClosing() {
			if err := t.ws.SetReadDeadline(time.Now().Add(deadline)); err != nil {
				return err
			}
		}
		typ, r, err := t.ws.NextReader()
		if err != nil {
			return err
		}
		if t.isClosing() { // closing handshake: discard until the peer's close frame
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
			continue
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, t.maxMessage+1))
		if err != nil {
			return err
		}
		switch {
		case n > t.maxMessage:
			t.Close(protocol.DisconnectTooLarge)
		case typ != websocket.TextMessage:
			t.Enqueue(protocol.AppendError(nil, 0, false, protocol.Errorf(protocol.CodeBadRequest, "binary frames are not supported; send text frames of JSON")))
		case !utf8.Valid(buf.Bytes()):
			t.Close(protocol.DisconnectBadUTF8)
		default:
			onFrame(buf.Bytes())
		}
		if buf.Cap() > 64<<10 { // don't keep a large buffer for an idle connection
			buf = bytes.Buffer{}
		}
	}
}

func (t *wsConn) writeLoop() {
	ping := time.NewTicker(t.pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-t.out.ready:
			if err := t.writeQueued(); err != nil {
				t.fail(err)
				return
			}
		case <-ping.C:
			if err := t.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeTimeout)); err != nil {
				t.fail(err)
				return
			}
		case <-t.closing:
			t.finish()
			return
		}
	}
}

// writeQueued writes everything queued as one frame of "\n"-separated
// objects.
func (t *wsConn) writeQueued() error {
	t.batch = t.out.take(t.batch)
	if len(t.batch) == 0 {
		return nil
	}
	if err := t.ws.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	w, err := t.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for i, b := range t.batch {
		if i > 0 {
			w.Write(newline)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return w.Close()
}

// fail ends a connection whose write failed: the peer is gone or too slow.
func (t *wsConn) fail(err error) {
	t.log.Debug("write failed; dropping connection", "err", err)
	t.Close(protocol.Disconnect{})
	t.ws.NetConn().Close() // unblocks the reader
}

// finish runs the closing handshake for a disconnect the hub chose: queued
// objects (unless the client is too slow for them), the disconnect push,
// the close frame; then it waits for the reader to see the peer's close
// frame, and closes the socket.
func (t *wsConn) finish() {
	d := t.disconnect
	if d.Code == "" {
		t.ws.NetConn().Close()
		return
	}
	if d != protocol.DisconnectSlowConsumer {
		if err := t.writeQueued(); err != nil {
			t.fail(err)
			return
		}
	}
	deadline := time.Now().Add(min(t.writeTimeout, closeWait))
	t.ws.SetWriteDeadline(deadline)
	err := t.ws.WriteMessage(websocket.TextMessage, protocol.AppendDisconnect(nil, d))
	if err == nil {
		err = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(d.CloseStatus, d.Code), deadline)
	}
	if err == nil {
		timer := time.NewTimer(closeWait)
		select {
		case <-t.readerDone:
		case <-timer.C:
		}
		timer.Stop()
	}
	t.ws.NetConn().Close()
}

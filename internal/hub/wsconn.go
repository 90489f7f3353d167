package hub

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/wsloop"
)

// closeWait bounds the closing handshake: how long the hub waits for the
// peer's close frame after sending its own.
const closeWait = 2 * time.Second

// writerLinger is how long an idle writer goroutine waits for more to write
// before it exits. Idle connections hold no writer goroutine.
const writerLinger = 5 * time.Second

var newline = []byte{'\n'}

// readBuffers holds the buffers that inbound messages are read into, so an
// idle connection holds none.
var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// wsConn is the gorilla/websocket transport. The goroutine that calls run
// is the only reader. A writer goroutine, started on demand and exiting
// when idle, owns every write, ping and write deadline; at most one runs at
// a time, and the last one runs the closing handshake.
type wsConn struct {
	ws  *websocket.Conn
	log *slog.Logger

	maxMessage   int64
	pingInterval time.Duration
	pongTimeout  time.Duration
	writeTimeout time.Duration

	out       *wsloop.Outbox
	ready     chan struct{} // capacity 1: signalled when the queue becomes non-empty
	pingDue   atomic.Bool   // set by pingTimer, cleared by the writer
	pingTimer *time.Timer

	closeOnce  sync.Once
	disconnect protocol.Disconnect // written once, before closing is closed
	closing    chan struct{}
	readerDone chan struct{}
	writerDone chan struct{} // closed by the writer that ran finish
}

func newWSConn(ws *websocket.Conn, cfg *Config, log *slog.Logger) *wsConn {
	t := &wsConn{
		ws:           ws,
		log:          log,
		maxMessage:   cfg.MaxMessageSize,
		pingInterval: cfg.PingInterval,
		pongTimeout:  cfg.PongTimeout,
		writeTimeout: cfg.WriteTimeout,
		out:          wsloop.NewOutbox(cfg.QueueMessages, cfg.QueueBytes),
		ready:        make(chan struct{}, 1),
		closing:      make(chan struct{}),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
	}
	t.pingTimer = time.AfterFunc(t.pingInterval, t.pingTick)
	return t
}

// Enqueue implements transport.
func (t *wsConn) Enqueue(b []byte) bool {
	ok, start, first := t.out.Push(b)
	if !ok {
		t.Close(protocol.DisconnectSlowConsumer)
		return false
	}
	if first {
		t.signal()
	}
	if start {
		go t.writeLoop()
	}
	return true
}

// wake makes sure a writer runs and looks at the connection's state.
func (t *wsConn) wake() {
	start := t.out.Activate()
	t.signal()
	if start {
		go t.writeLoop()
	}
}

func (t *wsConn) signal() {
	select {
	case t.ready <- struct{}{}:
	default:
	}
}

// Close implements transport. A zero Disconnect closes without a push or
// close frame (the peer is gone).
func (t *wsConn) Close(d protocol.Disconnect) {
	t.closeOnce.Do(func() {
		t.disconnect = d
		close(t.closing)
		if d == protocol.DisconnectSlowConsumer {
			// Cut short a write that is stuck on a full socket; finish
			// then tries the push with a fresh deadline.
			t.ws.NetConn().SetWriteDeadline(time.Now())
		}
		t.wake()
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

func (t *wsConn) pingTick() {
	t.pingDue.Store(true)
	t.wake()
}

// Reason implements transport.
func (t *wsConn) Reason() protocol.Disconnect {
	select {
	case <-t.closing:
		return t.disconnect
	default:
		return protocol.Disconnect{}
	}
}

// run reads frames and passes each text frame to h until the connection
// ends. It returns after the writer has finished, with the socket closed,
// and h.OnClose has run.
func (t *wsConn) run(h wsloop.Handler) {
	defer h.OnClose()
	err := t.readLoop(h.OnFrame)
	if !t.isClosing() {
		t.log.Debug("connection ended by peer", "err", err)
	}
	t.Close(protocol.Disconnect{})
	close(t.readerDone)
	<-t.writerDone
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
		if err := t.readMessage(typ, r, onFrame); err != nil {
			return err
		}
	}
}

// readMessage reads one message of at most maxMessage bytes into a pooled
// buffer and hands it on.
func (t *wsConn) readMessage(typ int, r io.Reader, onFrame func([]byte)) error {
	buf := readBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // don't pool what one large message grew
			buf.Reset()
			readBuffers.Put(buf)
		}
	}()
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
	return nil
}

// writeLoop is the writer goroutine: it writes what is queued and due until
// it has been idle for writerLinger, or runs the closing handshake.
func (t *wsConn) writeLoop() {
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	for {
		select {
		case <-t.closing:
			t.finish()
			return
		case <-t.ready:
			if err := t.service(); err != nil {
				t.abort(err)
			}
		case <-linger.C:
			// Park unless work arrived meanwhile; a Close or ping that
			// raced with parking either started a new writer or finds
			// this one still going.
			if t.out.Park() && (!t.pending() || !t.out.Activate()) {
				t.out.Shrink()
				return
			}
		}
		linger.Reset(writerLinger)
	}
}

func (t *wsConn) pending() bool { return t.isClosing() || t.pingDue.Load() }

// service writes a due ping and everything queued.
func (t *wsConn) service() error {
	if t.pingDue.Swap(false) {
		if err := t.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeTimeout)); err != nil {
			return err
		}
		t.pingTimer.Reset(t.pingInterval)
	}
	return t.writeQueued()
}

// writeQueued writes everything queued as one frame of "\n"-separated
// objects.
func (t *wsConn) writeQueued() error {
	batch := t.out.Take()
	if len(batch) == 0 {
		return nil
	}
	if err := t.ws.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	w, err := t.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	defer t.out.Recycle(batch)
	for i, b := range batch {
		if i > 0 {
			w.Write(newline)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return w.Close()
}

// abort ends a connection whose write failed: the peer is gone or too
// slow. The writer then sees closing and finishes.
func (t *wsConn) abort(err error) {
	t.log.Debug("write failed; dropping connection", "err", err)
	t.Abort()
}

// finish runs once, in the last writer. For a disconnect the hub chose it
// runs the closing handshake: queued objects (unless the client is too
// slow for them), the disconnect push, the close frame; then it waits for
// the reader to see the peer's close frame. It closes the socket.
func (t *wsConn) finish() {
	defer close(t.writerDone)
	t.pingTimer.Stop()
	d := t.disconnect
	if d.Code == "" {
		t.ws.NetConn().Close()
		return
	}
	if d != protocol.DisconnectSlowConsumer {
		if err := t.writeQueued(); err != nil {
			t.ws.NetConn().Close()
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

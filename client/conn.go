package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netkit/netkit/internal/protocol"
)

// outQueue bounds the frames waiting for a connection's writer. Callers
// block (under their ctx) when it is full.
const outQueue = 64

// conn is one WebSocket connection to the hub. Its reader goroutine owns
// every read and its writer goroutine every write; both end when the
// connection does, and wait waits for them.
type conn struct {
	ws      *websocket.Conn
	welcome protocol.ServerObject
	early   []byte        // objects that shared the welcome's frame; owned by the reader
	out     chan []byte   // frames for the writer; bounded by outQueue
	stop    chan struct{} // closed by close
	done    chan struct{} // closed when the reader has returned
	wg      sync.WaitGroup

	stopOnce sync.Once
	mu       sync.Mutex
	pending  map[int64]*call  // guarded by mu
	err      error            // why the connection ended; guarded by mu
	disc     *DisconnectError // the hub's disconnect push; guarded by mu
}

// call is one command waiting for its reply.
type call struct {
	id    int64
	reply chan protocol.ServerObject // capacity 1
	// onReply, if not nil, runs on the reader goroutine before any later
	// object is handled (subscribe uses it to order its reply before the
	// channel's messages).
	onReply func(protocol.ServerObject)
}

// dialConn opens a connection and reads the welcome push.
func dialConn(ctx context.Context, o *options, url, token string) (*conn, error) {
	d := websocket.Dialer{
		NetDialContext:   o.netDial,
		TLSClientConfig:  o.tls,
		HandshakeTimeout: o.handshakeTimeout,
		ReadBufferSize:   4 << 10,
		WriteBufferSize:  4 << 10,
		Proxy:            http.ProxyFromEnvironment,
	}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ws, resp, err := d.DialContext(ctx, url, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: connect to %s: %w", url, handshakeError(resp))
		}
		return nil, fmt.Errorf("client: connect to %s: %w", url, err)
	}
	ws.SetReadLimit(protocol.MaxServerObject)
	cn := &conn{
		ws:      ws,
		out:     make(chan []byte, outQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		pending: make(map[int64]*call),
	}
	deadline := time.Now().Add(o.handshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	ws.SetReadDeadline(deadline)
	_, frame, err := ws.ReadMessage()
	if err == nil {
		first, rest, _ := bytes.Cut(frame, []byte{'\n'})
		cn.welcome, err = protocol.DecodeServerObject(first)
		cn.early = rest // a hub that joins frames may have sent more
		switch {
		case err != nil:
		case cn.welcome.Push == protocol.PushDisconnect:
			ws.Close()
			return nil, fmt.Errorf("client: connect to %s: %w", url, &DisconnectError{Code: cn.welcome.Code, Reason: cn.welcome.Reason})
		case cn.welcome.Push != protocol.PushWelcome:
			err = fmt.Errorf("first object is %q, want a welcome push", cn.welcome.Push)
		}
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("client: connect to %s: reading the welcome: %w", url, err)
	}
	return cn, nil
}

// handshakeError turns a refused upgrade into an *Error with the hub's
// code, e.g. unauthorized for a bad token.
func handshakeError(resp *http.Response) error {
	var body struct {
		Error *protocol.Error `json:"error"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) == nil && body.Error != nil {
		return &Error{Code: string(body.Error.Code), Message: body.Error.Message}
	}
	code := CodeBadRequest
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		code = CodeUnauthorized
	case http.StatusForbidden:
		code = CodeForbidden
	case http.StatusNotFound:
		code = CodeNotFound
	case http.StatusServiceUnavailable:
		code = CodeUnavailable
	}
	return &Error{Code: code, Message: fmt.Sprintf("websocket upgrade refused with HTTP %s", resp.Status)}
}

// start runs the reader and the writer. handle gets every push, on the
// reader goroutine.
func (cn *conn) start(readTimeout time.Duration, handle func(protocol.ServerObject)) {
	cn.wg.Add(2)
	go func() {
		defer cn.wg.Done()
		cn.writeLoop()
	}()
	go func() {
		defer cn.wg.Done()
		err := cn.readLoop(readTimeout, handle)
		cn.mu.Lock()
		if cn.err == nil {
			cn.err = err
		}
		cn.pending = nil // callers waiting see done: ErrConnectionLost
		cn.mu.Unlock()
		close(cn.done)
		cn.close()
	}()
}

// close ends the connection: a close frame if the socket takes it, then
// the socket. It does not wait; see wait.
func (cn *conn) close() {
	cn.stopOnce.Do(func() {
		close(cn.stop)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		cn.ws.Close()
	})
}

// wait waits for the reader and the writer to return.
func (cn *conn) wait() { cn.wg.Wait() }

// cause returns why the connection ended: the hub's disconnect push if it
// sent one, else the read error.
func (cn *conn) cause() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.disc != nil {
		return cn.disc
	}
	return cn.err
}

func (cn *conn) writeLoop() {
	for {
		select {
		case b := <-cn.out:
			cn.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := cn.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				cn.fail(fmt.Errorf("client: write: %w", err))
				return
			}
		case <-cn.stop:
			return
		}
	}
}

// fail records err as the cause and closes the connection.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.err == nil {
		cn.err = err
	}
	cn.mu.Unlock()
	cn.close()
}

func (cn *conn) readLoop(timeout time.Duration, handle func(protocol.ServerObject)) error {
	extend := func() {
		if timeout > 0 {
			cn.ws.SetReadDeadline(time.Now().Add(timeout))
		}
	}
	cn.ws.SetReadDeadline(time.Time{})
	extend()
	cn.ws.SetPingHandler(func(data string) error {
		extend()
		err := cn.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	handleFrame := func(frame []byte) error {
		var bad error
		protocol.SplitServerFrame(frame, func(b []byte) {
			o, err := protocol.DecodeServerObject(b)
			if err != nil {
				bad = err
				return
			}
			cn.dispatch(o, handle)
		})
		return bad
	}
	if err := handleFrame(cn.early); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	cn.early = nil
	for {
		typ, frame, err := cn.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				cn.mu.Lock()
				if cn.disc != nil {
					cn.disc.CloseStatus = ce.Code
				} else {
					cn.disc = &DisconnectError{CloseStatus: ce.Code, Reason: ce.Text}
				}
				cn.mu.Unlock()
			}
			return fmt.Errorf("client: read: %w", err)
		}
		extend()
		if typ != websocket.TextMessage {
			continue
		}
		if err := handleFrame(frame); err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
}

func (cn *conn) dispatch(o protocol.ServerObject, handle func(protocol.ServerObject)) {
	if o.IsReply() {
		cn.mu.Lock()
		c := cn.pending[o.ID]
		delete(cn.pending, o.ID)
		cn.mu.Unlock()
		if c == nil {
			return // its caller gave up, or a reply to a command without id
		}
		if c.onReply != nil {
			c.onReply(o)
		}
		c.reply <- o
		return
	}
	if o.Push == protocol.PushDisconnect {
		cn.mu.Lock()
		cn.disc = &DisconnectError{Code: o.Code, Reason: o.Reason}
		cn.mu.Unlock()
	}
	handle(o)
}

// do sends cmd (whose ID it sets) and waits for the reply. A reply with an
// error becomes an *Error.
func (cn *conn) do(ctx context.Context, id int64, cmd protocol.ClientCommand, onReply func(protocol.ServerObject)) (protocol.ServerObject, error) {
	c, err := cn.send(ctx, id, cmd, onReply)
	if err != nil {
		return protocol.ServerObject{}, err
	}
	return cn.await(ctx, c)
}

// send queues cmd for the writer and registers it for its reply; await
// waits for it. Sending several commands before awaiting them pipelines
// them.
func (cn *conn) send(ctx context.Context, id int64, cmd protocol.ClientCommand, onReply func(protocol.ServerObject)) (*call, error) {
	cmd.ID = id
	b, err := protocol.AppendCommand(nil, cmd)
	if err != nil {
		return nil, err
	}
	c := &call{id: id, reply: make(chan protocol.ServerObject, 1), onReply: onReply}
	cn.mu.Lock()
	if cn.pending == nil {
		cn.mu.Unlock()
		return nil, errNotSent
	}
	cn.pending[id] = c
	cn.mu.Unlock()
	select {
	case cn.out <- b:
		return c, nil
	case <-ctx.Done():
		cn.forget(c)
		return nil, ctx.Err()
	case <-cn.done:
		cn.forget(c)
		return nil, errNotSent
	}
}

// await waits for the reply to c.
func (cn *conn) await(ctx context.Context, c *call) (protocol.ServerObject, error) {
	select {
	case o := <-c.reply:
		return o, replyError(o)
	case <-ctx.Done():
		cn.forget(c)
		return protocol.ServerObject{}, ctx.Err()
	case <-cn.done:
		select {
		case o := <-c.reply:
			return o, replyError(o)
		default:
			return protocol.ServerObject{}, ErrConnectionLost
		}
	}
}

// forget drops c from the calls waiting for a reply.
func (cn *conn) forget(c *call) {
	cn.mu.Lock()
	delete(cn.pending, c.id)
	cn.mu.Unlock()
}

// errNotSent is a command that never reached a connection, which had
// ended; the client retries it on the next one.
var errNotSent = errors.New("client: connection ended before the command was sent")

func replyError(o protocol.ServerObject) error {
	if o.Error != nil {
		return &Error{Code: string(o.Error.Code), Message: o.Error.Message}
	}
	return nil
}

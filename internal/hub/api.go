package hub

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/netkit/netkit/internal/history"
	"github.com/netkit/netkit/internal/protocol"
	"github.com/netkit/netkit/internal/web"
)

// statusOf maps error codes to HTTP status codes.
var statusOf = map[protocol.Code]int{
	protocol.CodeBadRequest:       http.StatusBadRequest,
	protocol.CodeUnauthorized:     http.StatusUnauthorized,
	protocol.CodeForbidden:        http.StatusForbidden,
	protocol.CodeNotFound:         http.StatusNotFound,
	protocol.CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	protocol.CodeTooLarge:         http.StatusRequestEntityTooLarge,
	protocol.CodeTooManyRequests:  http.StatusTooManyRequests,
	protocol.CodeInternal:         http.StatusInternalServerError,
	protocol.CodeUnavailable:      http.StatusServiceUnavailable,
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(s.cfg.WSPath, s.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.notReady.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		if r, ok := s.broker.(interface{ Ready() error }); ok {
			if err := r.Ready(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "broker unavailable", "error": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	api := []struct {
		method, path string
		h            func(*http.Request) (any, *protocol.Error)
	}{
		{"POST", "/api/publish", s.apiPublish},
		{"POST", "/api/broadcast", s.apiBroadcast},
		{"POST", "/api/send", s.apiSend},
		{"POST", "/api/disconnect", s.apiDisconnect},
		{"GET", "/api/presence", s.apiPresence},
		{"GET", "/api/history", s.apiHistory},
		{"GET", "/api/channels", s.apiChannels},
		{"GET", "/api/info", s.apiInfo},
	}
	for _, e := range api {
		mux.Handle(e.path, s.apiHandler(e.method, e.h))
	}
	mux.Handle("GET /metrics", s.serveMetrics())
	page := web.Handler()
	for _, p := range web.Paths {
		if p == "/" {
			p = "/{$}"
		}
		mux.Handle("GET "+p, page)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			s.apiError(w, http.StatusUnauthorized, unauthorized)
			return
		}
		s.apiError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no API endpoint %s", r.URL.Path))
	})
	return mux
}

var unauthorized = protocol.Errorf(protocol.CodeUnauthorized, `missing or wrong API key; send "Authorization: Bearer <key>"`)

// apiHandler wraps an API endpoint with the method check, key check and
// JSON answer.
func (s *Server) apiHandler(method string, h func(*http.Request) (any, *protocol.Error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			s.apiError(w, http.StatusUnauthorized, unauthorized)
			return
		}
		if r.Method != method {
			w.Header().Set("Allow", method)
			s.apiError(w, http.StatusMethodNotAllowed, protocol.Errorf(protocol.CodeMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, method))
			return
		}
		v, perr := h(r)
		if perr != nil {
			s.apiError(w, statusOf[perr.Code], perr)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(auth[len(prefix):]), []byte(s.apiKey)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// apiError counts and writes an API error.
func (s *Server) apiError(w http.ResponseWriter, status int, e *protocol.Error) {
	s.metrics.failed(e.Code)
	writeError(w, status, e)
}

func writeError(w http.ResponseWriter, status int, e *protocol.Error) {
	writeJSON(w, status, struct {
		Error *protocol.Error `json:"error"`
	}{e})
}

// decodeBody decodes a JSON request body strictly into v: one object, no
// unknown fields, right types, at most max_message_size bytes.
func (s *Server) decodeBody(r *http.Request, v any) *protocol.Error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") && !strings.HasPrefix(ct, "text/plain") {
		return protocol.Errorf(protocol.CodeBadRequest, "Content-Type %q: want application/json", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxMessageSize+1))
	if err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "reading body: %v", err)
	}
	if int64(len(body)) > s.cfg.MaxMessageSize {
		return protocol.Errorf(protocol.CodeTooLarge, "body exceeds %d bytes (hub.max_message_size)", s.cfg.MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return protocol.Errorf(protocol.CodeBadRequest, "body: want one JSON object, found more after it")
	}
	return nil
}

func bodyError(err error) *protocol.Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return protocol.Errorf(protocol.CodeBadRequest, "body: empty; want a JSON object")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return protocol.Errorf(protocol.CodeBadRequest, "%s: want %s, got %s", typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &typeErr):
		return protocol.Errorf(protocol.CodeBadRequest, "body: want a JSON object, got %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return protocol.Errorf(protocol.CodeBadRequest, "body: malformed JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(err.Error(), "json: "))
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return protocol.Errorf(protocol.CodeBadRequest, "body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return protocol.Errorf(protocol.CodeBadRequest, "body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func typeName(goType string) string {
	switch goType {
	case "string":
		return "a string"
	case "[]string":
		return "an array of strings"
	}
	return goType
}

func missingData(data json.RawMessage) *protocol.Error {
	if data == nil {
		return protocol.Errorf(protocol.CodeBadRequest, "data: missing (use null to send no value)")
	}
	return nil
}

type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

type publishResponse struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

func (s *Server) apiPublish(r *http.Request) (any, *protocol.Error) {
	var req publishRequest
	if e := s.decodeBody(r, &req); e != nil {
		return nil, e
	}
	if e := protocol.CheckChannel(req.Channel); e != nil {
		return nil, e
	}
	if e := missingData(req.Data); e != nil {
		return nil, e
	}
	if e := s.knownNamespace(req.Channel); e != nil {
		return nil, e
	}
	if e := s.waitGates(r.Context(), req.Channel); e != nil {
		return nil, e
	}
	start := s.metrics.start()
	pos, err := s.broker.Publish(r.Context(), req.Channel, "", protocol.CompactData(req.Data))
	s.metrics.published(start)
	if err != nil {
		return nil, s.internal("publish", err)
	}
	return publishResponse{pos.Offset, pos.Epoch}, nil
}

// waitGates waits, at most hub.write_timeout, until the local subscribers
// of every channel have caught up (flow.go). It fails with unavailable,
// having published nothing, when they have not.
func (s *Server) waitGates(ctx context.Context, channels ...string) *protocol.Error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	for _, name := range channels {
		ch := s.reg.channel(name)
		if ch == nil || ch.flow.open() {
			continue
		}
		s.metrics.backpressured(bpAPIWait)
		if !ch.flow.waitOpen(ctx) {
			return protocol.Errorf(protocol.CodeUnavailable, "subscribers of %q are not keeping up (waited %s); nothing was published, retry later", name, s.cfg.WriteTimeout)
		}
	}
	return nil
}

// knownNamespace fails with not_found for a channel in no configured
// namespace.
func (s *Server) knownNamespace(channel string) *protocol.Error {
	if _, err := s.ns.of(channel); err != nil {
		return protocol.Errorf(protocol.CodeNotFound, "channel %q: %v (see hub.namespaces)", channel, err)
	}
	return nil
}

// apiHistory answers GET /api/history?channel=C[&limit=N][&since_offset=K&since_epoch=E]
// like the history command.
func (s *Server) apiHistory(r *http.Request) (any, *protocol.Error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "channel", "limit", "since_offset", "since_epoch":
		default:
			return nil, protocol.Errorf(protocol.CodeBadRequest, "query parameter %q: unknown; want channel, limit, since_offset, since_epoch", k)
		}
	}
	ch := q.Get("channel")
	if e := protocol.CheckChannel(ch); e != nil {
		return nil, e
	}
	if e := s.knownNamespace(ch); e != nil {
		return nil, e
	}
	var hq history.Query
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "limit: want a count like 50, got %q", v)
		}
		hq.Limit = n
	}
	off, epoch := q.Get("since_offset"), q.Get("since_epoch")
	if (off == "") != (epoch == "") {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "since_offset and since_epoch go together: give both or neither")
	}
	if off != "" {
		n, err := strconv.ParseUint(off, 10, 64)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "since_offset: want an offset like 42, got %q", off)
		}
		if len(epoch) > protocol.MaxEpochLen {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "since_epoch: want at most %d bytes", protocol.MaxEpochLen)
		}
		hq.Since = &history.Position{Offset: n, Epoch: epoch}
	}
	res, err := s.broker.History(r.Context(), ch, hq)
	if err != nil {
		return nil, s.internal("history", err)
	}
	return json.RawMessage(appendHistory(nil, res, hq.Since != nil)), nil
}

type broadcastRequest struct {
	Channels []string        `json:"channels"`
	Data     json.RawMessage `json:"data"`
}

func (s *Server) apiBroadcast(r *http.Request) (any, *protocol.Error) {
	var req broadcastRequest
	if e := s.decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.Channels) == 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "channels: want a non-empty array of channel names")
	}
	seen := make(map[string]bool, len(req.Channels))
	for i, ch := range req.Channels {
		if e := protocol.CheckChannel(ch); e != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "channels[%d]: %s", i, strings.TrimPrefix(e.Message, "channel: "))
		}
		if seen[ch] {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "channels[%d]: duplicate channel %q", i, ch)
		}
		if e := s.knownNamespace(ch); e != nil {
			return nil, e
		}
		seen[ch] = true
	}
	if e := missingData(req.Data); e != nil {
		return nil, e
	}
	if e := s.waitGates(r.Context(), req.Channels...); e != nil {
		return nil, e
	}
	data := protocol.CompactData(req.Data)
	offsets := make(map[string]uint64, len(req.Channels))
	for _, ch := range req.Channels {
		start := s.metrics.start()
		pos, err := s.broker.Publish(r.Context(), ch, "", data)
		s.metrics.published(start)
		if err != nil {
			return nil, s.internal("broadcast", err)
		}
		offsets[ch] = pos.Offset
	}
	return struct {
		Offsets map[string]uint64 `json:"offsets"`
	}{offsets}, nil
}

type sendRequest struct {
	To   string          `json:"to"`
	Data json.RawMessage `json:"data"`
}

func (s *Server) apiSend(r *http.Request) (any, *protocol.Error) {
	var req sendRequest
	if e := s.decodeBody(r, &req); e != nil {
		return nil, e
	}
	if e := protocol.CheckUser(req.To); e != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "to: %s", e.Message)
	}
	if e := missingData(req.Data); e != nil {
		return nil, e
	}
	n, err := s.send(r.Context(), req.To, "", protocol.CompactData(req.Data))
	if err != nil {
		return nil, s.internal("send", err)
	}
	return struct {
		Delivered int `json:"delivered"`
	}{n}, nil
}

type disconnectRequest struct {
	User string `json:"user"`
}

func (s *Server) apiDisconnect(r *http.Request) (any, *protocol.Error) {
	var req disconnectRequest
	if e := s.decodeBody(r, &req); e != nil {
		return nil, e
	}
	if e := protocol.CheckUser(req.User); e != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "user: %s", e.Message)
	}
	n, err := s.broker.DisconnectUser(r.Context(), req.User)
	if err != nil {
		return nil, s.internal("disconnect", err)
	}
	return struct {
		Disconnected int `json:"disconnected"`
	}{n}, nil
}

func (s *Server) apiPresence(r *http.Request) (any, *protocol.Error) {
	q := r.URL.Query()
	for k := range q {
		if k != "channel" {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "query parameter %q: unknown; want channel", k)
		}
	}
	ch := q.Get("channel")
	if e := protocol.CheckChannel(ch); e != nil {
		return nil, e
	}
	clients, err := s.broker.Presence(r.Context(), ch)
	if err != nil {
		return nil, s.internal("presence", err)
	}
	return presenceResult{Clients: clients}, nil
}

func (s *Server) apiChannels(r *http.Request) (any, *protocol.Error) {
	chans, err := s.broker.Channels(r.Context())
	if err != nil {
		return nil, s.internal("channels", err)
	}
	return struct {
		Channels any `json:"channels"`
	}{chans}, nil
}

// Info is the answer of GET /api/info.
type Info struct {
	Node          string  `json:"node"`
	Version       string  `json:"version"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Connections   int     `json:"connections"`
	Channels      int     `json:"channels"`
	Subscriptions int     `json:"subscriptions"`
	Goroutines    int     `json:"goroutines"`
	HeapBytes     uint64  `json:"heap_bytes"`  // heap objects, live and not yet collected
	StackBytes    uint64  `json:"stack_bytes"` // goroutine stacks
	SysBytes      uint64  `json:"sys_bytes"`   // memory obtained from the OS by the Go runtime
}

func (s *Server) apiInfo(*http.Request) (any, *protocol.Error) {
	return s.Info(), nil
}

// Info reports the node's identity and local counts.
func (s *Server) Info() Info {
	conns, chans, subs := s.reg.stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Info{
		Node:          s.nodeID,
		Version:       s.version,
		UptimeSeconds: float64(time.Since(s.started).Round(time.Millisecond)) / float64(time.Second),
		Connections:   conns,
		Channels:      chans,
		Subscriptions: subs,
		Goroutines:    runtime.NumGoroutine(),
		HeapBytes:     ms.HeapAlloc,
		StackBytes:    ms.StackInuse,
		SysBytes:      ms.Sys,
	}
}

// Package protocol defines protocol v1 of the netkit hub: the commands a
// client sends, the replies and pushes the hub sends, their JSON encoding,
// and the error and disconnect codes. It depends on the standard library only.
package protocol

import "fmt"

// Code is a machine-readable error code carried in replies and HTTP errors.
type Code string

// Error codes of protocol v1.
const (
	CodeBadRequest       Code = "bad_request"
	CodeForbidden        Code = "forbidden"
	CodeNotFound         Code = "not_found"
	CodeTooLarge         Code = "too_large"
	CodeTooManyRequests  Code = "too_many_requests"
	CodeInternal         Code = "internal"
	CodeUnavailable      Code = "unavailable"        // the hub cannot take it now; retry later
	CodeUnauthorized     Code = "unauthorized"       // HTTP API only
	CodeMethodNotAllowed Code = "method_not_allowed" // HTTP API only
)

// Error is a client-facing error: its code and a short human message.
// Internal causes are logged by the server, never sent.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WebSocket close status codes used with disconnects (RFC 6455, section 7.4.1).
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	CloseInvalidData   = 1007
	ClosePolicy        = 1008
	CloseTooBig        = 1009
	CloseInternal      = 1011
)

// Disconnect describes why the server closes a connection on purpose. The
// server sends it as a push before the WebSocket close frame.
type Disconnect struct {
	Code        string // machine-readable, e.g. "slow_consumer"
	Reason      string // short human text
	CloseStatus int    // WebSocket close status
}

// Disconnects the hub sends.
var (
	DisconnectShutdown     = Disconnect{Code: "shutdown", Reason: "server is shutting down", CloseStatus: CloseGoingAway}
	DisconnectSlowConsumer = Disconnect{Code: "slow_consumer", Reason: "outbound queue overflowed: client reads too slowly", CloseStatus: ClosePolicy}
	DisconnectTooLarge     = Disconnect{Code: "too_large", Reason: "message exceeds the maximum size", CloseStatus: CloseTooBig}
	DisconnectPolicy       = Disconnect{Code: "policy", Reason: "disconnected by policy", CloseStatus: ClosePolicy}
	DisconnectKicked       = Disconnect{Code: "policy", Reason: "disconnected by the server API", CloseStatus: ClosePolicy}
	DisconnectAbuse        = Disconnect{Code: "policy", Reason: "too many commands refused (hub.command_rate)", CloseStatus: ClosePolicy}
	DisconnectTokenExpired = Disconnect{Code: "token_expired", Reason: "the token expired; connect again with a new one, or send refresh before it expires", CloseStatus: ClosePolicy}
	DisconnectBadFrame     = Disconnect{Code: "bad_request", Reason: "binary frames are not supported; send text frames of JSON", CloseStatus: CloseInvalidData}
	DisconnectProtocol     = Disconnect{Code: "bad_request", Reason: "websocket protocol error", CloseStatus: CloseProtocolError}
	DisconnectBadUTF8      = Disconnect{Code: "bad_request", Reason: "text frame is not valid UTF-8", CloseStatus: CloseInvalidData}
)

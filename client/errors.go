package client

import (
	"errors"
	"fmt"
)

// Error is an error the hub answered with: one of the protocol's codes
// (bad_request, forbidden, not_found, too_large, too_many_requests,
// unavailable, internal; unauthorized for a token refused at connect) and a
// message for people. Test for it with errors.As.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Codes of the hub's errors that callers commonly branch on.
const (
	CodeBadRequest      = "bad_request"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeTooManyRequests = "too_many_requests"
	CodeUnavailable     = "unavailable"
	CodeUnauthorized    = "unauthorized"
	CodeInternal        = "internal"
)

// DisconnectError is how the hub ended a connection: the code and reason
// of its disconnect push (docs/protocol.md, Disconnects) and the WebSocket
// close status. Final reports whether the client stopped because of it.
type DisconnectError struct {
	Code        string // "shutdown", "slow_consumer", "policy", "token_expired", ...
	Reason      string
	CloseStatus int  // 0 when no close frame arrived
	Final       bool // the client does not reconnect after it
}

// Error implements the error interface.
func (e *DisconnectError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("connection closed by the hub (status %d)", e.CloseStatus)
	}
	return fmt.Sprintf("disconnected by the hub: %s: %s", e.Code, e.Reason)
}

// Sentinel errors.
var (
	// ErrClosed is returned by calls on a client after Close.
	ErrClosed = errors.New("client: client closed")
	// ErrConnectionLost is returned by a call whose connection dropped
	// before its reply came: the hub may or may not have carried it out.
	ErrConnectionLost = errors.New("client: connection lost before the reply")
	// ErrBadURL is returned by Dial for a URL it cannot use.
	ErrBadURL = errors.New("client: bad URL")
	// ErrGaveUp is the cause of a client stopping after its reconnect
	// policy's GiveUpAfter passed without a connection.
	ErrGaveUp = errors.New("client: gave up reconnecting")
)

// isFinal reports whether reconnecting after d is pointless: the hub
// refused the credentials (token_expired) or disconnected the client by
// policy (an operator kick or abuse). A policy disconnect with close 1013
// ("try again later", the connection limit) is not final.
func isFinal(d *DisconnectError) bool {
	switch d.Code {
	case "token_expired":
		return true
	case "policy":
		return d.CloseStatus != 1013
	}
	return false
}

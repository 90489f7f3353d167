//go:build !linux

package wsloop

func outboxOf(c Conn) *Outbox { return nil }

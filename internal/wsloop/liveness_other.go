//go:build !linux

package wsloop

// peerTaking reports false: without TCP_INFO a silent peer is dead after
// the dead-peer window, whatever it is still taking.
func peerTaking(fd int, queued bool, acked *uint64) bool { return false }

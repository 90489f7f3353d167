package wsloop

import "golang.org/x/sys/unix"

// peerTaking reports whether a peer that has sent nothing for the dead-peer
// window still takes what the hub sends: its TCP stack acknowledged more
// bytes since the last look (*acked, updated) while more wait behind them
// on this side (queued, or in the socket but not yet sent because the
// peer's window is full). Its answer to our
// ping is then most likely queued behind that data, so it is not dropped as
// dead. A peer that stopped reading fills its window, its acknowledgements
// stop, and it meets the write timeout or the next dead-peer check instead;
// a silent peer with nothing in flight is dropped as before.
func peerTaking(fd int, queued bool, acked *uint64) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false
	}
	progressed := info.Bytes_acked > *acked
	*acked = info.Bytes_acked
	return progressed && (queued || info.Notsent_bytes > 0)
}

package states

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// The parts of netlink and sock_diag this package speaks, from
// linux/netlink.h, linux/sock_diag.h and linux/inet_diag.h. They are
// written here, not taken from x/sys/unix, so that the encoding and its
// tests build on every system.
const (
	netlinkSockDiag   = 4  // NETLINK_SOCK_DIAG
	sockDiagByFamily  = 20 // SOCK_DIAG_BY_FAMILY
	tcpDiagGetSock    = 18 // TCPDIAG_GETSOCK, the older request: both families in one dump
	inetDiagReqLen    = 60 // struct inet_diag_req, the older request
	nlmsgNoop         = 1  // NLMSG_NOOP
	nlmsgError        = 2  // NLMSG_ERROR
	nlmsgDone         = 3  // NLMSG_DONE
	nlmFRequest       = 0x1
	nlmFDump          = 0x300 // NLM_F_ROOT | NLM_F_MATCH
	afInet            = 2
	afInet6           = 10
	ipprotoTCP        = 6
	nlmsgHdrLen       = 16 // struct nlmsghdr
	inetDiagReqV2Len  = 56 // struct inet_diag_req_v2
	inetDiagMsgLen    = 72 // struct inet_diag_msg
	inetDiagSockIDLen = 48 // struct inet_diag_sockid
	allStates         = 0xffffffff
)

// diagRequest returns a netlink message asking for every TCP socket of
// family (afInet or afInet6), in every state.
func diagRequest(family uint8, seq uint32) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagReqV2Len)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	// b[12:16], the port id, is 0: the kernel fills it in.
	r := b[nlmsgHdrLen:]
	r[0] = family
	r[1] = ipprotoTCP
	// r[2] ext: no extensions; r[3] pad.
	ne.PutUint32(r[4:], allStates)
	// r[8:56], the socket id, is zero: match any.
	return b
}

// diagRequestCompat returns a netlink message in the older inet_diag form
// (TCPDIAG_GETSOCK, struct inet_diag_req) asking for every TCP socket in
// every state. The kernel answers it with IPv4 and IPv6 sockets from one
// walk of its socket tables, where SOCK_DIAG_BY_FAMILY takes one walk per
// family.
func diagRequestCompat(seq uint32) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], tcpDiagGetSock)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	// r[0] family, r[1] src_len, r[2] dst_len, r[3] ext: 0; r[4:52], the
	// socket id, is zero: match any.
	ne.PutUint32(r[52:], allStates)
	// r[56:60], dbs: 0.
	return b
}

// errDumpTruncated means a netlink message claims more bytes than arrived.
var errDumpTruncated = errors.New("states: netlink message truncated")

// parseDiag reads the netlink messages in b, one read's worth, calling fn
// for each socket. It returns done when the dump's NLMSG_DONE is among
// them. Messages of another sequence number are skipped.
func parseDiag(b []byte, seq uint32, fn func(Socket)) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return false, errDumpTruncated
		}
		n := ne.Uint32(b[0:])
		if n < nlmsgHdrLen || n > uint32(len(b)) {
			return false, fmt.Errorf("%w: length %d of %d bytes", errDumpTruncated, n, len(b))
		}
		typ, mseq, body := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[nlmsgHdrLen:n]
		// The next message starts at the next multiple of 4.
		next := min((n+3)&^3, uint32(len(b)))
		b = b[next:]
		if mseq != seq {
			continue
		}
		switch typ {
		case nlmsgDone:
			return true, nil
		case nlmsgError:
			if len(body) < 4 {
				return false, errDumpTruncated
			}
			if errno := int32(ne.Uint32(body)); errno != 0 {
				return false, fmt.Errorf("states: sock_diag: %w", syscall.Errno(-errno))
			}
		case sockDiagByFamily, tcpDiagGetSock:
			s, err := parseDiagMsg(body)
			if err != nil {
				return false, err
			}
			fn(s)
		}
	}
	return false, nil
}

// parseDiagMsg reads a struct inet_diag_msg; attributes after it are
// ignored.
func parseDiagMsg(b []byte) (Socket, error) {
	if len(b) < inetDiagMsgLen {
		return Socket{}, fmt.Errorf("%w: inet_diag_msg of %d bytes, want %d", errDumpTruncated, len(b), inetDiagMsgLen)
	}
	ne := binary.NativeEndian
	family := b[0]
	id := b[4 : 4+inetDiagSockIDLen]
	sport, dport := binary.BigEndian.Uint16(id[0:]), binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	switch family {
	case afInet:
		src, dst = netip.AddrFrom4([4]byte(id[4:8])), netip.AddrFrom4([4]byte(id[20:24]))
	case afInet6:
		src, dst = netip.AddrFrom16([16]byte(id[4:20])), netip.AddrFrom16([16]byte(id[20:36]))
	default:
		return Socket{}, fmt.Errorf("states: inet_diag_msg of family %d, want %d or %d", family, afInet, afInet6)
	}
	rest := b[4+inetDiagSockIDLen:] // expires, rqueue, wqueue, uid, inode
	return Socket{
		Local:  netip.AddrPortFrom(src, sport),
		Remote: netip.AddrPortFrom(dst, dport),
		State:  kernelState(b[1]),
		RecvQ:  ne.Uint32(rest[4:]),
		SendQ:  ne.Uint32(rest[8:]),
		UID:    ne.Uint32(rest[12:]),
		Inode:  uint64(ne.Uint32(rest[16:])),
	}, nil
}

package states

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// maxProcLine bounds one line of /proc/net/tcp; the kernel pads them to
// 150 characters.
const maxProcLine = 512

// ParseProc reads a /proc/net/tcp or /proc/net/tcp6 file and returns its
// sockets. The header line is skipped; any other line that does not parse
// is an error naming its line number.
func ParseProc(r io.Reader) ([]Socket, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxProcLine), maxProcLine)
	var socks []Socket
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || (n == 1 && strings.HasPrefix(strings.TrimSpace(line), "sl")) {
			continue
		}
		s, err := parseProcLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		socks = append(socks, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("states: reading proc: %w", err)
	}
	return socks, nil
}

// parseProcLine reads one socket line of /proc/net/tcp or tcp6:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//	0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 81234 ...
//
// Addresses are the kernel's 32-bit words printed with %08X in host byte
// order; ports are numbers in hex.
func parseProcLine(line string) (Socket, error) {
	if len(line) > maxProcLine {
		return Socket{}, errors.New("states: proc line too long")
	}
	f := strings.Fields(line)
	if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
		return Socket{}, fmt.Errorf("states: proc line %q: want at least 10 fields starting with \"N:\"", line)
	}
	var s Socket
	var err error
	if s.Local, err = parseProcAddr(f[1]); err != nil {
		return Socket{}, err
	}
	if s.Remote, err = parseProcAddr(f[2]); err != nil {
		return Socket{}, err
	}
	if s.Local.Addr().Is4() != s.Remote.Addr().Is4() {
		return Socket{}, fmt.Errorf("states: proc addresses %s and %s: families differ", f[1], f[2])
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil || len(f[3]) != 2 {
		return Socket{}, fmt.Errorf("states: proc state %q: want two hex digits", f[3])
	}
	s.State = kernelState(uint8(st))
	tx, rx, ok := strings.Cut(f[4], ":")
	if !ok {
		return Socket{}, fmt.Errorf("states: proc queues %q: want TX:RX", f[4])
	}
	sq, err1 := strconv.ParseUint(tx, 16, 32)
	rq, err2 := strconv.ParseUint(rx, 16, 32)
	if err := errors.Join(err1, err2); err != nil {
		return Socket{}, fmt.Errorf("states: proc queues %q: want hex TX:RX", f[4])
	}
	s.SendQ, s.RecvQ = uint32(sq), uint32(rq)
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return Socket{}, fmt.Errorf("states: proc uid %q: want a number", f[7])
	}
	s.UID = uint32(uid)
	if s.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return Socket{}, fmt.Errorf("states: proc inode %q: want a number", f[9])
	}
	return s, nil
}

// parseProcAddr reads "0100007F:1F40" (IPv4) or 32 hex digits and a port
// (IPv6).
func parseProcAddr(field string) (netip.AddrPort, error) {
	hexAddr, hexPort, ok := strings.Cut(field, ":")
	if !ok || len(hexPort) != 4 || (len(hexAddr) != 8 && len(hexAddr) != 32) {
		return netip.AddrPort{}, fmt.Errorf("states: proc address %q: want 8 or 32 hex digits, a colon and 4", field)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("states: proc address %q: bad port", field)
	}
	var b [16]byte
	for i := 0; i < len(hexAddr); i += 8 {
		w, err := strconv.ParseUint(hexAddr[i:i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("states: proc address %q: bad hex", field)
		}
		binary.NativeEndian.PutUint32(b[i/2:], uint32(w))
	}
	addr := netip.AddrFrom16(b)
	if len(hexAddr) == 8 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

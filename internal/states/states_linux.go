package states

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Snapshot returns every TCP socket of this network namespace, IPv4 and
// IPv6, in no particular order. Auto tries netlink and falls back to
// /proc when netlink fails before finding any socket.
func Snapshot(ctx context.Context, src Source) ([]Socket, error) {
	// One allocation of about the right size: growing a slice of 10,000
	// sockets by appending touches five times its size in fresh memory,
	// and for a one-shot command fresh pages are most of the cost.
	socks := make([]Socket, 0, sizeHint())
	if err := Scan(ctx, src, func(s Socket) { socks = append(socks, s) }); err != nil {
		return nil, err
	}
	return socks, nil
}

// Scan calls fn for every TCP socket of this network namespace, IPv4 and
// IPv6, in no particular order, as Snapshot finds them but without keeping
// them: counting needs no memory per socket. Auto tries netlink and falls
// back to /proc when netlink fails before finding any socket; a failure
// after some sockets were passed to fn is returned, so that fn never sees
// a socket twice.
func Scan(ctx context.Context, src Source, fn func(Socket)) error {
	switch src {
	case Netlink:
		_, err := scanNetlink(ctx, fn)
		return err
	case Proc:
		return scanProc(ctx, fn)
	case Auto, "":
		n, err := scanNetlink(ctx, fn)
		if err == nil || n > 0 || ctx.Err() != nil {
			return err
		}
		return scanProc(ctx, fn)
	}
	return fmt.Errorf("states: unknown source %q", src)
}

// sizeHint guesses how many TCP sockets a dump will find, from the
// kernel's counters in /proc/net/sockstat and sockstat6 (sockets in use
// and in TIME_WAIT), with a margin for sockets made meanwhile; 0 when
// they cannot be read.
func sizeHint() int {
	var buf [512]byte
	n := 0
	for _, f := range []struct{ name, prefix string }{
		{"/proc/net/sockstat", "TCP:"}, {"/proc/net/sockstat6", "TCP6:"},
	} {
		b, err := readSmall(f.name, buf[:])
		if err != nil {
			continue
		}
		n += sockstatCount(b, f.prefix, "inuse") + sockstatCount(b, f.prefix, "tw")
	}
	return n + n/16 + 16
}

// readSmall reads the start of a small file into buf.
func readSmall(name string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// sockstatCount returns the number after key on the line of
// /proc/net/sockstat that starts with prefix ("TCP: inuse 12 orphan 0 tw
// 3 ..."), or 0.
func sockstatCount(b []byte, prefix, key string) int {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == key {
				n, err := strconv.Atoi(fields[i+1])
				if err != nil || n < 0 {
					return 0
				}
				return min(n, 1<<22)
			}
		}
	}
	return 0
}

// scanProc reads /proc/net/tcp and /proc/net/tcp6; a missing tcp6
// (IPv6 disabled) is not an error.
func scanProc(ctx context.Context, fn func(Socket)) error {
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) && name == "/proc/net/tcp6" {
			continue
		}
		if err != nil {
			return fmt.Errorf("states: %w", err)
		}
		socks, err := ParseProc(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("states: %s: %w", name, err)
		}
		for _, s := range socks {
			fn(s)
		}
	}
	return nil
}

// netlinkTimeout bounds each read of a dump: the kernel answers at once,
// so a longer wait means something is wrong.
const netlinkTimeout = 5 * time.Second

// scanNetlink dumps TCP sockets through NETLINK_SOCK_DIAG: IPv4 and IPv6
// with one request of the older TCPDIAG_GETSOCK form (one walk of the
// kernel's tables), or, if the kernel refuses it before answering with
// any socket, one SOCK_DIAG_BY_FAMILY request per family. It returns how
// many sockets it passed to fn.
func scanNetlink(ctx context.Context, fn func(Socket)) (int, error) {
	n, err := dumpNetlink(ctx, [][]byte{diagRequestCompat(1)}, fn)
	if err == nil || n > 0 || ctx.Err() != nil {
		return n, err
	}
	return dumpNetlink(ctx, [][]byte{diagRequest(afInet, 1), diagRequest(afInet6, 2)}, fn)
}

// netlinkBufSize is the first size of the receive buffer: the kernel fills
// each read of a dump with at most 32 KiB of messages. A larger read
// grows the buffer (see dumpNetlink).
const netlinkBufSize = 32 << 10

// dumpNetlink sends each request in turn on one netlink socket and passes
// the sockets of its dump to fn; it returns how many. Request i must
// carry sequence number i+1.
func dumpNetlink(ctx context.Context, reqs [][]byte, fn func(Socket)) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return 0, fmt.Errorf("states: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(netlinkTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("states: netlink socket: %w", err)
	}
	count := 0
	counted := func(s Socket) { count++; fn(s) }
	buf := make([]byte, netlinkBufSize)
	for i, req := range reqs {
		seq := uint32(i + 1)
		if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return count, fmt.Errorf("states: netlink send: %w", err)
		}
		for done := false; !done; {
			if err := ctx.Err(); err != nil {
				return count, err
			}
			var n int
			n, buf, err = recvNetlink(fd, buf)
			if err != nil {
				return count, err
			}
			done, err = parseDiag(buf[:n], seq, counted)
			if err != nil {
				return count, err
			}
		}
	}
	return count, nil
}

// maxNetlinkRead bounds the buffer recvNetlink grows to.
const maxNetlinkRead = 16 << 20

// recvNetlink reads one datagram of a netlink dump into buf, first growing
// buf if the datagram waiting is larger, as iproute2 does: a read of no
// bytes with MSG_PEEK|MSG_TRUNC returns the datagram's full length, copies
// nothing and leaves it queued. It returns the bytes read and the buffer,
// grown or not.
func recvNetlink(fd int, buf []byte) (int, []byte, error) {
	n, _, err := unix.Recvfrom(fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
	if err != nil {
		return 0, buf, fmt.Errorf("states: netlink receive: %w", err)
	}
	if n > len(buf) {
		if n > maxNetlinkRead {
			return 0, buf, fmt.Errorf("states: netlink receive: a message of %d bytes, more than %d", n, maxNetlinkRead)
		}
		buf = make([]byte, n)
	}
	n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
	if err != nil {
		return 0, buf, fmt.Errorf("states: netlink receive: %w", err)
	}
	if flags&unix.MSG_TRUNC != 0 {
		return 0, buf, fmt.Errorf("states: netlink receive: message larger than %d bytes", len(buf))
	}
	return n, buf, nil
}

// Owners finds, for each socket inode, the process that holds it open, by
// reading the /proc/PID/fd links "socket:[INODE]". Processes this one may
// not look into are skipped quietly: as a normal user, only your own.
// When several processes share a socket, the first one found wins.
func Owners(ctx context.Context) (map[uint64]Owner, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("states: %w", err)
	}
	owners := make(map[uint64]Owner, sizeHint())
	w := ownerWalk{owners: owners, dirents: make([]byte, 32<<10), link: make([]byte, 64)}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w.add(pid)
	}
	return owners, nil
}

// ownerWalk is Owners' state: the map and two buffers reused for every
// process.
type ownerWalk struct {
	owners  map[uint64]Owner
	dirents []byte // getdents64 records of one /proc/PID/fd
	link    []byte // one readlinkat result
}

// add records the sockets pid holds. It reads the fd directory with
// getdents64 into one buffer and each link with readlinkat relative to
// the directory, naming the descriptor by the NUL-terminated name inside
// the buffer: with 10,000 descriptors these system calls are most of the
// time of -p, and nothing is allocated per descriptor.
func (w *ownerWalk) add(pid int) {
	dfd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return // gone, or not permitted
	}
	defer unix.Close(dfd)
	var prog string
	for {
		n, err := unix.Getdents(dfd, w.dirents)
		if err != nil || n <= 0 {
			return
		}
		for b := w.dirents[:n]; len(b) > 0; {
			var name []byte
			var ok bool
			name, b, ok = nextDirent(b)
			if !ok {
				return
			}
			if name == nil {
				continue // ".", "..", or not a link
			}
			n, err := readlinkat(dfd, &name[0], w.link)
			if err != nil {
				continue
			}
			inode, ok := socketInode(w.link[:n])
			if !ok {
				continue
			}
			if _, seen := w.owners[inode]; seen {
				continue
			}
			if prog == "" {
				comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
				prog = strings.TrimSpace(string(comm))
			}
			w.owners[inode] = Owner{PID: pid, Program: prog}
		}
	}
}

// The layout of struct linux_dirent64: d_ino (8 bytes), d_off (8),
// d_reclen (2), d_type (1), then d_name, NUL-terminated.
const (
	direntReclen = 16
	direntType   = 18
	direntName   = 19
	dtLnk        = 10 // DT_LNK
)

// nextDirent reads the first linux_dirent64 record of b. It returns the
// name of a symbolic link, NUL-terminated as the kernel wrote it (nil for
// anything else: ".", "..", other types), and the records after it. ok is
// false when b does not hold a whole record.
func nextDirent(b []byte) (name, rest []byte, ok bool) {
	if len(b) < direntName+1 {
		return nil, nil, false
	}
	reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
	if reclen < direntName+1 || reclen > len(b) {
		return nil, nil, false
	}
	rec, rest := b[:reclen], b[reclen:]
	end := bytes.IndexByte(rec[direntName:], 0)
	if end <= 0 || rec[direntType] != dtLnk {
		return nil, rest, end >= 0
	}
	return rec[direntName : direntName+end+1], rest, true
}

// readlinkat reads the link name (NUL-terminated) in directory dfd into
// buf, without copying name as unix.Readlinkat does.
func readlinkat(dfd int, name *byte, buf []byte) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// socketInode reads the inode of a descriptor link "socket:[INODE]".
func socketInode(link []byte) (uint64, bool) {
	const prefix = "socket:["
	if len(link) <= len(prefix)+1 || string(link[:len(prefix)]) != prefix || link[len(link)-1] != ']' {
		return 0, false
	}
	var inode uint64
	for _, c := range link[len(prefix) : len(link)-1] {
		if c < '0' || c > '9' || inode > (1<<64-1)/10-1 {
			return 0, false
		}
		inode = inode*10 + uint64(c-'0')
	}
	return inode, true
}

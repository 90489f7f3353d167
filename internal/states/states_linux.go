package states

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Snapshot returns every TCP socket of this network namespace, IPv4 and
// IPv6, in no particular order. Auto tries netlink and falls back to
// /proc when netlink fails.
func Snapshot(ctx context.Context, src Source) ([]Socket, error) {
	switch src {
	case Netlink:
		return snapshotNetlink(ctx)
	case Proc:
		return snapshotProc(ctx)
	case Auto, "":
		socks, err := snapshotNetlink(ctx)
		if err == nil || ctx.Err() != nil {
			return socks, err
		}
		return snapshotProc(ctx)
	}
	return nil, fmt.Errorf("states: unknown source %q", src)
}

// snapshotProc reads /proc/net/tcp and /proc/net/tcp6; a missing tcp6
// (IPv6 disabled) is not an error.
func snapshotProc(ctx context.Context) ([]Socket, error) {
	var all []Socket
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) && name == "/proc/net/tcp6" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("states: %w", err)
		}
		socks, err := ParseProc(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("states: %s: %w", name, err)
		}
		all = append(all, socks...)
	}
	return all, nil
}

// netlinkTimeout bounds each read of a dump: the kernel answers at once,
// so a longer wait means something is wrong.
const netlinkTimeout = 5 * time.Second

// snapshotNetlink dumps TCP sockets through NETLINK_SOCK_DIAG: IPv4 and
// IPv6 with one request of the older TCPDIAG_GETSOCK form (one walk of the
// kernel's tables), or, if the kernel refuses it, one SOCK_DIAG_BY_FAMILY
// request per family.
func snapshotNetlink(ctx context.Context) ([]Socket, error) {
	socks, err := dumpNetlink(ctx, [][]byte{diagRequestCompat(1)})
	if err == nil || ctx.Err() != nil {
		return socks, err
	}
	return snapshotByFamily(ctx)
}

// snapshotByFamily dumps AF_INET then AF_INET6 sockets with
// SOCK_DIAG_BY_FAMILY.
func snapshotByFamily(ctx context.Context) ([]Socket, error) {
	return dumpNetlink(ctx, [][]byte{diagRequest(afInet, 1), diagRequest(afInet6, 2)})
}

// dumpNetlink sends each request in turn on one netlink socket and
// collects the sockets of its dump. Request i must carry sequence number
// i+1.
func dumpNetlink(ctx context.Context, reqs [][]byte) ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return nil, fmt.Errorf("states: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(netlinkTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("states: netlink socket: %w", err)
	}
	var all []Socket
	buf := make([]byte, 256<<10)
	for i, req := range reqs {
		seq := uint32(i + 1)
		if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, fmt.Errorf("states: netlink send: %w", err)
		}
		for done := false; !done; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
			if err != nil {
				return nil, fmt.Errorf("states: netlink receive: %w", err)
			}
			if flags&unix.MSG_TRUNC != 0 {
				return nil, fmt.Errorf("states: netlink receive: message larger than %d bytes", len(buf))
			}
			done, err = parseDiag(buf[:n], seq, func(s Socket) { all = append(all, s) })
			if err != nil {
				return nil, err
			}
		}
	}
	return all, nil
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
	owners := make(map[uint64]Owner)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		addOwner(owners, pid)
	}
	return owners, nil
}

// addOwner records the sockets pid holds. It reads the fd directory
// unsorted and each link into one reused buffer relative to the
// directory: with 10,000 descriptors that is most of the time of -p.
func addOwner(owners map[uint64]Owner, pid int) {
	dir, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return // gone, or not permitted
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return
	}
	dfd := int(dir.Fd())
	var prog string
	link := make([]byte, 64)
	for _, name := range names {
		n, err := unix.Readlinkat(dfd, name, link)
		if err != nil {
			continue
		}
		inode, ok := socketInode(link[:n])
		if !ok {
			continue
		}
		if _, seen := owners[inode]; seen {
			continue
		}
		if prog == "" {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			prog = strings.TrimSpace(string(comm))
		}
		owners[inode] = Owner{PID: pid, Program: prog}
	}
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

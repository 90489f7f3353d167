package states

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// addOwner records the sockets pid holds.
func addOwner(owners map[uint64]Owner, pid int) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return // gone, or not permitted
	}
	var prog string
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") || !strings.HasSuffix(link, "]") {
			continue
		}
		inode, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64)
		if err != nil {
			continue
		}
		if _, seen := owners[inode]; seen {
			continue
		}
		if prog == "" {
			comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
			prog = strings.TrimSpace(string(comm))
		}
		owners[inode] = Owner{PID: pid, Program: prog}
	}
}

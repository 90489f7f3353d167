package states

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sock_diag multicast groups of socket-destroy notifications
// (SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY in
// linux/sock_diag.h), as bits of sockaddr_nl.nl_groups: group g is bit g-1.
const (
	groupTCPDestroy  = 1
	groupTCP6Destroy = 3
	destroyGroups    = 1<<(groupTCPDestroy-1) | 1<<(groupTCP6Destroy-1)
)

// destroyWatch receives a notification, an inet_diag_msg, each time the
// kernel frees a TCP socket: the end of a connection shorter than any
// sampling interval is seen too. The socket is non-blocking and served by
// Go's poller, so that Close wakes a pending read.
type destroyWatch struct {
	f *os.File
}

// openDestroyed subscribes to TCP socket-destroy notifications, IPv4 and
// IPv6. It fails where the kernel does not offer them or does not let
// this process join the groups.
func openDestroyed() (*destroyWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, netlinkSockDiag)
	if err != nil {
		return nil, fmt.Errorf("states: destroy notifications: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: destroyGroups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("states: destroy notifications: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20) // best effort: fewer lost in bursts
	return &destroyWatch{f: os.NewFile(uintptr(fd), "sock_diag destroy")}, nil
}

// run reads notifications until Close and hands each socket to fn, on the
// calling goroutine. Notifications the kernel could not queue (the socket
// buffer was full: ENOBUFS) are counted in lost.
func (d *destroyWatch) run(fn func(Socket)) (lost int, err error) {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("states: destroy notifications: %w", err)
	}
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, _, _, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
			return rerr != unix.EAGAIN
		})
		switch {
		case errors.Is(err, os.ErrClosed):
			return lost, nil
		case err != nil:
			return lost, fmt.Errorf("states: destroy notifications: %w", err)
		case errors.Is(rerr, syscall.ENOBUFS):
			lost++
			continue
		case rerr != nil:
			return lost, fmt.Errorf("states: destroy notifications: %w", rerr)
		}
		// Notifications carry sequence number 0.
		if _, err := parseDiag(buf[:n], 0, fn); err != nil {
			return lost, err
		}
	}
}

// Close stops run.
func (d *destroyWatch) Close() error { return d.f.Close() }

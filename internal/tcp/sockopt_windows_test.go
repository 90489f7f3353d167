package tcp

import "syscall"

// setRcvbuf sets a socket's receive buffer before it connects.
func setRcvbuf(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

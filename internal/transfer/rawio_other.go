//go:build !(linux && (amd64 || arm64))

package transfer

import (
	"net"
	"os"
)

// rawSock is the plain connection where raw system calls are not used
// (rawio_linux.go says why they are on 64-bit Linux).
type rawSock struct{ net.Conn }

func newRawSock(net.Conn) *rawSock { return nil }

// rawFile is the plain file where raw system calls are not used.
type rawFile struct{ *os.File }

func newRawFile(*os.File) *rawFile { return nil }

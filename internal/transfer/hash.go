package transfer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/netkit/netkit/internal/b3"
)

// hashWindow is how much of a file hashRange hashes between two calls of
// its tick.
const hashWindow = 32 << 20

// hashPiece is how much hashRange reads at a time: small enough that the
// bytes are still in the CPU cache when they are hashed.
const hashPiece = 256 << 10

// errShrank means a file got shorter while it was being read.
var errShrank = errors.New("file shrank while being read")

// hasher computes BLAKE3-256.
type hasher = b3.Hasher

// newHasher returns a BLAKE3-256 hasher with the fastest kernel this CPU
// has.
func newHasher() *hasher { return b3.New() }

// sum returns h's digest so far without changing its state.
func sum(h *hasher) [hashLen]byte {
	var out [hashLen]byte
	h.Sum(out[:0])
	return out
}

func hexHash(h [hashLen]byte) string { return hex.EncodeToString(h[:]) }

// hashRange feeds f's bytes [from, to) into h, reading them with pread
// into buf a piece at a time (a file that shrinks underneath gives
// errShrank). tick, if not nil, runs after each window of hashWindow
// bytes and stops the hash when it fails.
//
// Reading costs a copy that hashing through a mapping of the file would
// not, but on the VM the benchmarks ran on, hashing a mapped file cost
// twice the CPU of reading and hashing it (1.0 against 0.5 CPU s per GiB:
// docs/benchmarks.md, issue 19), likely the cost of mapping and walking
// a fresh page per 4 KiB there, which a reused buffer does not pay.
func hashRange(f *os.File, from, to int64, h *hasher, buf []byte, tick func() error) error {
	buf = buf[:min(len(buf), hashPiece)]
	r := fileReaderAt(f)
	for off := from; off < to; {
		n := min(hashWindow, to-off)
		if err := hashRead(r, off, n, h, buf); err != nil {
			return err
		}
		off += n
		if tick != nil {
			if err := tick(); err != nil {
				return err
			}
		}
	}
	return nil
}

// hashRead hashes f[off, off+n) with pread into buf.
func hashRead(f io.ReaderAt, off, n int64, h *hasher, buf []byte) error {
	for n > 0 {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), n)], off)
		h.Write(buf[:k])
		off, n = off+int64(k), n-int64(k)
		if err == io.EOF && n > 0 {
			return errShrank
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read: %w", err)
		}
	}
	return nil
}

package transfer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/blake3"
)

// hashWindow is how much of a file hashRange maps at a time; tick runs
// between windows.
const hashWindow = 32 << 20

// errShrank means a file got shorter while it was being read.
var errShrank = errors.New("file shrank while being read")

// hasher computes BLAKE3-256.
type hasher = blake3.Hasher

// newHasher returns a BLAKE3-256 hasher.
func newHasher() *hasher { return blake3.New() }

// sum returns h's digest so far without changing its state.
func sum(h *hasher) [hashLen]byte {
	var out [hashLen]byte
	h.Sum(out[:0])
	return out
}

func hexHash(h [hashLen]byte) string { return hex.EncodeToString(h[:]) }

// hashRange feeds f's bytes [from, to) into h. It maps the file a window
// at a time (no copy; a file that shrinks underneath turns into errShrank
// instead of a crash) and falls back to pread where mmap is not supported.
// tick, if not nil, runs between windows and stops the hash when it fails.
func hashRange(f *os.File, from, to int64, h *hasher, buf []byte, tick func() error) error {
	for off := from; off < to; {
		n := min(hashWindow, to-off)
		err := hashMapped(f, off, n, h)
		if errors.Is(err, errors.ErrUnsupported) {
			err = hashRead(f, off, n, h, buf)
		}
		if err != nil {
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
func hashRead(f *os.File, off, n int64, h *hasher, buf []byte) error {
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

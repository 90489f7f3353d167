//go:build linux

package transfer

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// hashMapped hashes f[off, off+n) through a read-only mapping. The file
// may shrink while mapped: the fault becomes a panic, recovered here. It
// returns an error wrapping errors.ErrUnsupported where the file cannot be
// mapped, and hashRange then reads it instead.
func hashMapped(f *os.File, off, n int64, h *hasher) (err error) {
	// Mappings start on a page boundary.
	pad := off % int64(os.Getpagesize())
	m, err := unix.Mmap(int(f.Fd()), off-pad, int(n+pad), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("mmap: %w (%w)", errors.ErrUnsupported, err)
	}
	if err != nil {
		return err
	}
	defer unix.Munmap(m)
	_ = unix.Madvise(m, unix.MADV_SEQUENTIAL)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = errShrank
		}
	}()
	h.Write(m[pad:])
	return nil
}

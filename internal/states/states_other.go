//go:build !linux

package states

import (
	"context"
	"fmt"
	"runtime"
)

// Snapshot is Linux only: elsewhere it returns an error wrapping
// ErrNotImplemented.
func Snapshot(context.Context, Source) ([]Socket, error) {
	return nil, notSupported()
}

// Scan is Linux only: elsewhere it returns an error wrapping
// ErrNotImplemented.
func Scan(context.Context, Source, func(Socket)) error {
	return notSupported()
}

// Owners is Linux only: elsewhere it returns an error wrapping
// ErrNotImplemented.
func Owners(context.Context) (map[uint64]Owner, error) {
	return nil, notSupported()
}

func notSupported() error {
	return fmt.Errorf("states: not supported on %s, only on linux: %w", runtime.GOOS, ErrNotImplemented)
}

// destroyWatch is Linux only.
type destroyWatch struct{}

func openDestroyed() (*destroyWatch, error)           { return nil, notSupported() }
func (d *destroyWatch) run(func(Socket)) (int, error) { return 0, nil }
func (d *destroyWatch) Close() error                  { return nil }

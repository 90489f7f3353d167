//go:build !linux

package transfer

import (
	"errors"
	"os"
)

// hashMapped is Linux only here; hashRange reads the file instead.
func hashMapped(*os.File, int64, int64, *hasher) error { return errors.ErrUnsupported }

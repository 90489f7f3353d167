package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// source is a manifest entry on the sender's side: where to read it.
type source struct {
	entry
	Path string // on the local file system
}

// walker lists what Send offers: each argument under its base name,
// directories recursively, symlinks skipped with a warning unless follow.
type walker struct {
	follow bool
	warn   func(name, reason string)
	out    []source
	seen   map[[2]uint64]bool // directories entered through symlinks (dev, ino), against loops
}

// walkPaths returns the entries for paths, in order: each directory before
// what it holds, names sorted within a directory.
func walkPaths(paths []string, follow bool, warn func(name, reason string)) ([]source, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("transfer: nothing to send")
	}
	w := &walker{follow: follow, warn: warn, seen: map[[2]uint64]bool{}}
	bases := map[string]string{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("transfer: %s: %w", p, err)
		}
		base := filepath.Base(abs)
		if base == string(filepath.Separator) {
			return nil, fmt.Errorf("transfer: %s: cannot send the root directory", p)
		}
		if prev, ok := bases[base]; ok {
			return nil, fmt.Errorf("transfer: %s and %s have the same name %q; send them separately", prev, p, base)
		}
		bases[base] = p
		if err := w.add(abs, base, true); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

// add lists path under name, recursing into directories.
func (w *walker) add(path, name string, top bool) error {
	if len(name) > maxNameLen {
		w.warn(name[:64]+"...", "path longer than 4096 bytes; skipped")
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil {
		if top {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // "no such file or directory", without "lstat PATH"
			}
			return fmt.Errorf("transfer: cannot send %s: %w", path, err)
		}
		w.warn(name, err.Error())
		return nil
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !w.follow {
			w.warn(name, "symlink skipped (use --follow to send what it points to)")
			return nil
		}
		if fi, err = os.Stat(path); err != nil {
			w.warn(name, "broken symlink skipped: "+err.Error())
			return nil
		}
		if fi.IsDir() {
			if key, ok := fileID(fi); ok {
				if w.seen[key] {
					w.warn(name, "symlink loop skipped")
					return nil
				}
				w.seen[key] = true
			}
		}
	}
	e := entry{Name: filepath.ToSlash(name), Mode: uint32(fi.Mode().Perm()), MTime: fi.ModTime().UnixNano()}
	switch {
	case fi.Mode().IsRegular():
		e.Kind, e.Size = kindFile, fi.Size()
		w.out = append(w.out, source{entry: e, Path: path})
		return nil
	case fi.IsDir():
		e.Kind = kindDir
		w.out = append(w.out, source{entry: e, Path: path})
		return w.addDir(path, name)
	}
	if top {
		return fmt.Errorf("transfer: %s: not a regular file or directory", path)
	}
	w.warn(name, "not a regular file or directory; skipped")
	return nil
}

func (w *walker) addDir(path, name string) error {
	des, err := os.ReadDir(path)
	if err != nil {
		w.warn(name, err.Error())
	}
	for _, de := range des {
		if strings.ContainsRune(de.Name(), '/') {
			continue // cannot happen on Unix
		}
		if err := w.add(filepath.Join(path, de.Name()), name+"/"+de.Name(), false); err != nil {
			return err
		}
	}
	return nil
}

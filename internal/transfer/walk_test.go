package transfer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWalkPaths(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "top/b.txt"), []byte("b"), 0o644, time.Now())
	writeFile(t, filepath.Join(root, "top/a/x.txt"), []byte("x"), 0o600, time.Now())
	writeFile(t, filepath.Join(root, "elsewhere/target.txt"), []byte("t"), 0o644, time.Now())
	os.Symlink(filepath.Join(root, "elsewhere/target.txt"), filepath.Join(root, "top/link.txt"))
	os.Symlink(filepath.Join(root, "top"), filepath.Join(root, "top/a/loop"))
	writeFile(t, filepath.Join(root, "other/top/c.txt"), []byte("c"), 0o644, time.Now())

	names := func(srcs []source) []string {
		var out []string
		for _, s := range srcs {
			out = append(out, s.Name)
		}
		return out
	}
	var warnings []string
	warn := func(name, why string) { warnings = append(warnings, name+": "+why) }

	srcs, err := walkPaths([]string{filepath.Join(root, "top")}, false, warn)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(srcs), []string{"top", "top/a", "top/a/x.txt", "top/b.txt"}; !slices.Equal(got, want) {
		t.Errorf("walk = %q, want %q", got, want)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "symlink skipped") {
		t.Errorf("warnings = %q, want the two symlinks skipped", warnings)
	}

	warnings = nil
	srcs, err = walkPaths([]string{filepath.Join(root, "top")}, true, warn)
	if err != nil {
		t.Fatal(err)
	}
	got := names(srcs)
	if !slices.Contains(got, "top/link.txt") || !slices.Contains(got, "top/a/loop") {
		t.Errorf("walk with follow = %q, want the symlinked file and directory", got)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "symlink loop") }) {
		t.Errorf("warnings = %q, want a symlink loop stopped", warnings)
	}

	if _, err := walkPaths([]string{filepath.Join(root, "top"), filepath.Join(root, "other/top")}, false, warn); err == nil || !strings.Contains(err.Error(), "same name") {
		t.Errorf("two arguments named top: %v, want a refusal", err)
	}
	if _, err := walkPaths([]string{filepath.Join(root, "missing")}, false, warn); err == nil {
		t.Errorf("a missing path was accepted")
	}
	if _, err := walkPaths([]string{"/"}, false, warn); err == nil {
		t.Errorf("the root directory was accepted")
	}
}

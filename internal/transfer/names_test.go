package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"a", ""},
		{"dir/sub/file.txt", ""},
		{"café/naïve 日本.txt", ""},
		{".hidden/..dots../x.", ""},
		{"", "empty name"},
		{"/abs", "absolute path"},
		{"a/../b", `".." path component`},
		{"a/./b", `"." path component`},
		{"a//b", "empty path component"},
		{"a\x00", "NUL character in name"},
		{"a\tb", "control character in name"},
		{"a\x7f", "control character in name"},
		{"\xc3", "name is not valid UTF-8"},
		{strings.Repeat("x", 256), "path component longer than 255 bytes"},
		{strings.Repeat("x/", 2048) + "x", "name too long"},
		{".netkit-partial", "reserved name .netkit-partial"},
		{".netkit-partialx/y", ""},
	}
	for _, tc := range tests {
		if got := checkName(tc.name); got != tc.want {
			t.Errorf("checkName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := checkClassicName("a/b"); got != "not a base name" {
		t.Errorf("checkClassicName(a/b) = %q", got)
	}
}

func TestManifestConflicts(t *testing.T) {
	f := func(n string) entry { return entry{Kind: kindFile, Name: n} }
	d := func(n string) entry { return entry{Kind: kindDir, Name: n} }
	tests := []struct {
		name    string
		entries []entry
		want    map[int]string
	}{
		{"clean", []entry{d("a"), f("a/b"), f("c")}, map[int]string{}},
		{"duplicate", []entry{f("x"), f("y"), f("x")}, map[int]string{0: "duplicate name in manifest", 2: "duplicate name in manifest"}},
		{"file and dir", []entry{d("x"), f("x")}, map[int]string{0: "duplicate name in manifest", 1: "duplicate name in manifest"}},
		{"file as parent", []entry{f("x"), f("x/y/z")}, map[int]string{0: "both a file and a directory in the manifest", 1: "parent x is a file in the manifest"}},
	}
	for _, tc := range tests {
		if got := manifestConflicts(tc.entries); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPartialPath(t *testing.T) {
	if got := partialPath("a/b.txt"); got != ".netkit-partial/a/b.txt.part" {
		t.Errorf("partialPath = %q", got)
	}
	long := "dir/" + strings.Repeat("y", 255)
	got := partialPath(long)
	if base := filepath.Base(got); len(base) > 255 || !strings.HasPrefix(got, ".netkit-partial/dir/") {
		t.Errorf("partialPath of a 255-byte name = %q", got)
	}
}

// TestHashRange checks the mapped hash against a plain one, across window
// and page boundaries, and that a file shorter than the range gives
// errShrank instead of a crash.
func TestHashRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := randomBytes(3, hashWindow+12345)
	writeFile(t, path, data, 0o644, time.Now())
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range [][2]int64{{0, 0}, {0, 1}, {4095, 4097}, {5000, hashWindow + 10}} {
		h := newHasher()
		h.Write(data[:r[0]])
		if err := hashRange(f, r[0], r[1], h, make([]byte, 4096), nil); err != nil {
			t.Fatalf("hashRange%v: %v", r, err)
		}
		want := newHasher()
		want.Write(data[:r[1]])
		if sum(h) != sum(want) {
			t.Errorf("hashRange%v differs from hashing the bytes", r)
		}
	}
	short := filepath.Join(t.TempDir(), "short")
	writeFile(t, short, data[:8192], 0o644, time.Now())
	sf, err := os.Open(short)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if err := hashRange(sf, 0, 1<<20, newHasher(), make([]byte, 4096), nil); !errors.Is(err, errShrank) {
		t.Errorf("hashing past the end: %v, want errShrank", err)
	}
}

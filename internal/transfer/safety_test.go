package transfer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUnsafeNamesRefused drives the receiver with a hand-written manifest
// of names the real sender never produces, and checks that each is
// refused with a clear reason, that the safe ones are accepted, and that
// nothing is written outside --dir or for a refused name.
func TestUnsafeNamesRefused(t *testing.T) {
	checkGoroutines(t)
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "plainfile"), []byte("x"), 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dir})

	mtime := time.Now().UnixNano()
	file := func(name string) entry { return entry{Kind: kindFile, Name: name, Mode: 0o644, MTime: mtime, Size: 3} }
	tests := []struct {
		e    entry
		want string // "" for accepted
	}{
		{file("/etc/passwd"), "absolute path"},
		{file(".."), `".." path component`},
		{file("../x"), `".." path component`},
		{file("a/../../x"), `".." path component`},
		{file("./x"), `"." path component`},
		{file("a//b"), "empty path component"},
		{file("a/"), "empty path component"},
		{file("nul\x00byte"), "NUL character in name"},
		{file("bell\x07"), "control character in name"},
		{file("esc\x1b[31m"), "control character in name"},
		{file("c1\u0085"), "control character in name"},
		{file("bad\xffutf8"), "name is not valid UTF-8"},
		{file(strings.Repeat("n", 256)), "path component longer than 255 bytes"},
		{file("link/x"), "parent link is a symlink"},
		{file("link/deeper/x"), "parent link is a symlink"},
		{file("plainfile/x"), "parent plainfile is not a directory"},
		{file(".netkit-partial/evil.part"), "reserved name .netkit-partial"},
		{file("dup"), "duplicate name in manifest"},
		{file("dup"), "duplicate name in manifest"},
		{file("both"), "both a file and a directory in the manifest"},
		{file("both/inner"), "parent both is a file in the manifest"},
		{entry{Kind: kindDir, Name: "d", Mode: 0o755, MTime: mtime}, ""},
		{file("d/ok"), ""},
		{file("ok.txt"), ""},
	}
	entries := make([]entry, len(tests))
	for i, tc := range tests {
		entries[i] = tc.e
	}
	s := dialRaw(t, r.addr)
	answers := s.manifest(entries)
	for i, tc := range tests {
		a := answers[i]
		switch {
		case tc.want == "" && a.Verdict == vReject:
			t.Errorf("%q: rejected (%s), want accepted", tc.e.Name, a.Reason)
		case tc.want != "" && (a.Verdict != vReject || a.Reason != tc.want):
			t.Errorf("%q: verdict %d reason %q, want rejected with %q", tc.e.Name, a.Verdict, a.Reason, tc.want)
		}
	}
	// Send the accepted files, then end.
	for i, tc := range tests {
		if tc.want != "" || tc.e.Kind != kindFile {
			continue
		}
		s.frame(fData, appendDataHdr(nil, uint32(i), 0))
		s.write([]byte("abc"))
		h := newHasher()
		h.Write([]byte("abc"))
		s.frame(fTrailer, appendResult(nil, result{Index: uint32(i), OK: true, Hash: sum(h)}))
		if typ, p := s.next(); typ != fAck {
			t.Fatalf("frame type %d (%q), want an ack", typ, p)
		} else if res, _ := decodeResult(p); !res.OK {
			t.Fatalf("ack for %q: %s", tc.e.Name, res.Reason)
		}
	}
	s.frame(fEnd, nil)
	if typ, _ := s.next(); typ != fDone {
		t.Fatalf("frame type %d, want done", typ)
	}
	r.connEnded(t, 1)

	if got := listDir(t, outside); len(got) != 0 {
		t.Errorf("written outside --dir: %q", got)
	}
	got := listDir(t, dir)
	want := []string{"d", "d/ok", "link", "ok.txt", "plainfile"}
	if !slices.Equal(got, want) {
		t.Errorf("--dir holds %q, want %q", got, want)
	}
	if rejects := r.log.all(EventReject); len(rejects) != len(tests)-3 {
		t.Errorf("%d reject events, want %d", len(rejects), len(tests)-3)
	}
	for _, ev := range r.log.all(EventReject) {
		if strings.ContainsAny(ev.File, "\x00\x07\x1b") {
			t.Errorf("reject event shows a raw control character: %q", ev.File)
		}
	}
}

// TestSymlinkSwapAfterCheck replaces a directory by a symlink to outside
// after the receiver accepted a file under it: os.Root keeps the write
// inside --dir.
func TestSymlinkSwapAfterCheck(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	r := startReceiver(t, RecvConfig{Dir: dir})
	s := dialRaw(t, r.addr)
	mtime := time.Now().UnixNano()
	answers := s.manifest([]entry{
		{Kind: kindDir, Name: "sub", Mode: 0o755, MTime: mtime},
		{Kind: kindFile, Name: "sub/f", Mode: 0o644, MTime: mtime, Size: 3},
	})
	if answers[1].Verdict != vSend {
		t.Fatalf("answer %+v, want send", answers[1])
	}
	if err := os.Remove(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	s.frame(fData, appendDataHdr(nil, 1, 0))
	s.write([]byte("abc"))
	h := newHasher()
	h.Write([]byte("abc"))
	s.frame(fTrailer, appendResult(nil, result{Index: 1, OK: true, Hash: sum(h)}))
	typ, p := s.next()
	res, _ := decodeResult(p)
	if typ != fAck || res.OK {
		t.Errorf("frame type %d %+v, want a failed ack", typ, res)
	}
	t.Logf("receiver: %s", res.Reason)
	if got := listDir(t, outside); len(got) != 0 {
		t.Errorf("written outside --dir: %q", got)
	}
}

package transfer

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

// TestExistingFiles covers what the receiver does with a file that is
// already there: the same content is a skip; different content is
// refused unless Overwrite, which replaces it.
func TestExistingFiles(t *testing.T) {
	newData := randomBytes(3, 100_000)
	sameSize := randomBytes(4, 100_000)
	tests := []struct {
		name      string
		existing  []byte
		overwrite bool
		wantKind  string // the sender's event for the file
		wantData  []byte // in --dir afterwards
	}{
		{"identical", newData, false, EventSkip, newData},
		{"identical with overwrite", newData, true, EventSkip, newData},
		{"same size differs", sameSize, false, EventReject, sameSize},
		{"other size", []byte("old"), false, EventReject, []byte("old")},
		{"same size differs, overwrite", sameSize, true, EventDone, newData},
		{"other size, overwrite", []byte("old"), true, EventDone, newData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			path := filepath.Join(src, "f.bin")
			writeFile(t, path, newData, 0o644, time.Unix(1500000000, 0))
			writeFile(t, filepath.Join(dst, "f.bin"), tc.existing, 0o600, time.Unix(1400000000, 0))
			r := startReceiver(t, RecvConfig{Dir: dst, Overwrite: tc.overwrite})
			sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}})
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			ev := log.wait(t, time.Second, tc.wantKind, 1, nil)
			if tc.wantKind == EventReject && ev.Reason != reasonExists {
				t.Errorf("reject reason %q, want %q", ev.Reason, reasonExists)
			}
			r.connEnded(t, 1)
			if got := mustRead(t, filepath.Join(dst, "f.bin")); !bytes.Equal(got, tc.wantData) {
				t.Errorf("--dir/f.bin has %d bytes, not the expected content", len(got))
			}
			wantRejected := 0
			if tc.wantKind == EventReject {
				wantRejected = 1
			}
			if sum.Rejected != wantRejected {
				t.Errorf("summary %+v, want %d rejected", sum, wantRejected)
			}
			if tc.wantKind == EventReject {
				if rev := r.log.wait(t, time.Second, EventReject, 1, nil); rev.Reason != reasonExists {
					t.Errorf("receiver's reject reason %q, want %q", rev.Reason, reasonExists)
				}
			}
		})
	}
}

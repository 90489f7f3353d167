package transfer

import (
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTLS sends over TLS with the code the receiver printed, and is
// refused with any other code.
func TestTLS(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(8, 5<<20+3) // large enough for the pipelined path
	path := filepath.Join(src, "secret.bin")
	writeFile(t, path, data, 0o600, time.Unix(1600000000, 0))
	small := filepath.Join(src, "small.txt")
	writeFile(t, small, []byte("hello"), 0o644, time.Unix(1600000000, 0))
	r := startReceiver(t, RecvConfig{Dir: dst, TLS: true})
	code := r.log.wait(t, time.Second, EventListening, 1, nil).Code
	if !regexp.MustCompile(`^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$`).MatchString(code) {
		t.Fatalf("code %q, want four groups of four base32 characters", code)
	}

	wrong := []byte(code)
	wrong[0] = 'A' + (wrong[0]-'A'+1)%26
	if wrong[0] > 'Z' || wrong[0] < 'A' {
		wrong[0] = 'A'
	}
	for _, bad := range []string{string(wrong), "AAAA-AAAA-AAAA-AAAA"} {
		if bad == code {
			continue
		}
		_, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}, TLS: true, Code: bad})
		if !errors.Is(err, ErrCodeMismatch) {
			t.Errorf("send with code %s: %v, want ErrCodeMismatch", bad, err)
		}
	}
	if got := listDir(t, dst); len(got) != 0 {
		t.Fatalf("--dir holds %q after refused connections", got)
	}

	// Codes are read without regard to case or dashes.
	sum, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path, small}, TLS: true, Code: " " + lowerNoDash(code)})
	if err != nil {
		t.Fatalf("send with the right code: %v", err)
	}
	if sum.Verified != 2 {
		t.Errorf("summary %+v, want 2 verified", sum)
	}
	r.connEnded(t, 1)
	if got := mustRead(t, filepath.Join(dst, "secret.bin")); !bytes.Equal(got, data) {
		t.Errorf("received file differs from the sent one")
	}
}

func lowerNoDash(code string) string {
	var b []byte
	for _, c := range []byte(code) {
		if c != '-' {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
	}
	return string(b)
}

// TestTLSMismatch: one end with TLS, the other without, both get a clear
// error.
func TestTLSMismatch(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "f.txt")
	writeFile(t, path, []byte("x"), 0o644, time.Now())

	withTLS := startReceiver(t, RecvConfig{Dir: t.TempDir(), TLS: true})
	_, err, _ := send2(t, withTLS.addr, SendConfig{Paths: []string{path}})
	if err == nil || !strings.Contains(err.Error(), "--tls") {
		t.Errorf("plain send to a TLS receiver: %v, want a hint about --tls", err)
	}

	plain := startReceiver(t, RecvConfig{Dir: t.TempDir()})
	_, err, _ = send2(t, plain.addr, SendConfig{Paths: []string{path}, TLS: true, Code: "AAAA-AAAA-AAAA-AAAA"})
	if err == nil || !strings.Contains(err.Error(), "--tls") {
		t.Errorf("TLS send to a plain receiver: %v, want a hint about --tls", err)
	}
	ev := plain.log.wait(t, 5*time.Second, EventError, 1, nil)
	if !strings.Contains(ev.Reason, "without --tls") {
		t.Errorf("plain receiver's error %q, want it to name --tls", ev.Reason)
	}
}

package transfer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// classicBuild holds testdata/classic/{sender,receiver}, built once per
// test binary into a directory TestMain removes.
var classicBuild struct {
	once sync.Once
	dir  string
	err  error
}

// buildClassic builds the classic programs, or skips when there is no go
// command.
func buildClassic(t *testing.T) (sender, receiver string) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the classic programs: %v", err)
	}
	b := &classicBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "netkit-classic-"); b.err != nil {
			return
		}
		for _, prog := range []string{"sender", "receiver"} {
			cmd := exec.Command(goCmd, "build", "-o", filepath.Join(b.dir, prog), "./testdata/classic/"+prog)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go build %s: %v\n%s", prog, err, out)
				return
			}
		}
	})
	if b.err != nil {
		t.Fatalf("building the classic programs: %v", b.err)
	}
	return filepath.Join(b.dir, "sender"), filepath.Join(b.dir, "receiver")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if classicBuild.dir != "" {
		os.RemoveAll(classicBuild.dir)
	}
	os.Exit(code)
}

// TestClassicToStudentReceiver: netkit send --classic to a minimal
// classic receiver.
func TestClassicToStudentReceiver(t *testing.T) {
	_, recvProg := buildClassic(t)
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(21, 3<<20+5)
	path := filepath.Join(src, "report.pdf")
	writeFile(t, path, data, 0o644, time.Now())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, recvProg, "127.0.0.1:0", dst)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("receiver's address: %v (%s)", err, stderr.String())
	}
	sum, err, _ := send2(t, strings.TrimSpace(addr), SendConfig{Paths: []string{path}, Classic: true})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("receiver: %v (%s)", err, stderr.String())
	}
	if sum.Files != 1 || sum.Bytes != int64(len(data)) {
		t.Errorf("summary %+v, want 1 file of %d bytes", sum, len(data))
	}
	if got := mustRead(t, filepath.Join(dst, "report.pdf")); !bytes.Equal(got, data) {
		t.Errorf("received file differs from the sent one")
	}
}

// TestClassicFromStudentSender: a minimal classic sender to netkit recv
// --classic, then a second send of the same name refused.
func TestClassicFromStudentSender(t *testing.T) {
	sendProg, _ := buildClassic(t)
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(22, 5<<20+1)
	path := filepath.Join(src, "notes.txt")
	writeFile(t, path, data, 0o600, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst, Classic: true})

	run := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, sendProg, r.addr, path).CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil {
		t.Fatalf("sender: %v (%s)", err, out)
	}
	r.connEnded(t, 1)
	if got := mustRead(t, filepath.Join(dst, "notes.txt")); !bytes.Equal(got, data) {
		t.Errorf("received file differs from the sent one")
	}
	fi, err := os.Stat(filepath.Join(dst, "notes.txt"))
	if err != nil || fi.Mode().Perm() != classicMode {
		t.Errorf("received file: %v %v, want mode %v", fi, err, os.FileMode(classicMode))
	}

	// The program reads two bytes: "er" of "error: ...", not "ok".
	if out, err := run(); err == nil {
		t.Errorf("second send of the same name succeeded (%s)", out)
	}
	r.connEnded(t, 2)
	if ev := r.log.wait(t, time.Second, EventReject, 1, nil); ev.Reason != reasonExists {
		t.Errorf("reject reason %q, want %q", ev.Reason, reasonExists)
	}
}

// TestClassicNetkitBothEnds sends with netkit's classic sender to netkit's
// classic receiver, and checks the receiver's refusals and limits.
func TestClassicNetkitBothEnds(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randomBytes(23, 2<<20)
	path := filepath.Join(src, "a.bin")
	writeFile(t, path, data, 0o644, time.Now())
	r := startReceiver(t, RecvConfig{Dir: dst, Classic: true, MaxSize: 3 << 20})
	sum, err, _ := send2(t, r.addr, SendConfig{Paths: []string{path}, Classic: true})
	if err != nil || sum.Files != 1 {
		t.Fatalf("send: %+v, %v", sum, err)
	}
	r.connEnded(t, 1)
	if got := mustRead(t, filepath.Join(dst, "a.bin")); !bytes.Equal(got, data) {
		t.Errorf("received file differs from the sent one")
	}

	// The same name again: refused, as a reject, not an error.
	sum, err, log := send2(t, r.addr, SendConfig{Paths: []string{path}, Classic: true})
	if err != nil || sum.Rejected != 1 {
		t.Errorf("second send: %+v, %v; want 1 rejected", sum, err)
	}
	if ev := log.wait(t, time.Second, EventReject, 1, nil); ev.Reason != reasonExists {
		t.Errorf("reject reason %q, want %q", ev.Reason, reasonExists)
	}
	r.connEnded(t, 2)

	// Too large: stopped, told, and nothing kept.
	big := filepath.Join(src, "big.bin")
	writeFile(t, big, randomBytes(24, 4<<20), 0o644, time.Now())
	_, err, _ = send2(t, r.addr, SendConfig{Paths: []string{big}, Classic: true})
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("send of a file over --max-size: %v, want \"too large\"", err)
	}
	r.connEnded(t, 3)
	if _, err := os.Stat(filepath.Join(dst, "big.bin")); !os.IsNotExist(err) {
		t.Errorf("big.bin published: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, partialDirName)); !os.IsNotExist(err) {
		t.Errorf("partial file left: %v", err)
	}
}

// TestClassicUnsafeNames writes names by hand to netkit's classic
// receiver: each is refused with a reason, and nothing is written.
func TestClassicUnsafeNames(t *testing.T) {
	dst := t.TempDir()
	r := startReceiver(t, RecvConfig{Dir: dst, Classic: true})
	tests := []struct{ name, want string }{
		{"../escape", `".." path component`},
		{"sub/name", "not a base name"},
		{"..", `".." path component`},
		{"/etc/passwd", "absolute path"},
		{"a/b", "not a base name"},
		{"nul\x00", "NUL character in name"},
		{"li\nne", "control character in name"},
		{"line\n\n", "control character in name"}, // one trailing newline is dropped, not two
		{strings.Repeat("x", 256), "name longer than 255 bytes"},
	}
	for i, tc := range tests {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte(tc.name))
		reply, _ := io.ReadAll(conn)
		conn.Close()
		if got, want := string(reply), "error: "+tc.want+"\n"; got != want {
			t.Errorf("name %q: reply %q, want %q", tc.name, got, want)
		}
		r.connEnded(t, i+1)
	}
	if got := listDir(t, dst); len(got) != 0 {
		t.Errorf("--dir holds %q, want nothing", got)
	}
}

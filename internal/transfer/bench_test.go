//go:build unix

package transfer

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSendFile sends one file of NETKIT_BENCH_SIZE bytes (1 GiB by
// default) from /dev/shm to /dev/shm over loopback, sender and receiver
// in this process, with verification on. Besides the rate it reports the
// process CPU time per GiB (both ends together). The source file is
// random data made once (NETKIT_BENCH_FILE to use another).
//
//	go test -run '^$' -bench SendFile -benchtime 5x ./internal/transfer
func BenchmarkSendFile(b *testing.B) {
	for _, mode := range []string{"open", "code", "tls"} {
		b.Run(mode, func(b *testing.B) { benchSend(b, mode) })
	}
}

// BenchmarkSeal measures the sealed stream's AES-256-GCM on one core:
// records of maxRecord bytes sealed and opened in memory.
//
//	go test -run '^$' -bench Seal ./internal/transfer
func BenchmarkSeal(b *testing.B) {
	key := make([]byte, 32)
	g, err := newGCM(key)
	if err != nil {
		b.Fatal(err)
	}
	p := make([]byte, maxRecord)
	out := make([]byte, 0, maxRecord+sealTagLen)
	// cpu-s/GiB: process CPU time per GiB, which a loaded machine does
	// not inflate the way it does wall time.
	perGiB := func(b *testing.B, cpu time.Duration) {
		b.ReportMetric(cpu.Seconds()/(float64(b.N)*maxRecord/(1<<30)), "cpu-s/GiB")
	}
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(maxRecord)
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			out = g.Seal(out[:0], nonce(uint64(i)), p, nil)
		}
		perGiB(b, cpuTime()-cpu0)
	})
	sealed := g.Seal(nil, nonce(0), p, nil)
	b.Run("open", func(b *testing.B) {
		b.SetBytes(maxRecord)
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := g.Open(out[:0], nonce(0), sealed, nil); err != nil {
				b.Fatal(err)
			}
		}
		perGiB(b, cpuTime()-cpu0)
	})
	b.Run("blake3", func(b *testing.B) { // for comparison: the hash both ends already pay
		b.SetBytes(maxRecord)
		h := newHasher()
		cpu0 := cpuTime()
		for b.Loop() {
			h.Write(p)
		}
		perGiB(b, cpuTime()-cpu0)
	})
}

func benchSend(b *testing.B, mode string) {
	src := benchSource(b)
	fi, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	dst, err := os.MkdirTemp("/dev/shm", "netkit-bench-dst-")
	if err != nil {
		b.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(dst)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var code string
	listening := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Receive(ctx, ln, RecvConfig{Dir: dst, TLS: mode == "tls", Open: mode == "open", Events: func(ev Event) {
			if ev.Kind == EventListening {
				code = ev.Code
				close(listening)
			}
		}})
	}()
	defer func() { cancel(); <-done }()
	<-listening
	cfg := SendConfig{Addr: ln.Addr().String(), Paths: []string{src}, TLS: mode == "tls", Open: mode == "open", Code: code}

	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		b.StopTimer()
		os.Remove(filepath.Join(dst, filepath.Base(src)))
		b.StartTimer()
		if _, err := Send(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(fi.Size())/(1<<30)), "cpu-s/GiB")
}

// benchSource returns the file to send: NETKIT_BENCH_FILE, or random data
// of NETKIT_BENCH_SIZE bytes in /dev/shm, made once and kept.
func benchSource(b *testing.B) string {
	if p := os.Getenv("NETKIT_BENCH_FILE"); p != "" {
		return p
	}
	size := int64(1 << 30)
	if s := os.Getenv("NETKIT_BENCH_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("NETKIT_BENCH_SIZE=%q: want a number of bytes", s)
		}
		size = n
	}
	p := filepath.Join("/dev/shm", "netkit-bench-src-"+strconv.FormatInt(size, 10))
	if fi, err := os.Stat(p); err == nil && fi.Size() == size {
		return p
	}
	f, err := os.Create(p)
	if err != nil {
		b.Skipf("no /dev/shm: %v", err)
	}
	defer f.Close()
	chunk := randomBytes(7, 1<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		chunk[0]++ // no two chunks alike
		if _, err := f.Write(chunk[:min(int64(len(chunk)), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPake measures one whole code exchange, both ends, in memory:
// what each connection costs before its first frame.
//
//	go test -run '^$' -bench Pake ./internal/transfer
func BenchmarkPake(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s, err := newPake(testCode, true)
		if err != nil {
			b.Fatal(err)
		}
		r, _ := newPake(testCode, false)
		if err := r.update(s.mine); err != nil {
			b.Fatal(err)
		}
		if err := s.update(r.mine); err != nil {
			b.Fatal(err)
		}
		ks, _ := s.keys(r.mine)
		kr, _ := r.keys(s.mine)
		if ks.confirmR != kr.confirmR {
			b.Fatal("keys differ")
		}
	}
}

// BenchmarkSenderHash measures the sender's sealed data path alone (read
// the file, hash, seal, write into a loopback connection that a goroutine
// drains) with the hash on the same goroutine (serial) and on its own
// (piped, what Send does when GOMAXPROCS > 1), at GOMAXPROCS 1 and 2: the
// gain of a second core for the hash, and its cost on one. The source is
// benchSource's file (NETKIT_BENCH_SIZE, 1 GiB by default).
//
//	go test -run '^$' -bench SenderHash -benchtime 3x ./internal/transfer
func BenchmarkSenderHash(b *testing.B) {
	src := benchSource(b)
	for _, procs := range []int{1, 2} {
		for _, piped := range []bool{false, true} {
			name := "procs=" + strconv.Itoa(procs) + "/serial"
			if piped {
				name = "procs=" + strconv.Itoa(procs) + "/piped"
			}
			b.Run(name, func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				benchSenderPath(b, src, piped)
			})
		}
	}
}

func benchSenderPath(b *testing.B, path string, piped bool) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	drained := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			drained <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Read(buf); err != nil {
				drained <- nil
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	sc, err := newSealedConn(conn, conn, key, key)
	if err != nil {
		b.Fatal(err)
	}
	s := &sender{conn: sc}
	src := source{entry: entry{Kind: kindFile, Name: "bench", Size: fi.Size()}, Path: path}
	b.SetBytes(fi.Size())
	cpu0 := cpuTime()
	for b.Loop() {
		h := newHasher()
		var err error
		if piped {
			_, err = s.copyBodyPiped(f, src, 0, h)
		} else {
			_, err = s.copyBodySerial(f, src, 0, h)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	conn.Close()
	if err := <-drained; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(fi.Size())/(1<<30)), "cpu-s/GiB")
}

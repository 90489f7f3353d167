// Command probe measures how fast this machine can move, and verify, one
// file over a TCP connection, to guide the data path of netkit send/recv.
// It is a benchmark tool, not part of netkit.
//
// Run the receiver first, then the sender, with the same -mode:
//
//	go run ./bench/transfer/probe recv -mode b -listen 127.0.0.1:9100 -out /dev/shm/out
//	go run ./bench/transfer/probe send -mode b -addr 127.0.0.1:9100 /dev/shm/in
//
// Modes (bench/compare-transfer.sh runs each as its own "tool"):
//
//	a  sender io.Copy(conn, file) (sendfile), receiver io.Copy(file, conn) (splice); no hash
//	b  as a, plus BLAKE3 on both ends in a parallel goroutine that preads the
//	   page cache: the sender hashes its file, the receiver hashes what has
//	   landed in its file, behind the splice; the sender sends its hash after
//	   the data and the receiver compares
//	c  sender as b; the receiver reads into one reused 1 MiB buffer, hashes it
//	   and writes it (no splice)
//	d  as b, but both hashers read the page cache through mmap (8 MiB
//	   windows, MAP_POPULATE) instead of pread: no copy into a buffer
//	e  as d with XXH3-128 (github.com/zeebo/xxh3) instead of BLAKE3
//	f  as c with XXH3-128; the sender hashes through mmap
//
// Wire format of modes b to e: 8-byte big-endian size, the bytes, the
// 32-byte digest of the bytes (XXH3-128 zero-padded). Mode a: the bytes,
// then EOF. The sender waits for the receiver's verdict byte.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zeebo/blake3"
	"github.com/zeebo/xxh3"
)

const (
	bufSize   = 1 << 20 // read/hash buffer
	spliceRun = 8 << 20 // receiver splices this much between hasher wake-ups
	mmapRun   = 8 << 20 // mmap window of modes d and e
)

// digester is the part of a hash the probe needs.
type digester interface {
	io.Writer
	Digest() []byte // 32 bytes
}

type blake3Digester struct{ *blake3.Hasher }

func (h blake3Digester) Digest() []byte { return h.Sum(nil) }

type xxh3Digester struct{ *xxh3.Hasher }

func (h xxh3Digester) Digest() []byte {
	b := h.Sum128().Bytes()
	return append(b[:], make([]byte, 16)...)
}

// newDigester and useMmap are set from -mode.
var (
	newDigester = func() digester { return blake3Digester{blake3.New()} }
	useMmap     bool
)

func setMode(mode string) error {
	switch mode {
	case "a", "b", "c":
	case "d":
		useMmap = true
	case "e", "f":
		useMmap = true
		newDigester = func() digester { return xxh3Digester{xxh3.New()} }
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe send|recv -mode a|b|c ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "send":
		err = sendMain(os.Args[2:])
	case "recv":
		err = recvMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func sendMain(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	mode := fs.String("mode", "a", "a, b or c")
	addr := fs.String("addr", "127.0.0.1:9100", "receiver")
	fs.Parse(args)
	if err := setMode(*mode); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("send: want one file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	conn, err := dialRetry(*addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()

	start := time.Now()
	if *mode == "a" {
		if _, err := io.Copy(conn, f); err != nil { // sendfile
			return fmt.Errorf("send: %w", err)
		}
		return conn.CloseWrite()
	}

	// Hash the file from the page cache while sendfile streams it.
	sumc := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		sum, err := hashFile(f, st.Size(), nil)
		sumc <- sum
		errc <- err
	}()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(st.Size()))
	if _, err := conn.Write(hdr[:]); err != nil {
		return err
	}
	// io.Copy from an *os.File to a *net.TCPConn is sendfile; a SectionReader
	// would not be, so the file offset (0) does the work.
	if _, err := io.Copy(conn, f); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	sum := <-sumc
	if err := <-errc; err != nil {
		return err
	}
	if _, err := conn.Write(sum); err != nil {
		return err
	}
	if err := conn.CloseWrite(); err != nil {
		return err
	}
	// Wait for the receiver's verdict byte.
	var ok [1]byte
	if _, err := io.ReadFull(conn, ok[:]); err != nil || ok[0] != 'Y' {
		return fmt.Errorf("send: receiver did not confirm the hash (%v)", err)
	}
	fmt.Fprintf(os.Stderr, "probe send %s: %d bytes in %v, blake3 %s\n",
		*mode, st.Size(), time.Since(start).Round(time.Millisecond), hex.EncodeToString(sum))
	return nil
}

func recvMain(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ExitOnError)
	mode := fs.String("mode", "a", "a, b or c")
	listen := fs.String("listen", "127.0.0.1:9100", "address")
	out := fs.String("out", "", "output file")
	fs.Parse(args)
	if err := setMode(*mode); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	c, err := ln.Accept()
	ln.Close()
	if err != nil {
		return err
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	f, err := os.OpenFile(*out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	start := time.Now()
	var sum []byte
	var size int64
	switch *mode {
	case "a":
		_, err = io.Copy(f, conn) // splice
		return err
	case "b", "d", "e":
		size, sum, err = recvSplice(conn, f)
	case "c", "f":
		size, sum, err = recvBuffered(conn, f)
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		return err
	}
	want := make([]byte, 32)
	if _, err := io.ReadFull(conn, want); err != nil {
		return fmt.Errorf("recv: trailer: %w", err)
	}
	if !bytes.Equal(sum, want) {
		conn.Write([]byte{'N'})
		return fmt.Errorf("recv: hash mismatch: got %x, sender %x", sum, want)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	conn.Write([]byte{'Y'})
	fmt.Fprintf(os.Stderr, "probe recv %s: %d bytes in %v, verified blake3 %x\n",
		*mode, size, time.Since(start).Round(time.Millisecond), sum)
	return nil
}

// recvSplice splices the connection into f in runs of spliceRun bytes and
// hashes what has landed with pread in a parallel goroutine.
func recvSplice(conn *net.TCPConn, f *os.File) (int64, []byte, error) {
	size, err := readSize(conn)
	if err != nil {
		return 0, nil, err
	}
	var landed atomic.Int64
	wake := make(chan struct{}, 1)
	sumc := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		sum, err := hashFile(f, size, func(n int64) int64 {
			for {
				if l := landed.Load(); l >= n || l == size {
					return l
				}
				<-wake
			}
		})
		sumc <- sum
		errc <- err
	}()
	var done int64
	for done < size {
		n := min(int64(spliceRun), size-done)
		// *os.File.ReadFrom of an *io.LimitedReader over a TCPConn splices.
		m, err := io.CopyN(f, conn, n)
		done += m
		landed.Store(done)
		select {
		case wake <- struct{}{}:
		default:
		}
		if err != nil {
			landed.Store(size) // let the hasher finish; the result is discarded
			select {
			case wake <- struct{}{}:
			default:
			}
			<-errc
			return done, nil, fmt.Errorf("recv: at %d: %w", done, err)
		}
	}
	sum := <-sumc
	return size, sum, <-errc
}

// recvBuffered reads into one reused buffer, hashes it and writes it.
func recvBuffered(conn *net.TCPConn, f *os.File) (int64, []byte, error) {
	size, err := readSize(conn)
	if err != nil {
		return 0, nil, err
	}
	h := newDigester()
	buf := make([]byte, bufSize)
	var done int64
	for done < size {
		n := min(int64(len(buf)), size-done)
		m, err := conn.Read(buf[:n])
		if m > 0 {
			h.Write(buf[:m])
			if _, werr := f.Write(buf[:m]); werr != nil {
				return done, nil, werr
			}
			done += int64(m)
		}
		if err != nil {
			return done, nil, fmt.Errorf("recv: at %d: %w", done, err)
		}
	}
	return size, h.Digest(), nil
}

// hashFile hashes size bytes of f in pieces, with pread into one buffer or,
// with useMmap, through mmap windows. If avail is not nil, it is called
// before each piece with the end offset wanted and returns how far the file
// is ready (blocking until it has moved).
func hashFile(f *os.File, size int64, avail func(want int64) int64) ([]byte, error) {
	h := newDigester()
	piece := int64(bufSize)
	var buf []byte
	if useMmap {
		piece = mmapRun
	} else {
		buf = make([]byte, bufSize)
	}
	var off, ready int64 = 0, size
	if avail != nil {
		ready = 0
	}
	for off < size {
		n := min(piece, size-off)
		if avail != nil && ready < off+n {
			ready = avail(off + n)
			n = min(n, ready-off)
		}
		if useMmap {
			// off stays a multiple of mmapRun: avail returns at least off+n
			// unless the file is complete.
			m, err := syscall.Mmap(int(f.Fd()), off, int(n), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
			if err != nil {
				return nil, fmt.Errorf("hash: mmap at %d: %w", off, err)
			}
			h.Write(m)
			syscall.Munmap(m)
			off += n
			continue
		}
		m, err := f.ReadAt(buf[:n], off)
		h.Write(buf[:m])
		off += int64(m)
		if err != nil && !(errors.Is(err, io.EOF) && off == size) {
			return nil, fmt.Errorf("hash at %d: %w", off, err)
		}
	}
	return h.Digest(), nil
}

func readSize(conn *net.TCPConn) (int64, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return 0, fmt.Errorf("recv: header: %w", err)
	}
	return int64(binary.BigEndian.Uint64(hdr[:])), nil
}

func dialRetry(addr string, d time.Duration) (*net.TCPConn, error) {
	deadline := time.Now().Add(d)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

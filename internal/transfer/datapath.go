package transfer

import (
	"bytes"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
)

// The receiver's data paths (docs/transfer.md has the measurements):
//
//   - plain TCP: splice(2) moves the bytes from the socket to the partial
//     file through a pipe, without a copy through user space, while a
//     second goroutine hashes what has been written from the page cache;
//   - sealed records (the code) and TLS: the connection is read into 1 MiB
//     buffers (sealed records are opened in place there) and a second
//     goroutine hashes (TLS only: sealed records need no hash on this
//     end, see fileHasher) and writes them, leaving out blocks of zeros (so
//     sparse files keep their holes); the reading goroutine opens the
//     next records meanwhile, so that with two cores the hash runs on
//     the second;
//   - with one core (GOMAXPROCS 1: a receiver pinned to one core by
//     taskset), and for small files, the bytes are read, hashed and
//     written in turn by one goroutine: a second would only add thread
//     switches on that core.

const (
	chunkSize   = 1 << 20
	pipeBuffers = 3       // buffers in flight between reader and writer
	pipeMinSize = 4 << 20 // smaller files are read, hashed and written in turn
	hashBehind  = 8 << 20 // the spliced path hashes in steps of this much
	// pieceSize is how much one goroutine reads, hashes and writes in turn
	// (receiveSerial, the sender's copyBody): a sealed record's worth,
	// so that the bytes are still in the core's L2 cache (1 MiB on the
	// benchmark machine) for the hash and the write after the read.
	pieceSize = maxRecord
)

// oneP reports whether Go code runs on one P (GOMAXPROCS 1), as in a
// process pinned to one core.
func oneP() bool { return runtime.GOMAXPROCS(0) == 1 }

// sockReader returns what reads c: a raw reader where rawio_linux.go
// applies, else c.
func sockReader(c net.Conn) io.Reader {
	if s := newRawSock(c); s != nil {
		return s
	}
	return c
}

// sockWriter returns what writes c: a raw writer where rawio_linux.go
// applies, else c.
func sockWriter(c net.Conn) io.Writer {
	if s := newRawSock(c); s != nil {
		return s
	}
	return c
}

// fileReaderAt returns what reads f at offsets: raw system calls where
// rawio_linux.go applies (one P), else f.
func fileReaderAt(f *os.File) io.ReaderAt {
	if r := newRawFile(f); r != nil {
		return r
	}
	return f
}

// fileWriterAt returns what writes f at offsets: raw system calls where
// rawio_linux.go applies (one P), else f.
func fileWriterAt(f *os.File) io.WriterAt {
	if r := newRawFile(f); r != nil {
		return r
	}
	return f
}

// chunk is a buffer of file data bound for offset off.
type chunk struct {
	buf []byte
	off int64
}

// diskWriter hashes chunks and writes them to a file on its own
// goroutine, and hands the buffers back. After a failure it keeps taking
// chunks, without writing, until the reader notices failed and stops.
type diskWriter struct {
	f      *os.File
	h      *hasher     // owned by run until done is closed; nil for none
	work   chan chunk  // closed by the reader when it has no more
	free   chan []byte // buffers the reader may fill
	failed atomic.Bool
	err    error         // the first write error, read after done
	done   chan struct{} // closed when run returns
}

func (w *diskWriter) run() {
	defer close(w.done)
	for c := range w.work {
		if w.h != nil {
			w.h.Write(c.buf)
		}
		if w.err == nil {
			if err := writeNonZero(w.f, c.buf, c.off); err != nil {
				w.err = err
				w.failed.Store(true)
			}
		}
		w.free <- c.buf[:cap(c.buf)]
	}
}

// receiveBody reads the file's bytes from off to its size, hashing them
// into h (unless h is nil: sealed records) and writing the blocks that
// are not all zeros. It returns the bytes read; every byte read is in the
// file unless the error is a diskError.
func (rc *recvConn) receiveBody(f *os.File, e entry, off int64, h *hasher) (int64, error) {
	if e.Size-off < pipeMinSize {
		return rc.receiveSerial(f, e, off, h)
	}
	if tcp, ok := rc.conn.(*net.TCPConn); ok && canSplice {
		return rc.receiveSpliced(tcp, f, e, off, h)
	}
	if oneP() {
		return rc.receiveSerial(f, e, off, h)
	}
	if rc.bufs == nil {
		rc.bufs = make(chan []byte, pipeBuffers)
		for range pipeBuffers {
			rc.bufs <- make([]byte, chunkSize)
		}
	}
	w := &diskWriter{f: f, h: h, work: make(chan chunk, pipeBuffers), free: rc.bufs, done: make(chan struct{})}
	go w.run()
	tk := newFileTicker(rc.srv.em, rc.peer, e.Name, e.Size)
	pos := off
	var rerr error
	for pos < e.Size && !w.failed.Load() {
		buf := <-rc.bufs
		c := chunk{buf: buf[:min(int64(len(buf)), e.Size-pos)], off: pos}
		rc.readDeadline()
		n, err := io.ReadFull(rc.br, c.buf)
		c.buf = c.buf[:n] // on a failed read, still keep what came
		w.work <- c
		pos += int64(n)
		if err != nil {
			rerr = rc.connErr(err)
			break
		}
		rc.at(&tk, pos)
	}
	close(w.work)
	<-w.done
	if w.err != nil {
		return pos - off, &diskError{name: e.Name, err: w.err}
	}
	return pos - off, rerr
}

// receiveSerial is receiveBody without the writer goroutine.
func (rc *recvConn) receiveSerial(f *os.File, e entry, off int64, h *hasher) (int64, error) {
	fw := fileWriterAt(f)
	buf := rc.buffer()
	tk := newFileTicker(rc.srv.em, rc.peer, e.Name, e.Size)
	pos := off
	for pos < e.Size {
		// Take what comes once a piece's worth is there: with sealed
		// records, one record opened in place.
		c := buf[:min(int64(len(buf)), e.Size-pos)]
		rc.readDeadline()
		n, rerr := io.ReadAtLeast(rc.br, c, min(len(c), pieceSize))
		c = c[:n] // on a failed read, still keep what came
		if h != nil {
			h.Write(c)
		}
		if err := writeNonZero(fw, c, pos); err != nil {
			return pos - off, &diskError{name: e.Name, err: err}
		}
		pos += int64(n)
		if rerr != nil {
			return pos - off, rc.connErr(rerr)
		}
		rc.at(&tk, pos)
	}
	return pos - off, nil
}

// writeNonZero writes p at off, leaving out the 4 KiB blocks that are
// all zeros: past the end of a partial file they read back as zeros
// anyway, and a sparse file keeps its holes. Runs of data blocks go out
// in one write each (random data is one write per chunk).
func writeNonZero(f io.WriterAt, p []byte, off int64) error {
	const block = 4096
	for start := 0; start < len(p); {
		for start < len(p) && isZeroBlock(p[start:min(start+block, len(p))]) {
			start += block
		}
		end := start
		for end < len(p) && !isZeroBlock(p[end:min(end+block, len(p))]) {
			end += block
		}
		end = min(end, len(p))
		if end > start {
			if _, err := f.WriteAt(p[start:end], off+int64(start)); err != nil {
				return err
			}
		}
		start = end
	}
	return nil
}

func isZeroBlock(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

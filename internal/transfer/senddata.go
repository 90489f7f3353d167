package transfer

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"sync/atomic"
)

var errHashStopped = errors.New("hash stopped")

// sendAll sends every accepted file, in manifest order.
func (s *sender) sendAll(ctx context.Context) error {
	for i, src := range s.srcs {
		if src.Kind != kindFile || s.answers[i].Verdict == vReject {
			continue
		}
		if err := s.sendFile(i); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// sendFile acts on the receiver's answer for file i: resume after a
// matching prefix (else restart from 0), or compare with the receiver's
// existing file and skip, refuse or replace it. It returns an error only
// when the connection cannot go on.
func (s *sender) sendFile(i int) error {
	src, a := s.srcs[i], s.answers[i]
	f, err := os.Open(src.Path)
	if err == nil {
		if err = sameFile(f, src); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return s.failLocal(i, err)
	}
	defer f.Close()
	h := newHasher()
	if a.Verdict == vCheck {
		return s.sendChecked(i, f, h, a)
	}
	off := a.Offset
	if off > 0 {
		if err := hashRange(f, 0, off, h, s.buffer(), s.tick); err != nil {
			return s.failLocal(i, err)
		}
		if sum(h) != a.Hash {
			off = 0 // the receiver's partial file is not a prefix of ours
			h.Reset()
		}
	}
	return s.sendData(i, f, off, h)
}

func (s *sender) sendChecked(i int, f *os.File, h *hasher, a answer) error {
	src := s.srcs[i]
	if err := hashRange(f, 0, src.Size, h, s.buffer(), s.tick); err != nil {
		return s.failLocal(i, err)
	}
	full := sum(h)
	switch {
	case full == a.Hash:
		s.sum.Skipped++
		s.em.emit(Event{Kind: EventSkip, File: src.Name, Size: src.Size, Hash: hexHash(full), Reason: "already there (same size and hash)"})
		return s.writeSkip(skip{Index: uint32(i), Why: skipIdentical})
	case !a.Overwrite:
		s.sum.Rejected++
		s.em.emit(Event{Kind: EventReject, File: src.Name, Reason: reasonExists})
		return s.writeSkip(skip{Index: uint32(i), Why: skipDiffers})
	}
	// Replace it. The trailer is the hash of the bytes sent, hashed again
	// as they go: the file may have changed since it was hashed above, and
	// a receiver of sealed records trusts the trailer without hashing.
	h.Reset()
	return s.sendData(i, f, 0, h)
}

// failLocal reports a file the sender could not read and tells the
// receiver, unless the failure was the connection's.
func (s *sender) failLocal(i int, err error) error {
	if s.werr != nil {
		return s.werr
	}
	s.sum.Failed++
	reason := "cannot read: " + err.Error()
	s.em.emit(Event{Kind: EventError, File: s.srcs[i].Name, Reason: reason})
	return s.writeSkip(skip{Index: uint32(i), Why: skipFailed, Reason: reason})
}

func (s *sender) writeSkip(sk skip) error {
	s.writeFrame(fSkip, appendSkip(nil, sk))
	return s.flush()
}

// sendData sends file i from off: a DATA frame, the bytes, and a trailer
// with the hash of the whole file, computed into h (which holds [0,off))
// while the bytes go out. Through a buffer (sealed records, TLS) it
// hashes the very bytes it writes: a receiver of sealed records relies on
// that and does not hash them again. Beside sendfile (--open) it hashes
// the same range from the page cache, and the receiver hashes too.
func (s *sender) sendData(i int, f *os.File, off int64, h *hasher) error {
	src := s.srcs[i]
	s.em.emit(Event{Kind: EventStart, File: src.Name, Size: src.Size, Offset: off})
	s.writeFrame(fData, appendDataHdr(nil, uint32(i), off))
	if err := s.flush(); err != nil {
		return err
	}
	var changed error
	var err error
	if s.tcp != nil {
		changed, err = s.sendfileBody(f, src, off, h)
	} else {
		changed, err = s.copyBody(f, src, off, h)
	}
	if err != nil {
		return err
	}
	s.sentData++
	tr := result{Index: uint32(i), OK: changed == nil}
	switch {
	case changed != nil:
		tr.Reason = "file changed while being sent: " + changed.Error()
	default:
		tr.Hash = sum(h)
	}
	s.writeFrame(fTrailer, appendResult(nil, tr))
	return s.flush()
}

// sendfileBody moves the bytes with sendfile (no copy through user
// space) while a second goroutine hashes the same range from the page
// cache. changed is set when the file shrank; the missing bytes are sent
// as zeros to keep the stream in step.
func (s *sender) sendfileBody(f *os.File, src source, off int64, h *hasher) (changed, err error) {
	var hashErr error
	var stop atomic.Bool
	done := make(chan struct{})
	if h == nil {
		close(done)
	} else {
		go func() {
			defer close(done)
			hashErr = hashRange(f, off, src.Size, h, s.buffer(), func() error {
				if stop.Load() {
					return errHashStopped
				}
				return nil
			})
		}()
	}
	defer func() { stop.Store(true); <-done }()
	pos, err := s.sendfile(f, src, off)
	if err != nil {
		return nil, err
	}
	if pos < src.Size {
		return errShrank, s.pad(src.Size - pos)
	}
	<-done
	return hashErr, nil
}

// copyBody reads, hashes and writes through a buffer: the path for
// sealed records and TLS. With more than one core it hands the hash to a
// second goroutine (copyBodyPiped).
func (s *sender) copyBody(f *os.File, src source, off int64, h *hasher) (changed, err error) {
	if h != nil && src.Size-off >= pipeMinSize && runtime.GOMAXPROCS(0) > 1 {
		return s.copyBodyPiped(f, src, off, h)
	}
	return s.copyBodySerial(f, src, off, h)
}

// copyBodySerial reads, hashes and writes a piece at a time on this
// goroutine.
func (s *sender) copyBodySerial(f *os.File, src source, off int64, h *hasher) (changed, err error) {
	buf := s.buffer()[:pieceSize]
	tk := s.ticker(src)
	fr := fileReaderAt(f)
	for pos := off; pos < src.Size; {
		chunk := buf[:min(int64(len(buf)), src.Size-pos)]
		n, short, changed, err := s.sendPiece(fr, chunk, pos, src, func(p []byte) {
			if h != nil {
				h.Write(p)
			}
		})
		if short {
			return changed, err
		}
		pos += int64(n)
		tk.at(pos)
		if s.cfg.afterPiece != nil {
			s.cfg.afterPiece(pos)
		}
	}
	return nil, nil
}

// sendPiece reads chunk from f at pos, hands what it read to hash and
// writes it. short reports that the read fell short (the file shrank or
// failed while sent): then changed and err are copyBody's results, the
// rest of the file's size having been padded so the stream stays in step.
// A write error is returned with short set too.
func (s *sender) sendPiece(f io.ReaderAt, chunk []byte, pos int64, src source, hash func([]byte)) (n int, short bool, changed, err error) {
	n, rerr := f.ReadAt(chunk, pos)
	hash(chunk[:n])
	s.writeDeadline()
	if _, err := s.conn.Write(chunk[:n]); err != nil {
		return n, true, nil, s.writeErr(err)
	}
	if n < len(chunk) {
		if rerr == nil || rerr == io.EOF {
			rerr = errShrank
		}
		return n, true, rerr, s.pad(src.Size - pos - int64(n))
	}
	return n, false, nil, nil
}

// copyBodyPiped is copyBody with the hash on its own goroutine: while
// one core seals and writes a buffer, the other hashes it, both reading
// the same bytes. A buffer is read into again only once it is hashed.
func (s *sender) copyBodyPiped(f *os.File, src source, off int64, h *hasher) (changed, err error) {
	if s.bufs == nil {
		s.bufs = make([][]byte, pipeBuffers)
		for i := range s.bufs {
			s.bufs[i] = make([]byte, chunkSize)
		}
	}
	hp := startHashPipe(h, len(s.bufs))
	defer hp.stop()
	tk := s.ticker(src)
	for i, pos := 0, off; pos < src.Size; i++ {
		if i >= len(s.bufs) {
			hp.wait() // buffer i % len(s.bufs) is hashed: free again
		}
		chunk := s.bufs[i%len(s.bufs)][:min(chunkSize, src.Size-pos)]
		n, short, changed, err := s.sendPiece(f, chunk, pos, src, hp.add)
		if short {
			return changed, err
		}
		pos += int64(n)
		tk.at(pos)
		if s.cfg.afterPiece != nil {
			s.cfg.afterPiece(pos)
		}
	}
	return nil, nil
}

// hashPipe hashes buffers, in order, on a goroutine of its own. The
// goroutine is owned by whoever calls startHashPipe, which must call stop.
type hashPipe struct {
	work    chan []byte   // buffers to hash; closed by stop
	hashed  chan struct{} // one token per buffer hashed
	done    chan struct{} // closed when the goroutine returns
	stopped bool
}

// startHashPipe starts hashing into h; at most n buffers may wait to be
// hashed or to be collected with wait.
func startHashPipe(h *hasher, n int) *hashPipe {
	p := &hashPipe{work: make(chan []byte, n), hashed: make(chan struct{}, n), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for b := range p.work {
			h.Write(b)
			p.hashed <- struct{}{}
		}
	}()
	return p
}

// add queues b; b must not change until wait has returned for it.
func (p *hashPipe) add(b []byte) { p.work <- b }

// wait returns when the oldest buffer not yet waited for is hashed.
func (p *hashPipe) wait() { <-p.hashed }

// stop waits until every buffer added is hashed and the goroutine has
// returned; h then holds them all. Calling it again does nothing.
func (p *hashPipe) stop() {
	if !p.stopped {
		p.stopped = true
		close(p.work)
		<-p.done
	}
}

// ticker reports progress from what went into the socket, only where the
// receiver reports none (classic); elsewhere readAcks shows what the
// receiver has.
func (s *sender) ticker(src source) *fileTicker {
	if !s.localProgress {
		return nil
	}
	tk := newFileTicker(s.em, "", src.Name, src.Size)
	return &tk
}

// pad sends n zero bytes in place of data the file no longer has.
func (s *sender) pad(n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		s.writeDeadline()
		if _, err := s.conn.Write(zeros[:k]); err != nil {
			return s.writeErr(err)
		}
		n -= k
	}
	return nil
}

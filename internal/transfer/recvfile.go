package transfer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// reasonExists is shown on both ends: it says who must do what.
const reasonExists = "exists; replacing it needs --overwrite on the receiving side (netkit recv --overwrite)"

// zeros is compared against received blocks (see writeNonZero) and sent
// in place of bytes a file lost while being sent.
var zeros [1 << 20]byte

// diskError is a failure to write on the receiver's disk. The partial
// file is removed: a disk-full error must give the space back.
type diskError struct {
	name string
	err  error
}

func (e *diskError) Error() string {
	if errors.Is(e.err, syscall.ENOSPC) || errors.Is(e.err, syscall.EDQUOT) {
		return "disk full writing " + e.name
	}
	return "writing " + e.name + ": " + e.err.Error()
}

func (e *diskError) Unwrap() error { return e.err }

// decide returns the receiver's answer for entry i, creating accepted
// directories and claiming and reserving space for accepted files.
func (rc *recvConn) decide(ctx context.Context, i int, e entry, conflict string, avail int64) answer {
	reject := func(why string) answer { return answer{Index: uint32(i), Verdict: vReject, Reason: why} }
	if why := checkName(e.Name); why != "" {
		return reject(why)
	}
	if conflict != "" {
		return reject(conflict)
	}
	if why := rc.srv.checkParents(e.Name); why != "" {
		return reject(why)
	}
	if e.Kind == kindDir {
		created, err := rc.srv.makeDir(e.Name)
		if err != nil {
			return reject(err.Error())
		}
		rc.files[i] = fileState{state: stRejected, verdict: vDir, created: created}
		return answer{Index: uint32(i), Verdict: vDir}
	}
	if max := rc.srv.cfg.MaxSize; max > 0 && e.Size > max {
		return reject(fmt.Sprintf("too large: %s, --max-size is %s", spaceString(e.Size), spaceString(max)))
	}
	if why := rc.claim(ctx, e.Name); why != "" {
		return reject(why)
	}
	rc.claimed = append(rc.claimed, e.Name)
	a, need := rc.offer(ctx, i, e)
	if a.Verdict == vReject {
		return a
	}
	if left, ok := rc.srv.reserve(need, avail); !ok {
		delete(rc.prefixes, i)
		return reject(fmt.Sprintf("not enough space: need %s, have %s", spaceString(need), spaceString(left)))
	}
	rc.reserved += need
	rc.files[i].state, rc.files[i].verdict, rc.files[i].offset = stPending, a.Verdict, a.Offset
	return a
}

// takeoverAfter is how long a connection holding a name must have moved
// nothing before a new connection from the same host takes the name over
// (a sender stopped with Ctrl-C and started again).
const takeoverAfter = 2 * time.Second

// claim claims name for this connection. When another connection has
// it, from the same host and stalled for takeoverAfter, that connection
// is ended and the name taken over; otherwise claim says why not.
func (rc *recvConn) claim(ctx context.Context, name string) string {
	other := rc.srv.claim(name, rc)
	if other == nil {
		return ""
	}
	idle := time.Since(time.Unix(0, other.moved.Load()))
	after := cmp.Or(rc.srv.cfg.takeover, takeoverAfter)
	if sameHost(other.peer, rc.peer) && idle >= after {
		other.cancel()
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-other.done:
		case <-t.C:
		case <-ctx.Done():
		}
		if rc.srv.claim(name, rc) == nil {
			rc.srv.em.emit(Event{Kind: EventWarning, Peer: rc.peer, File: safeText(name),
				Reason: fmt.Sprintf("took over from the earlier connection %s, idle for %v", other.peer, idle.Round(time.Second))})
			return ""
		}
	}
	if idle >= time.Second {
		left := max(rc.srv.cfg.Hold-idle, time.Second).Round(time.Second)
		return fmt.Sprintf("an earlier transfer of this file from %s is still open (no data for %v); retry in %v", other.peer, idle.Round(time.Second), left)
	}
	return "being received from another sender (" + other.peer + ")"
}

// sameHost reports whether two host:port addresses have the same host.
func sameHost(a, b string) bool {
	ha, _, errA := net.SplitHostPort(a)
	hb, _, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && ha == hb
}

// offer looks at what is already there: an identical-size file to check,
// a partial file to resume, or nothing. need is the bytes to reserve.
func (rc *recvConn) offer(ctx context.Context, i int, e entry) (a answer, need int64) {
	a = answer{Index: uint32(i), Verdict: vReject}
	root, overwrite := rc.srv.root, rc.srv.cfg.Overwrite
	fi, err := root.Lstat(e.Name)
	switch {
	case err == nil && fi.IsDir():
		a.Reason = "exists as a directory"
		return a, 0
	case err == nil && fi.Mode().IsRegular() && fi.Size() == e.Size:
		h := newHasher()
		if err := rc.hashFile(ctx, e.Name, e.Size, h); err != nil {
			a.Reason = "cannot read the existing file: " + err.Error()
			return a, 0
		}
		a.Verdict, a.Hash, a.Overwrite = vCheck, sum(h), overwrite
		if overwrite {
			need = e.Size
		}
		return a, need
	case err == nil && !overwrite:
		a.Reason = reasonExists
		return a, 0
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		a.Reason = "cannot check the existing file: " + err.Error()
		return a, 0
	}
	pname := partialPath(e.Name)
	if why := rc.srv.checkParents(pname); why != "" {
		a.Reason = why
		return a, 0
	}
	a.Verdict = vSend
	pfi, err := root.Lstat(pname)
	if err != nil || !pfi.Mode().IsRegular() || pfi.Size() == 0 || pfi.Size() > e.Size {
		return a, e.Size // nothing usable: start from 0 (the partial is truncated)
	}
	h := newHasher()
	if err := rc.hashFile(ctx, pname, pfi.Size(), h); err != nil {
		return a, e.Size
	}
	a.Offset, a.Hash = pfi.Size(), sum(h)
	if len(rc.prefixes) < maxPrefixes && !sealed(rc.conn) {
		if rc.prefixes == nil {
			rc.prefixes = map[int]*hasher{}
		}
		rc.prefixes[i] = h
	}
	return a, e.Size - a.Offset
}

// hashFile feeds the first size bytes of name into h.
func (rc *recvConn) hashFile(ctx context.Context, name string, size int64, h *hasher) error {
	f, err := rc.srv.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return hashRange(f, 0, size, h, rc.buffer(), func() error { return ctx.Err() })
}

func (rc *recvConn) buffer() []byte {
	if rc.buf == nil {
		rc.buf = make([]byte, 1<<20)
	}
	return rc.buf
}

// receiveFile takes one file's data and trailer and publishes the file
// when its hash matches. It returns an error only when the connection
// cannot go on.
func (rc *recvConn) receiveFile(ctx context.Context, i int, off int64) error {
	e := rc.entries[i]
	rc.cur = progressReport{Index: uint32(i), Offset: off, Pos: off}
	rc.srv.em.emit(Event{Kind: EventStart, Peer: rc.peer, File: e.Name, Size: e.Size, Offset: off})
	h := rc.fileHasher(ctx, i, off) // nil with sealed records
	f, err := rc.srv.openPartial(e.Name, off)
	if err != nil {
		// Nothing written: read past the data to stay in step.
		if derr := rc.discard(e.Size - off); derr != nil {
			return derr
		}
		if _, terr := rc.readTrailer(i); terr != nil {
			return terr
		}
		return rc.fail(ctx, i, "cannot write the partial file: "+err.Error())
	}
	n, err := rc.receiveBody(f, e, off, h)
	if err != nil {
		f.Close()
		if errors.As(err, new(*diskError)) {
			rc.srv.removePartial(e.Name)
			return fmt.Errorf("transfer: %s: %w", rc.peer, err)
		}
		rc.sum.Bytes += n // kept in the partial file for resume
		return err
	}
	tr, err := rc.readTrailer(i)
	if err != nil {
		f.Close()
		rc.sum.Bytes += n
		return err
	}
	got := tr.Hash // with sealed records, the bytes the sender hashed
	if h != nil {
		got = sum(h)
	}
	var reason, told string // why the file is discarded: here, and to the sender
	switch {
	case !tr.OK:
		// The sender's own words go back to it without "sender: ".
		reason, told = "sender: "+tr.Reason+"; discarded", tr.Reason+"; the receiver discarded it"
	case got != tr.Hash:
		reason = fmt.Sprintf("checksum mismatch: received data hashes to %s, the sender's file to %s; discarded", hexHash(got), hexHash(tr.Hash))
	default:
		if err := rc.srv.publish(f, e); err != nil {
			reason = err.Error()
		}
	}
	if reason != "" {
		f.Close()
		rc.srv.removePartial(e.Name) // its bytes are not counted: they are gone
		return rc.failTold(ctx, i, reason, cmp.Or(told, reason))
	}
	rc.sum.Bytes += n
	rc.sum.Files++
	rc.sum.Verified++
	rc.srv.em.emit(Event{Kind: EventDone, Peer: rc.peer, File: e.Name, Size: e.Size, Hash: hexHash(got)})
	rc.cur.Pos = e.Size
	if err := rc.w.send(ctx, appendFrame(nil, fProgress, appendProgress(nil, rc.cur))); err != nil {
		return err
	}
	return rc.w.send(ctx, appendFrame(nil, fAck, appendResult(nil, result{Index: uint32(i), OK: true, Hash: got})))
}

// fileHasher returns the hasher for file i's data from off, holding the
// hash of [0,off) when resuming, or nil when the connection carries
// sealed records. Those need no hash on this end: every record opened
// under the session key, in sequence, so the bytes that arrive are the
// ones the sender sealed, and the sender's trailer is the hash of exactly
// the bytes it sealed (after the prefix both ends compared in the answer).
// A hash here could never differ from it (docs/transfer.md, "Data").
func (rc *recvConn) fileHasher(ctx context.Context, i int, off int64) *hasher {
	h, kept := rc.prefixes[i] // [0,off) when resuming (pending checked off)
	delete(rc.prefixes, i)
	if sealed(rc.conn) {
		return nil
	}
	if off == 0 || !kept {
		h = newHasher()
	}
	if off > 0 && !kept {
		// Not kept (more resumed files than maxPrefixes): hash it again. A
		// failure shows as a checksum mismatch at the end.
		rc.hashFile(ctx, partialPath(rc.entries[i].Name), off, h)
	}
	return h
}

// at records that the current file has pos bytes: progress for the
// hold timer, the sender's bar and the local one.
func (rc *recvConn) at(tk *fileTicker, pos int64) {
	rc.step()
	rc.cur.Pos = pos
	rc.w.report(rc.cur)
	tk.at(pos)
}

// discard reads and drops n bytes of file data.
func (rc *recvConn) discard(n int64) error {
	buf := rc.buffer()
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		rc.readDeadline()
		if _, err := io.ReadFull(rc.br, chunk); err != nil {
			return rc.connErr(err)
		}
		n -= int64(len(chunk))
	}
	return nil
}

func (rc *recvConn) readTrailer(i int) (result, error) {
	typ, p, err := rc.readFrame()
	if err != nil {
		return result{}, err
	}
	if typ != fTrailer {
		return result{}, fmt.Errorf("transfer: %s: %w: frame type %d instead of a trailer", rc.peer, ErrProtocol, typ)
	}
	tr, err := decodeResult(p)
	if err == nil && tr.Index != uint32(i) {
		err = fmt.Errorf("%w: trailer for entry %d, want %d", ErrProtocol, tr.Index, i)
	}
	if err != nil {
		return result{}, fmt.Errorf("transfer: %s: %w", rc.peer, err)
	}
	return tr, nil
}

// fail reports a file that did not make it and tells the sender why.
func (rc *recvConn) fail(ctx context.Context, i int, reason string) error {
	return rc.failTold(ctx, i, reason, reason)
}

// failTold is fail with other words for the sender: told.
func (rc *recvConn) failTold(ctx context.Context, i int, reason, told string) error {
	rc.sum.Failed++
	rc.srv.em.emit(Event{Kind: EventError, Peer: rc.peer, File: rc.entries[i].Name, Reason: reason})
	return rc.w.send(ctx, appendFrame(nil, fAck, appendResult(nil, result{Index: uint32(i), Reason: told})))
}

// openPartial opens the partial file of name for writing from off:
// truncated when off is 0, else checked to hold exactly off bytes. Its
// directories are created 0700 under .netkit-partial.
func (s *server) openPartial(name string, off int64) (*os.File, error) {
	pname := partialPath(name)
	if why := s.checkParents(pname); why != "" {
		return nil, errors.New(why)
	}
	flags := os.O_RDWR | os.O_CREATE
	if off == 0 {
		flags |= os.O_TRUNC
	}
	var f *os.File
	var err error
	// Another connection may tidy an empty parent away between our mkdir
	// and our open (see tidyPartialDirs): try again then.
	for range 10 {
		if err = s.root.MkdirAll(parentOf(pname), 0o700); err == nil {
			f, err = s.root.OpenFile(pname, flags, 0o600)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if fi, err := f.Stat(); err != nil || fi.Size() != off {
			f.Close()
			return nil, errors.New("the partial file changed since it was offered")
		}
	}
	return f, nil
}

// publish gives the verified partial file its size, mode and time, syncs
// it and moves it to its final name: with a hard link when existing files
// are protected (so that a file that appeared meanwhile is not replaced),
// else with a rename.
func (s *server) publish(f *os.File, e entry) error {
	root, pname := s.root, partialPath(e.Name)
	err := f.Truncate(e.Size)
	if err == nil {
		err = f.Chmod(fs.FileMode(e.Mode & 0o777))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chtimes(pname, e.modTime(), e.modTime())
	}
	if err != nil {
		return &diskError{name: e.Name, err: err}
	}
	if why := s.checkParents(e.Name); why != "" {
		return errors.New(why) // a parent changed since the answer
	}
	if dir := parentOf(e.Name); dir != "" {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := s.move(pname, e.Name); err != nil {
		return err
	}
	s.syncDir(parentOf(e.Name))
	s.tidyPartialDirs(pname)
	return nil
}

func (s *server) move(pname, name string) error {
	root := s.root
	if s.cfg.Overwrite {
		return root.Rename(pname, name)
	}
	err := root.Link(pname, name)
	switch {
	case err == nil:
		return root.Remove(pname)
	case errors.Is(err, fs.ErrExist):
		return errors.New(reasonExists)
	}
	// No hard links here: check, then rename.
	if _, err := root.Lstat(name); err == nil {
		return errors.New(reasonExists)
	}
	return root.Rename(pname, name)
}

func (s *server) removePartial(name string) {
	pname := partialPath(name)
	s.root.Remove(pname)
	s.tidyPartialDirs(pname)
}

// finishDirs gives the accepted directories their times, and the ones
// this connection made their modes, deepest first (files written into a
// directory change its time; a read-only mode would stop the writes).
func (rc *recvConn) finishDirs() {
	for i := len(rc.entries) - 1; i >= 0; i-- {
		e, st := rc.entries[i], rc.files[i]
		if e.Kind != kindDir || st.verdict != vDir {
			continue
		}
		var err error
		if st.created {
			err = rc.srv.root.Chmod(e.Name, os.FileMode(e.Mode&0o777))
		}
		if err == nil {
			err = rc.srv.root.Chtimes(e.Name, e.modTime(), e.modTime())
		}
		if err != nil {
			rc.srv.em.emit(Event{Kind: EventWarning, Peer: rc.peer, File: e.Name, Reason: err.Error()})
		}
	}
}

// checkParents returns why name's existing parents make it unsafe: one is
// a symlink (netkit never follows symlinks under --dir) or not a directory.
func (s *server) checkParents(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		dir := name[:i]
		fi, err := s.root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return ""
		case err != nil:
			return "cannot check parent " + dir + ": " + err.Error()
		case fi.Mode()&fs.ModeSymlink != 0:
			return "parent " + dir + " is a symlink"
		case !fi.IsDir():
			return "parent " + dir + " is not a directory"
		}
	}
	return ""
}

// makeDir makes directory name (0700 until finishDirs) and any missing
// parents; created is false when it was already there.
func (s *server) makeDir(name string) (created bool, err error) {
	fi, err := s.root.Lstat(name)
	switch {
	case err == nil && fi.IsDir():
		return false, nil
	case err == nil:
		return false, errors.New("exists and is not a directory")
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if dir := parentOf(name); dir != "" {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return false, err
		}
	}
	if err := s.root.Mkdir(name, 0o700); err != nil {
		return false, err
	}
	return true, nil
}

// syncDir makes a rename in dir durable; failures only cost durability.
func (s *server) syncDir(dir string) {
	if dir == "" {
		dir = "."
	}
	if d, err := s.root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// tidyPartialDirs removes the empty directories above a partial file,
// .netkit-partial included.
func (s *server) tidyPartialDirs(pname string) {
	for dir := parentOf(pname); dir != ""; dir = parentOf(dir) {
		if s.root.Remove(dir) != nil {
			return
		}
	}
}

// partialPath names the partial file of a final name: under
// .netkit-partial, the same path plus ".part" (a long base name is
// replaced by its hash to stay within 255 bytes).
func partialPath(name string) string {
	dir, base := parentOf(name), name
	if dir != "" {
		base = name[len(dir)+1:]
	}
	if len(base) > maxComponent-len(".part") {
		h := sha256.Sum256([]byte(base))
		base = hex.EncodeToString(h[:16])
	}
	if dir != "" {
		return partialDirName + "/" + dir + "/" + base + ".part"
	}
	return partialDirName + "/" + base + ".part"
}

// spaceString prints a byte count in IEC units.
func spaceString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

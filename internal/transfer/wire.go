package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/netkit/netkit/internal/termtext"
)

// The wire format is described byte by byte in docs/transfer.md. Every
// integer is big-endian.

// ErrProtocol means the peer sent something the protocol does not allow.
var ErrProtocol = errors.New("transfer: protocol error")

const (
	protoVersion = 2
	helloLen     = 12 // "netkit", version, auth, idle timeout in ms
	frameHdrLen  = 5  // type, payload length
	hashLen      = 32 // BLAKE3-256

	maxManifest    = 32 << 20 // bytes of manifest payload
	maxEntries     = 1 << 20  // entries in one manifest
	maxNameLen     = 4096     // bytes of one path
	maxComponent   = 255      // bytes of one path component
	maxFrame       = 64 << 10 // payload of any frame but the manifest
	maxReason      = 1024     // bytes of a reason string
	entryFixedLen  = 1 + 2 + 4 + 8 + 8
	dataHdrLen     = 4 + 8
	partialDirName = ".netkit-partial"
)

var magic = [6]byte{'n', 'e', 't', 'k', 'i', 't'}

// Frame types.
const (
	fManifest  byte = 1  // S→R: the manifest
	fAnswer    byte = 2  // R→S: the receiver's answer for one entry
	fData      byte = 3  // S→R: index, offset; raw file bytes follow
	fTrailer   byte = 4  // S→R: index, status, hash or reason
	fSkip      byte = 5  // S→R: index, why, reason: the sender sends no data for an entry
	fAck       byte = 6  // R→S: index, status, hash or reason
	fEnd       byte = 7  // S→R: no more entries
	fDone      byte = 8  // R→S: everything handled
	fKeepalive byte = 9  // both: nothing, just alive
	fAbort     byte = 10 // both: reason; the connection ends
	fPake      byte = 11 // both, before sealing: a key exchange message
	fConfirm   byte = 12 // both, before sealing: proof of the code (32 bytes)
	fProgress  byte = 13 // R→S: index u32, bytes of the file on disk u64
)

// Answer verdicts.
const (
	vSend   byte = 1 // send from offset (hash of the receiver's prefix follows)
	vCheck  byte = 2 // a file of the same size exists: its hash, and whether it may be replaced
	vReject byte = 3 // reason
	vDir    byte = 4 // directory accepted
)

// Skip reasons (the sender's decision after a vCheck or a failure to read).
const (
	skipIdentical byte = 1 // same hash as the existing file
	skipDiffers   byte = 2 // differs and the receiver may not overwrite
	skipFailed    byte = 3 // the sender could not read the file; reason follows
)

// Entry kinds in the manifest.
const (
	kindFile byte = 1
	kindDir  byte = 2
)

// entry is one manifest line: a file or a directory.
type entry struct {
	Name  string // "/"-separated, relative to the transfer root
	MTime int64  // Unix nanoseconds
	Size  int64  // 0 for directories
	Mode  uint32 // permission bits (0o7777 at most)
	Kind  byte
}

func (e entry) modTime() time.Time { return time.Unix(0, e.MTime) }

// Hello auth byte: how the connection goes on after the hellos.
const (
	authOpen byte = 0 // frames in the clear, anyone may send
	authCode byte = 1 // the code exchange, then sealed records
)

// appendHello appends the 12-byte hello: magic, version, auth and the
// idle timeout in milliseconds (0 for none).
func appendHello(b []byte, idle time.Duration, auth byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, protoVersion, auth)
	ms := idle.Milliseconds()
	if ms < 0 || ms > math.MaxUint32 {
		ms = math.MaxUint32
	}
	return binary.BigEndian.AppendUint32(b, uint32(ms))
}

// parseHello checks a hello and returns the peer's idle timeout and auth.
func parseHello(b []byte) (time.Duration, byte, error) {
	if len(b) != helloLen || !bytes.Equal(b[:6], magic[:]) {
		return 0, 0, fmt.Errorf("%w: not a netkit peer (got %q)", ErrProtocol, safeText(string(b)))
	}
	if b[6] != protoVersion {
		return 0, 0, fmt.Errorf("%w: peer speaks netkit protocol v%d, this is v%d (use the same netkit version on both ends)", ErrProtocol, b[6], protoVersion)
	}
	if b[7] > authCode {
		return 0, 0, fmt.Errorf("%w: unknown auth %d in hello", ErrProtocol, b[7])
	}
	return time.Duration(binary.BigEndian.Uint32(b[8:])) * time.Millisecond, b[7], nil
}

// frameLimit is the largest payload allowed for a frame type, or -1 for an
// unknown type.
func frameLimit(typ byte) int {
	switch typ {
	case fManifest:
		return maxManifest
	case fAnswer, fData, fTrailer, fSkip, fAck, fAbort:
		return maxFrame
	case fPake:
		return maxPakeMsg
	case fConfirm:
		return confirmLen
	case fProgress:
		return 20
	case fEnd, fDone, fKeepalive:
		return 0
	}
	return -1
}

// appendFrame appends a frame header and payload.
func appendFrame(b []byte, typ byte, payload []byte) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// readFrameHeader reads a frame header and checks the type's limit.
func readFrameHeader(r io.Reader) (byte, uint32, error) {
	var hdr [frameHdrLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	typ, n := hdr[0], binary.BigEndian.Uint32(hdr[1:])
	limit := frameLimit(typ)
	if limit < 0 {
		return 0, 0, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, typ)
	}
	if int64(n) > int64(limit) {
		return 0, 0, fmt.Errorf("%w: frame type %d of %d bytes, limit %d", ErrProtocol, typ, n, limit)
	}
	return typ, n, nil
}

// readFrame reads one frame into buf (grown as the bytes arrive, never
// ahead of them) and returns its type and payload, which aliases buf.
func readFrame(r io.Reader, buf *bytes.Buffer) (byte, []byte, error) {
	typ, n, err := readFrameHeader(r)
	if err != nil {
		return 0, nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r, int64(n))); err != nil {
		return 0, nil, err
	}
	if buf.Len() != int(n) {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return typ, buf.Bytes(), nil
}

// readPayload reads an n-byte payload into a slice of its own, doubling
// it as the bytes arrive (never ahead of them) up to exactly n.
func readPayload(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, 64<<10))
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), len(b)))
		}
		k, err := r.Read(b[len(b):min(cap(b), n)])
		b = b[:len(b)+k]
		if err == io.EOF && len(b) < n {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
	return b, nil
}

// encodeManifest returns the manifest payload for entries.
func encodeManifest(entries []entry) []byte {
	n := 4
	for _, e := range entries {
		n += entryFixedLen + len(e.Name)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e.Kind)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Name)))
		b = append(b, e.Name...)
		b = binary.BigEndian.AppendUint32(b, e.Mode)
		b = binary.BigEndian.AppendUint64(b, uint64(e.MTime))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
	}
	return b
}

// decodeManifest parses a manifest payload strictly: known kinds, names of
// 1..maxNameLen bytes, modes within 0o7777, sizes within int64 (0 for
// directories), at most maxEntries entries and no trailing bytes. Names
// are not judged here; the receiver refuses unsafe ones entry by entry.
// The names are substrings of one string made from p.
func decodeManifest(p []byte) ([]entry, error) {
	return decodeManifestString(string(p))
}

// decodeManifestOwned is decodeManifest without the copy: the names alias
// p, which the caller must never change again.
func decodeManifestOwned(p []byte) ([]entry, error) {
	if len(p) == 0 {
		return decodeManifestString("")
	}
	return decodeManifestString(unsafe.String(&p[0], len(p)))
}

func decodeManifestString(p string) ([]entry, error) {
	bad := func(format string, args ...any) ([]entry, error) {
		return nil, fmt.Errorf("%w: manifest: "+format, append([]any{ErrProtocol}, args...)...)
	}
	if len(p) > maxManifest {
		return bad("%d bytes, limit %d", len(p), maxManifest)
	}
	if len(p) < 4 {
		return bad("truncated count")
	}
	count := binary.BigEndian.Uint32([]byte(p[:4]))
	if count > maxEntries {
		return bad("%d entries, limit %d", count, maxEntries)
	}
	p = p[4:]
	entries := make([]entry, 0, min(int(count), len(p)/(entryFixedLen+1)))
	for i := uint32(0); i < count; i++ {
		if len(p) < 3 {
			return bad("entry %d truncated", i)
		}
		kind, nameLen := p[0], int(p[1])<<8|int(p[2])
		if kind != kindFile && kind != kindDir {
			return bad("entry %d has unknown kind %d", i, kind)
		}
		if nameLen == 0 || nameLen > maxNameLen {
			return bad("entry %d has a name of %d bytes (want 1..%d)", i, nameLen, maxNameLen)
		}
		if len(p) < entryFixedLen+nameLen {
			return bad("entry %d truncated", i)
		}
		e := entry{Kind: kind, Name: p[3 : 3+nameLen]}
		q := p[3+nameLen:]
		e.Mode = uint32(be64(q[:4]))
		e.MTime = int64(be64(q[4:12]))
		size := be64(q[12:20])
		p = q[20:]
		if e.Mode > 0o7777 {
			return bad("entry %d has mode %#o", i, e.Mode)
		}
		if size > math.MaxInt64 || (kind == kindDir && size != 0) {
			return bad("entry %d has size %d", i, size)
		}
		e.Size = int64(size)
		entries = append(entries, e)
	}
	if len(p) != 0 {
		return bad("%d trailing bytes", len(p))
	}
	return entries, nil
}

// be64 reads a big-endian number of up to 8 bytes from a string.
func be64(s string) uint64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v<<8 | uint64(s[i])
	}
	return v
}

// answer is the receiver's verdict on one entry.
type answer struct {
	Index     uint32
	Verdict   byte
	Offset    int64         // vSend
	Hash      [hashLen]byte // vSend: of the prefix [0,Offset); vCheck: of the existing file
	Overwrite bool          // vCheck
	Reason    string        // vReject
}

func appendAnswer(b []byte, a answer) []byte {
	b = binary.BigEndian.AppendUint32(b, a.Index)
	b = append(b, a.Verdict)
	switch a.Verdict {
	case vSend:
		b = binary.BigEndian.AppendUint64(b, uint64(a.Offset))
		b = append(b, a.Hash[:]...)
	case vCheck:
		b = append(b, a.Hash[:]...)
		b = append(b, boolByte(a.Overwrite))
	case vReject:
		b = append(b, clipReason(a.Reason)...)
	}
	return b
}

func decodeAnswer(p []byte) (answer, error) {
	var a answer
	if len(p) < 5 {
		return a, fmt.Errorf("%w: answer truncated", ErrProtocol)
	}
	a.Index, a.Verdict, p = binary.BigEndian.Uint32(p), p[4], p[5:]
	ok := false
	switch a.Verdict {
	case vSend:
		if ok = len(p) == 8+hashLen; ok {
			off := binary.BigEndian.Uint64(p)
			ok = off <= math.MaxInt64
			a.Offset = int64(off)
			copy(a.Hash[:], p[8:])
		}
	case vCheck:
		if ok = len(p) == hashLen+1 && p[hashLen] <= 1; ok {
			copy(a.Hash[:], p)
			a.Overwrite = p[hashLen] == 1
		}
	case vReject:
		a.Reason, ok = decodeReason(p)
	case vDir:
		ok = len(p) == 0
	}
	if !ok {
		return a, fmt.Errorf("%w: bad answer (verdict %d, %d bytes)", ErrProtocol, a.Verdict, len(p))
	}
	return a, nil
}

// result is a per-file outcome: a trailer (S→R) or an ack (R→S). Status 0
// carries the file's hash, status 1 a reason.
type result struct {
	Index  uint32
	OK     bool
	Hash   [hashLen]byte
	Reason string
}

func appendResult(b []byte, r result) []byte {
	b = binary.BigEndian.AppendUint32(b, r.Index)
	if r.OK {
		b = append(b, 0)
		return append(b, r.Hash[:]...)
	}
	b = append(b, 1)
	return append(b, clipReason(r.Reason)...)
}

func decodeResult(p []byte) (result, error) {
	var r result
	if len(p) < 5 || p[4] > 1 {
		return r, fmt.Errorf("%w: bad trailer or ack", ErrProtocol)
	}
	r.Index, r.OK = binary.BigEndian.Uint32(p), p[4] == 0
	p = p[5:]
	if r.OK {
		if len(p) != hashLen {
			return r, fmt.Errorf("%w: bad trailer or ack hash", ErrProtocol)
		}
		copy(r.Hash[:], p)
		return r, nil
	}
	var ok bool
	if r.Reason, ok = decodeReason(p); !ok {
		return r, fmt.Errorf("%w: bad reason", ErrProtocol)
	}
	return r, nil
}

// skip is the sender's decision to send no data for an entry.
type skip struct {
	Index  uint32
	Why    byte
	Reason string
}

func appendSkip(b []byte, s skip) []byte {
	b = binary.BigEndian.AppendUint32(b, s.Index)
	b = append(b, s.Why)
	return append(b, clipReason(s.Reason)...)
}

func decodeSkip(p []byte) (skip, error) {
	var s skip
	if len(p) < 5 || p[4] < skipIdentical || p[4] > skipFailed {
		return s, fmt.Errorf("%w: bad skip", ErrProtocol)
	}
	s.Index, s.Why = binary.BigEndian.Uint32(p), p[4]
	var ok bool
	if s.Reason, ok = decodeReason(p[5:]); !ok {
		return s, fmt.Errorf("%w: bad skip reason", ErrProtocol)
	}
	return s, nil
}

func appendDataHdr(b []byte, index uint32, offset int64) []byte {
	b = binary.BigEndian.AppendUint32(b, index)
	return binary.BigEndian.AppendUint64(b, uint64(offset))
}

func decodeDataHdr(p []byte) (uint32, int64, error) {
	if len(p) != dataHdrLen || binary.BigEndian.Uint64(p[4:]) > math.MaxInt64 {
		return 0, 0, fmt.Errorf("%w: bad data header", ErrProtocol)
	}
	return binary.BigEndian.Uint32(p), int64(binary.BigEndian.Uint64(p[4:])), nil
}

// decodeReason accepts up to maxReason bytes of UTF-8 and replaces
// control characters by "?", so that a peer's text cannot drive a
// terminal (and the reason never grows).
func decodeReason(p []byte) (string, bool) {
	if len(p) > maxReason || !utf8.Valid(p) {
		return "", false
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, string(p)), true
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// clipReason cuts a reason to maxReason bytes on a rune boundary.
func clipReason(s string) string {
	if len(s) <= maxReason {
		return s
	}
	s = s[:maxReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// safeText returns s, or s escaped when it holds characters that are not
// printable or invalid UTF-8, so that a peer's text cannot drive a
// terminal (termtext.Safe).
func safeText(s string) string { return termtext.Safe(s) }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// progressReport is the receiver's PROGRESS frame: file Index, resumed
// from Offset, has Pos bytes on disk.
type progressReport struct {
	Index       uint32
	Offset, Pos int64
}

func appendProgress(b []byte, p progressReport) []byte {
	b = binary.BigEndian.AppendUint32(b, p.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Offset))
	return binary.BigEndian.AppendUint64(b, uint64(p.Pos))
}

func decodeProgress(p []byte) (progressReport, error) {
	if len(p) != 20 || binary.BigEndian.Uint64(p[4:]) > math.MaxInt64 || binary.BigEndian.Uint64(p[12:]) > math.MaxInt64 {
		return progressReport{}, fmt.Errorf("%w: bad progress", ErrProtocol)
	}
	return progressReport{Index: binary.BigEndian.Uint32(p), Offset: int64(binary.BigEndian.Uint64(p[4:])), Pos: int64(binary.BigEndian.Uint64(p[12:]))}, nil
}

package transfer

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// After the code exchange everything travels in sealed records:
//
//	length u32 (of what follows, 16 .. maxRecord+16) | AES-256-GCM(payload)
//
// with one key per direction and the record's sequence number (from 0)
// as the nonce, so that a record cut, dropped, replayed, reordered or
// changed fails to open. The length is the additional data.

// ErrTampered means a sealed record did not open: someone between the two
// ends changed the stream.
var ErrTampered = errors.New("transfer: the stream was changed on the way (a record failed authentication): someone in the middle, or a broken relay")

const (
	maxRecord  = 256 << 10 // plaintext bytes of one record
	sealTagLen = 16
)

// sealedConn is a net.Conn whose bytes are sealed records on conn. One
// goroutine may read and another write at the same time.
type sealedConn struct {
	net.Conn           // deadlines, addresses, Close
	r        io.Reader // conn, or a reader holding bytes already read from it
	w        io.Writer // conn's writer (sockWriter)
	rd, wr   cipher.AEAD
	rseq     uint64
	wseq     uint64
	rbuf     []byte // the record being read
	plain    []byte // what is left of its plaintext
	wbuf     []byte // the record being written
	rerr     error  // sticky read error
	rhdr     [4]byte
	rnonce   [12]byte // the read side's nonce, rewritten per record (no allocation)
	wnonce   [12]byte // the write side's
}

func newSealedConn(conn net.Conn, r io.Reader, readKey, writeKey []byte) (*sealedConn, error) {
	rd, err := newGCM(readKey)
	if err != nil {
		return nil, err
	}
	wr, err := newGCM(writeKey)
	if err != nil {
		return nil, err
	}
	return &sealedConn{Conn: conn, r: r, w: sockWriter(conn), rd: rd, wr: wr}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("transfer: seal: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("transfer: seal: %w", err)
	}
	return g, nil
}

func nonce(seq uint64) []byte {
	var n [12]byte
	return setNonce(&n, seq)
}

// setNonce writes seq as a nonce into n and returns it.
func setNonce(n *[12]byte, seq uint64) []byte {
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
}

// Read returns plaintext, opening records as they arrive. A record that
// fits in p whole is read into p and opened there, in place, so that
// bulk data (the receiver reads a file's bytes a megabyte at a time) is
// copied once, by the kernel, instead of once more from a record buffer.
// On a record that fails to open Read returns no bytes: what p holds then
// is not plaintext.
func (c *sealedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		n, err := c.readRecord(p)
		if err != nil {
			c.rerr = err
			return 0, err
		}
		if n > 0 {
			return n, nil // opened in p
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

// readRecord reads and opens one record: into p when it fits there,
// returning the plaintext's length, else into the record buffer, leaving
// the plaintext in c.plain and returning 0.
func (c *sealedConn) readRecord(p []byte) (int, error) {
	hdr := c.rhdr[:]
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n < sealTagLen || n > maxRecord+sealTagLen {
		return 0, ErrTampered
	}
	body := p
	if len(p) < int(n) {
		if c.rbuf == nil {
			c.rbuf = make([]byte, maxRecord+sealTagLen)
		}
		body = c.rbuf
	}
	body = body[:n]
	if _, err := io.ReadFull(c.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	plain, err := c.rd.Open(body[:0], setNonce(&c.rnonce, c.rseq), body, hdr)
	if err != nil {
		return 0, ErrTampered
	}
	c.rseq++
	if len(p) >= int(n) {
		return len(plain), nil
	}
	c.plain = plain
	return 0, nil
}

// Write seals p into records of at most maxRecord bytes.
func (c *sealedConn) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		k := min(len(p), maxRecord)
		if cap(c.wbuf) < 4+maxRecord+sealTagLen {
			c.wbuf = make([]byte, 0, 4+maxRecord+sealTagLen)
		}
		b := binary.BigEndian.AppendUint32(c.wbuf[:0], uint32(k+sealTagLen))
		b = c.wr.Seal(b, setNonce(&c.wnonce, c.wseq), p[:k], b[:4])
		c.wseq++
		if _, err := c.w.Write(b); err != nil {
			return done, err
		}
		done += k
		p = p[k:]
	}
	return done, nil
}

// CloseWrite closes the underlying connection for writing, where it can.
func (c *sealedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

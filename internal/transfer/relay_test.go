package transfer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// relay forwards TCP connections to target, passing the sender's bytes
// through edit, which may change them or stop the connection.
type relay struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open []net.Conn // guarded by mu
}

// editFunc sees the sender's bytes at stream offset off and returns what
// to forward; stop ends the connection after forwarding it.
type editFunc func(p []byte, off int64) (out []byte, stop bool)

// cutAfter forwards n bytes of the sender's stream, then cuts.
func cutAfter(n int64) editFunc {
	return func(p []byte, off int64) ([]byte, bool) {
		if off+int64(len(p)) >= n {
			return p[:n-off], true
		}
		return p, false
	}
}

// flipAt inverts the byte at stream offset at.
func flipAt(at int64) editFunc {
	return func(p []byte, off int64) ([]byte, bool) {
		if at >= off && at < off+int64(len(p)) {
			p[at-off] ^= 0xff
		}
		return p, false
	}
}

func startRelay(t *testing.T, target string, edit editFunc) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: ln.Addr().String(), ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c, target, edit)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.open {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) track(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open = append(r.open, c)
}

func (r *relay) serve(src net.Conn, target string, edit editFunc) {
	defer src.Close()
	dst, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer dst.Close()
	r.track(src)
	r.track(dst)
	back := make(chan struct{})
	go func() {
		defer close(back)
		io.Copy(src, dst)
		src.Close()
	}()
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			out, stop := edit(buf[:n], off)
			off += int64(n)
			if _, werr := dst.Write(out); werr != nil || stop {
				break
			}
		}
		if err != nil {
			if cw, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				cw.CloseWrite()
				<-back
			}
			break
		}
	}
	dst.Close()
	src.Close()
	<-back
}

// rawSender speaks the netkit protocol by hand, for manifests and
// behaviour the real sender never produces.
type rawSender struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	fbuf bytes.Buffer
}

func dialRaw(t *testing.T, addr string) *rawSender {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSender{t: t, conn: conn, br: bufio.NewReader(conn)}
	st, err := newPake(testCode, true)
	if err != nil {
		t.Fatal(err)
	}
	s.write(appendFrame(appendHello(nil, 0, authCode), fPake, st.mine))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := readHello(s.br)
	if err != nil {
		t.Fatalf("hello: %v (%q)", err, b)
	}
	typ, msgB := s.next()
	if typ != fPake {
		t.Fatalf("frame type %d, want the key exchange", typ)
	}
	if err := st.update(msgB); err != nil {
		t.Fatal(err)
	}
	keys, err := st.keys(msgB)
	if err != nil {
		t.Fatal(err)
	}
	if typ, proof := s.next(); typ != fConfirm || !confirmOK(proof, keys.confirmR) {
		t.Fatalf("frame type %d, want the receiver's proof", typ)
	}
	s.frame(fConfirm, keys.confirmS[:])
	sc, err := newSealedConn(conn, s.br, keys.r2s, keys.s2r)
	if err != nil {
		t.Fatal(err)
	}
	s.conn, s.br = sc, bufio.NewReader(sc)
	return s
}

func (s *rawSender) write(b []byte) {
	s.t.Helper()
	if _, err := s.conn.Write(b); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

func (s *rawSender) frame(typ byte, payload []byte) { s.write(appendFrame(nil, typ, payload)) }

// next reads the next frame other than a keepalive.
func (s *rawSender) next() (byte, []byte) {
	s.t.Helper()
	for {
		s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, p, err := readFrame(s.br, &s.fbuf)
		if err != nil {
			s.t.Fatalf("read frame: %v", err)
		}
		if typ != fKeepalive && typ != fProgress {
			return typ, bytes.Clone(p)
		}
	}
}

// manifest sends entries and returns the receiver's answers.
func (s *rawSender) manifest(entries []entry) []answer {
	s.t.Helper()
	s.frame(fManifest, encodeManifest(entries))
	out := make([]answer, len(entries))
	for i := range entries {
		typ, p := s.next()
		if typ != fAnswer {
			s.t.Fatalf("frame type %d (%q), want an answer", typ, p)
		}
		a, err := decodeAnswer(p)
		if err != nil {
			s.t.Fatal(err)
		}
		out[i] = a
	}
	return out
}

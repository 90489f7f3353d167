package transfer

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"
)

// Both ends of the code exchange, between the hellos and the manifest.
// docs/transfer.md, "The code", has the bytes.

// ErrTooManyFailures is what Receive returns after cfg.MaxFailures
// senders did not prove the code: the code is retired.
var ErrTooManyFailures = errors.New("transfer: too many wrong codes; this code is retired: start netkit recv again for a new one")

// errNeedsCode and errOpenReceiver are the sender's errors when the two
// ends disagree on whether a code is needed.
var (
	errNeedsCode    = errors.New("the receiver requires its code: send with --code CODE, the code netkit recv printed")
	errOpenReceiver = errors.New("the receiver runs with --open: it checks no code and encrypts nothing; send with --open if that is what you want")
)

// secure runs the receiver's side after the sender's hello: it sends the
// receiver's hello and, when the code is required, runs the exchange and
// seals the connection. Until the sender has proved the code, the
// receiver has read nothing but the hello and the exchange's messages.
func (rc *recvConn) secure(auth byte) error {
	s := rc.srv
	rc.conn.SetDeadline(time.Now().Add(s.helloTimeout()))
	defer rc.conn.SetDeadline(time.Time{})
	refuse := func(reason string, err error) error {
		rc.conn.Write(appendFrame(appendHello(nil, s.cfg.IdleTimeout, s.auth()), fAbort, []byte(reason)))
		linger(rc.conn, "")
		return fmt.Errorf("transfer: %s: %w", rc.peer, err)
	}
	switch {
	case s.code == "" && auth == authOpen:
		_, err := rc.conn.Write(appendHello(nil, s.cfg.IdleTimeout, authOpen))
		return err
	case s.code == "":
		return refuse("this receiver runs with --open and has no code: send with --open",
			errors.New("a sender with a code, but this receiver runs with --open; refused"))
	case auth == authOpen:
		return refuse("this receiver requires its code: send with --code CODE",
			errors.New("a sender without the code; refused"))
	}
	st, err := newPake(s.code, false)
	if err != nil {
		return err
	}
	typ, msgA, err := readFrame(rc.br, &rc.fbuf)
	if err == nil && typ != fPake {
		err = fmt.Errorf("%w: frame type %d instead of the key exchange", ErrProtocol, typ)
	}
	if err == nil {
		err = st.update(msgA)
	}
	var keys *sessionKeys
	if err == nil {
		keys, err = st.keys(msgA)
	}
	if err != nil {
		s.failedCode()
		return fmt.Errorf("transfer: %s: key exchange: %w", rc.peer, err)
	}
	b := appendHello(nil, s.cfg.IdleTimeout, authCode)
	b = appendFrame(b, fPake, st.mine)
	b = appendFrame(b, fConfirm, keys.confirmR[:])
	if _, err := rc.conn.Write(b); err != nil {
		s.failedCode()
		return fmt.Errorf("transfer: %s: key exchange: %w", rc.peer, err)
	}
	typ, proof, err := readFrame(rc.br, &rc.fbuf)
	if err != nil || typ != fConfirm || !confirmOK(proof, keys.confirmS) {
		n := s.failedCode()
		return fmt.Errorf("transfer: %s: the sender did not prove the code (a wrong code, or someone guessing: %d of %d attempts); refused", rc.peer, n, s.maxFailures())
	}
	sc, err := newSealedConn(rc.conn, rc.br, keys.s2r, keys.r2s)
	if err != nil {
		return err
	}
	rc.conn, rc.br = sc, bufio.NewReaderSize(sc, 64<<10)
	return nil
}

// auth is the receiver's hello auth byte.
func (s *server) auth() byte {
	if s.code != "" {
		return authCode
	}
	return authOpen
}

// secure runs the sender's side: the exchange (its first message went
// out with the hello), the receiver's proof checked before the sender's
// is sent, then the sealed connection. peerAuth is the receiver's hello.
func (s *sender) secure(st *pakeState, peerAuth byte) error {
	switch {
	case st == nil && peerAuth == authOpen:
		return nil
	case st == nil:
		return s.mismatch(errNeedsCode)
	case peerAuth == authOpen:
		return s.mismatch(errOpenReceiver)
	}
	typ, msgB, err := s.readFrame()
	if err != nil {
		return err
	}
	if typ != fPake {
		return fmt.Errorf("transfer: %s: %w: frame type %d instead of the key exchange", s.where(), ErrProtocol, typ)
	}
	if err := st.update(msgB); err != nil {
		return fmt.Errorf("transfer: %s: %w", s.where(), err)
	}
	keys, err := st.keys(msgB)
	if err != nil {
		return err
	}
	typ, proof, err := s.readFrame()
	if err != nil {
		return err
	}
	if typ != fConfirm || !confirmOK(proof, keys.confirmR) {
		return ErrWrongCode
	}
	s.writeFrame(fConfirm, keys.confirmS[:])
	if err := s.flush(); err != nil {
		return err
	}
	sc, err := newSealedConn(s.conn, s.br, keys.r2s, keys.s2r)
	if err != nil {
		return err
	}
	s.conn, s.tcp, s.raw = sc, nil, nil
	s.br, s.bw = bufio.NewReaderSize(sc, 64<<10), bufio.NewWriterSize(sc, 64<<10)
	return nil
}

// mismatch returns the receiver's own reason when it sent one right after
// its hello (it runs with --tls, say), else err.
func (s *sender) mismatch(err error) error {
	s.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if typ, p, rerr := readFrame(s.br, &s.fbuf); rerr == nil && typ == fAbort {
		reason, _ := decodeReason(p)
		return fmt.Errorf("transfer: %w: %s", errRemote, reason)
	}
	return fmt.Errorf("transfer: %s: %w", s.where(), err)
}

// where names the receiver in the sender's errors: its address, or the
// relay's.
func (s *sender) where() string {
	if s.cfg.Relay != "" {
		return "relay " + s.cfg.Relay
	}
	return s.cfg.Addr
}

// sealed reports whether c carries sealed records.
func sealed(c net.Conn) bool {
	_, ok := c.(*sealedConn)
	return ok
}

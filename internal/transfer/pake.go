package transfer

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/schollz/pake/v3"
)

// The code exchange: SPAKE2 on P-256 from github.com/schollz/pake/v3
// (croc's). The sender (role 0) sends X, the receiver (role 1) answers Y
// and a confirmation that only the holder of the code can compute; the
// sender checks it and sends its own. Both then derive one key per
// direction for the sealed stream (seal.go). docs/transfer.md has the
// bytes and the reasons for this package.

// ErrWrongCode means the peer did not prove it knows the code: a typo, or
// someone in the middle.
var ErrWrongCode = errors.New("transfer: the other end does not know this code (wrong code, or someone in the middle)")

const (
	pakeCurve  = "p256"
	maxPakeMsg = 4 << 10 // bytes of one PAKE message (about 500 in practice)
	confirmLen = sha256.Size
)

// pakeState is one end's side of the exchange.
type pakeState struct {
	p      *pake.Pake
	sender bool
	mine   []byte // the message this end sent
}

// pakePassword turns a canonical code into the exchange's password: a
// 32-byte scalar, so that the package multiplies by a value of the
// curve's size.
func pakePassword(code string) []byte {
	h := sha256.Sum256([]byte("netkit transfer code v2\x00" + code))
	return h[:]
}

// newPake starts the exchange. The sender's first message is ready at
// once; the receiver's comes from answer.
func newPake(code string, sender bool) (*pakeState, error) {
	role := 1
	if sender {
		role = 0
	}
	p, err := pake.InitCurve(pakePassword(code), role, pakeCurve)
	if err != nil {
		return nil, fmt.Errorf("transfer: key exchange: %w", err)
	}
	st := &pakeState{p: p, sender: sender}
	if sender {
		st.mine = p.Bytes()
	}
	return st, nil
}

// pakeWire is what a PAKE message may hold: the package marshals its
// public points as JSON. checkPakeMsg parses it first, so that the
// package never sees a message it could fail on (a null, a missing
// point, a point off the curve).
type pakeWire struct {
	Role int
	Xᵤ   *big.Int
	Xᵥ   *big.Int
	Yᵤ   *big.Int
	Yᵥ   *big.Int
}

// checkPakeMsg checks that msg is the peer's message: the other role,
// with its point present and at most the field's size.
func checkPakeMsg(msg []byte, fromSender bool) error {
	if len(msg) > maxPakeMsg {
		return fmt.Errorf("%w: key exchange message of %d bytes", ErrProtocol, len(msg))
	}
	var w *pakeWire
	if err := json.Unmarshal(msg, &w); err != nil || w == nil {
		return fmt.Errorf("%w: bad key exchange message", ErrProtocol)
	}
	x, y, role := w.Yᵤ, w.Yᵥ, 1
	if fromSender {
		x, y, role = w.Xᵤ, w.Xᵥ, 0
	}
	if w.Role != role || x == nil || y == nil || x.Sign() < 0 || y.Sign() < 0 || x.BitLen() > 256 || y.BitLen() > 256 {
		return fmt.Errorf("%w: bad key exchange message", ErrProtocol)
	}
	return nil
}

// update takes the peer's message; the receiver's own message is ready
// after it.
func (st *pakeState) update(msg []byte) (err error) {
	if err := checkPakeMsg(msg, !st.sender); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil { // the package panics on some points
			err = fmt.Errorf("%w: bad key exchange message", ErrProtocol)
		}
	}()
	if err := st.p.Update(msg); err != nil {
		return fmt.Errorf("%w: key exchange: %v", ErrProtocol, err)
	}
	if !st.sender {
		st.mine = st.p.Bytes()
	}
	return nil
}

// sessionKeys are what both ends derive from the exchange.
type sessionKeys struct {
	confirmS, confirmR [confirmLen]byte // the MACs each end sends
	s2r, r2s           []byte           // AES-256-GCM keys, one per direction
}

// keys derives the confirmations and stream keys from the shared key and
// the transcript (both messages), so that both are bound to this very
// exchange.
func (st *pakeState) keys(peer []byte) (*sessionKeys, error) {
	k, err := st.p.SessionKey()
	if err != nil {
		return nil, fmt.Errorf("transfer: key exchange: %w", err)
	}
	msgS, msgR := st.mine, peer
	if !st.sender {
		msgS, msgR = peer, st.mine
	}
	th := sha256.New()
	for _, m := range [][]byte{msgS, msgR} {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(m)>>24), byte(len(m)>>16), byte(len(m)>>8), byte(len(m))
		th.Write(n[:])
		th.Write(m)
	}
	transcript := th.Sum(nil)
	okm, err := hkdf.Key(sha256.New, k, transcript, "netkit transfer v2 keys", 4*32)
	if err != nil {
		return nil, fmt.Errorf("transfer: key exchange: %w", err)
	}
	sk := &sessionKeys{s2r: okm[64:96], r2s: okm[96:128]}
	sk.confirmS = mac(okm[0:32], "sender", transcript)
	sk.confirmR = mac(okm[32:64], "receiver", transcript)
	return sk, nil
}

func mac(key []byte, role string, transcript []byte) [confirmLen]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(transcript)
	var out [confirmLen]byte
	m.Sum(out[:0])
	return out
}

// confirmOK compares a received confirmation in constant time.
func confirmOK(got []byte, want [confirmLen]byte) bool {
	return hmac.Equal(got, want[:])
}

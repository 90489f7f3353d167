package transfer

import (
	"bytes"
	"net"
	"reflect"
	"testing"
)

// FuzzDecodeManifest checks that no input makes the manifest decoder
// panic, that what it accepts stays within the limits and encodes back to
// the same bytes, and that the names it lets through are judged by
// checkName without a panic either.
func FuzzDecodeManifest(f *testing.F) {
	seeds := [][]entry{
		{},
		{{Kind: kindFile, Name: "a.txt", Mode: 0o644, MTime: 1700000000e9, Size: 5}},
		{{Kind: kindDir, Name: "d", Mode: 0o755}, {Kind: kindFile, Name: "d/naïve 日本.txt", Mode: 0o600, Size: 1 << 40}},
		{{Kind: kindFile, Name: "../../etc/passwd", Size: 1}, {Kind: kindFile, Name: "/abs", Size: 1}},
		{{Kind: kindFile, Name: "nul\x00", Size: 1}, {Kind: kindFile, Name: "dup"}, {Kind: kindFile, Name: "dup"}},
	}
	for _, s := range seeds {
		f.Add(encodeManifest(s))
	}
	f.Add([]byte{})                                    // no count
	f.Add([]byte{0, 0, 0, 1})                          // count without entries
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})              // huge count
	f.Add([]byte{0, 0, 0, 1, 1, 0xff, 0xff, 'a', 'b'}) // name longer than the data
	f.Fuzz(func(t *testing.T, p []byte) {
		entries, err := decodeManifest(p)
		if err != nil {
			return
		}
		if len(entries) > maxEntries {
			t.Fatalf("%d entries accepted", len(entries))
		}
		for _, e := range entries {
			if len(e.Name) == 0 || len(e.Name) > maxNameLen || e.Mode > 0o7777 || e.Size < 0 || (e.Kind == kindDir && e.Size != 0) {
				t.Fatalf("accepted %+v", e)
			}
			checkName(e.Name)
			partialPath(e.Name)
		}
		manifestConflicts(entries)
		if again := encodeManifest(entries); !bytes.Equal(again, p) {
			t.Fatalf("re-encoding changed the bytes:\n%x\n%x", p, again)
		}
	})
}

// FuzzFrames feeds bytes to the frame reader and every payload decoder:
// no panic, frames within their limits, and decoded payloads that encode
// back to what decodes the same.
func FuzzFrames(f *testing.F) {
	var h [hashLen]byte
	f.Add(appendFrame(nil, fAnswer, appendAnswer(nil, answer{Index: 3, Verdict: vSend, Offset: 10, Hash: h})))
	f.Add(appendFrame(nil, fAnswer, appendAnswer(nil, answer{Index: 0, Verdict: vReject, Reason: "exists; use --overwrite"})))
	f.Add(appendFrame(nil, fAck, appendResult(nil, result{Index: 1, OK: true, Hash: h})))
	f.Add(appendFrame(nil, fTrailer, appendResult(nil, result{Index: 1, Reason: "file changed"})))
	f.Add(appendFrame(nil, fSkip, appendSkip(nil, skip{Index: 2, Why: skipFailed, Reason: "cannot read"})))
	f.Add(appendFrame(nil, fData, appendDataHdr(nil, 5, 1<<30)))
	f.Add(appendFrame(nil, fAbort, []byte("disk full writing a.bin")))
	f.Add(appendFrame(nil, fKeepalive, nil))
	f.Add(appendFrame(nil, fProgress, appendProgress(nil, progressReport{Index: 2, Offset: 3, Pos: 1 << 40})))
	f.Add(appendFrame(nil, fConfirm, make([]byte, confirmLen)))
	f.Add(appendFrame(nil, fPake, []byte(`{"Role":0}`)))
	f.Add([]byte{fManifest, 0xff, 0xff, 0xff, 0xff})
	f.Add(appendHello(nil, 0, authOpen))
	f.Fuzz(func(t *testing.T, in []byte) {
		if idle, _, err := parseHello(in); err == nil && idle < 0 {
			t.Fatalf("negative idle timeout %v", idle)
		}
		var buf bytes.Buffer
		r := bytes.NewReader(in)
		for {
			typ, p, err := readFrame(r, &buf)
			if err != nil {
				return
			}
			if len(p) > frameLimit(typ) {
				t.Fatalf("frame type %d of %d bytes accepted", typ, len(p))
			}
			checkPayload(t, typ, p)
		}
	})
}

func checkPayload(t *testing.T, typ byte, p []byte) {
	switch typ {
	case fAnswer:
		if a, err := decodeAnswer(p); err == nil {
			again, err := decodeAnswer(appendAnswer(nil, a))
			if err != nil || !reflect.DeepEqual(again, a) {
				t.Fatalf("answer %+v re-decodes as %+v, %v", a, again, err)
			}
		}
	case fAck, fTrailer:
		if r, err := decodeResult(p); err == nil {
			again, err := decodeResult(appendResult(nil, r))
			if err != nil || again != r {
				t.Fatalf("result %+v re-decodes as %+v, %v", r, again, err)
			}
		}
	case fSkip:
		if s, err := decodeSkip(p); err == nil {
			again, err := decodeSkip(appendSkip(nil, s))
			if err != nil || again != s {
				t.Fatalf("skip %+v re-decodes as %+v, %v", s, again, err)
			}
		}
	case fData:
		if i, off, err := decodeDataHdr(p); err == nil && (off < 0 || !bytes.Equal(appendDataHdr(nil, i, off), p)) {
			t.Fatalf("data header %x decodes as %d, %d", p, i, off)
		}
	case fManifest:
		decodeManifest(p)
	case fProgress:
		if pr, err := decodeProgress(p); err == nil && !bytes.Equal(appendProgress(nil, pr), p) {
			t.Fatalf("progress %x decodes as %+v", p, pr)
		}
	case fPake:
		checkPakeMsg(p, true)
		checkPakeMsg(p, false)
	}
}

// FuzzPakeMessage gives the key exchange what a peer could send instead
// of its message: no panic, and a message that is not the peer's role's
// is refused.
func FuzzPakeMessage(f *testing.F) {
	snd, err := newPake(testCode, true)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snd.mine, true)
	rcv, _ := newPake(testCode, false)
	if err := rcv.update(snd.mine); err != nil {
		f.Fatal(err)
	}
	f.Add(rcv.mine, false)
	f.Add([]byte("null"), true)
	f.Add([]byte(`{"Role":0}`), true)
	f.Add([]byte(`{"Role":0,"Xᵤ":1,"Xᵥ":2}`), true)
	f.Add([]byte(`{"Role":1,"Yᵤ":-5,"Yᵥ":99999999999999999999999999999999999999999999999999999999999999999999999999999999}`), false)
	f.Fuzz(func(t *testing.T, msg []byte, fromSender bool) {
		st, err := newPake(testCode, !fromSender)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.update(msg); err != nil {
			return
		}
		if _, err := st.keys(msg); err != nil {
			t.Fatalf("keys after an accepted message: %v", err)
		}
	})
}

// FuzzSealed reads arbitrary bytes as sealed records: no panic, and
// nothing comes out that was not sealed with the key.
func FuzzSealed(f *testing.F) {
	key := make([]byte, 32)
	w, _ := newGCM(key)
	rec := func(seq uint64, p []byte) []byte {
		b := []byte{0, 0, 0, byte(len(p) + sealTagLen)}
		return w.Seal(b, nonce(seq), p, b[:4])
	}
	f.Add(append(rec(0, []byte("hello")), rec(1, []byte("world"))...))
	f.Add(rec(1, []byte("out of order")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := newSealedConn(nil, bytes.NewReader(in), key, key)
		if err != nil {
			t.Fatal(err)
		}
		// Reads alternate between a buffer smaller than a full record
		// (opened in the record buffer) and one that holds any record
		// (opened in place).
		var out []byte
		small, large := make([]byte, 4096), make([]byte, maxRecord+sealTagLen)
		for i := 0; ; i++ {
			buf := small
			if i%2 == 1 {
				buf = large
			}
			n, err := c.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		if len(out) > len(in) {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
	})
}

// FuzzRelayHello: the relay's reading of a client's hello and of its own
// status replies never panics.
func FuzzRelayHello(f *testing.F) {
	f.Add([]byte{stOK})
	f.Add([]byte{stRefused, 4, 'f', 'u', 'l', 'l'})
	f.Add([]byte{stRefused, 200})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { b.Write(in); b.Close() }()
		relayRead(a, nil)
	})
}

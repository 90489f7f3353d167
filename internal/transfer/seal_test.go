package transfer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// writeConn is a net.Conn that can only Write, into w.
type writeConn struct {
	net.Conn
	w io.Writer
}

func (c writeConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// TestSealedReadSizes writes records of several sizes and reads them back
// with buffers smaller than a record (through the record buffer) and
// larger (opened in place): the same bytes either way, and a changed byte
// gives ErrTampered with no byte of that record.
func TestSealedReadSizes(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	data := randomBytes(5, 3*maxRecord+12345)
	var wire bytes.Buffer
	w, err := newSealedConn(writeConn{w: &wire}, nil, key, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, maxRecord, maxRecord + 1} {
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
	}
	var want []byte
	for _, n := range []int{0, 1, 100, maxRecord, maxRecord + 1} {
		want = append(want, data[:n]...)
	}
	tests := []struct {
		name string
		buf  int
	}{
		{"small reads", 4096},
		{"one record's size", maxRecord + sealTagLen},
		{"larger than records", 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newSealedConn(nil, bytes.NewReader(wire.Bytes()), key, key)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			buf := make([]byte, tc.buf)
			for {
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
			}

			bad := bytes.Clone(wire.Bytes())
			bad[len(bad)-100] ^= 1 // in the last record
			r, _ = newSealedConn(nil, bytes.NewReader(bad), key, key)
			got = got[:0]
			for {
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					if !errors.Is(err, ErrTampered) {
						t.Fatalf("Read of a changed record: %v, want ErrTampered", err)
					}
					break
				}
			}
			if last := maxRecord + 1; !bytes.Equal(got, want[:len(want)-last]) {
				t.Errorf("read %d bytes before the changed record, want %d", len(got), len(want)-last)
			}
		})
	}
}

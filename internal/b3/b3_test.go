package b3

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// kernels are the two ways a Hasher can hash, tested on every CPU: the
// wide one runs guts's portable code where the CPU has no AVX-512.
var kernels = []struct {
	name string
	make func() *Hasher
}{
	{"wide", func() *Hasher { return &Hasher{w: new(wide)} }},
	{"zeebo", func() *Hasher { return &Hasher{z: blake3.New()} }},
	{"New", New},
}

// pattern returns the official vectors' input: byte i is i % 251.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

// TestVectors checks every kernel against the BLAKE3 team's test vectors,
// written whole and in odd pieces.
func TestVectors(t *testing.T) {
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type vector struct {
		n    int
		want string
	}
	var vectors []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		length, hash, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(length)
		if !ok || err != nil {
			t.Fatalf("bad line %q", line)
		}
		vectors = append(vectors, vector{n, hash})
	}
	if len(vectors) < 20 {
		t.Fatalf("read %d vectors, want the 22 or more of the file", len(vectors))
	}
	for _, k := range kernels {
		for _, v := range vectors {
			for _, piece := range []int{0, 1, 63, 1000, 4096, wideSize - 1} {
				h := k.make()
				writeInPieces(h, pattern(v.n), piece)
				if got := hex.EncodeToString(h.Sum(nil)); got != v.want {
					t.Errorf("%s: %d bytes in pieces of %d: %s, want %s", k.name, v.n, piece, got, v.want)
				}
			}
		}
	}
}

// writeInPieces writes p to h in pieces of n bytes (all at once for 0).
func writeInPieces(h *Hasher, p []byte, n int) {
	if n == 0 {
		h.Write(p)
		return
	}
	for len(p) > 0 {
		k := min(n, len(p))
		h.Write(p[:k])
		p = p[k:]
	}
}

// TestWideMatchesZeebo compares the wide tree with zeebo/blake3 at the
// sizes where the tree's shape changes: around every call boundary up to
// 2^6 calls, and at powers of two.
func TestWideMatchesZeebo(t *testing.T) {
	data := make([]byte, 64*wideSize+2*wideSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sizes := []int{0, 1, 64, 1023, 1024, 1025, 2048, 2049}
	for c := 1; c <= 65; c++ {
		sizes = append(sizes, c*wideSize-1, c*wideSize, c*wideSize+1, c*wideSize+1024)
	}
	for _, n := range sizes {
		want := blake3.Sum256(data[:n])
		for _, piece := range []int{0, 4096, wideSize, 256 << 10, 7777} {
			w := &Hasher{w: new(wide)}
			writeInPieces(w, data[:n], piece)
			if got := w.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Fatalf("%d bytes in pieces of %d: %x, want %x", n, piece, got, want)
			}
		}
	}
}

// TestSumKeepsState checks that Sum can be called mid-stream (the
// receiver takes the digest of a resumed file's prefix and goes on).
func TestSumKeepsState(t *testing.T) {
	data := pattern(5*wideSize + 123)
	for _, k := range kernels {
		h := k.make()
		for _, cut := range []int{0, 1024, wideSize, 3*wideSize + 5, len(data)} {
			h.Reset()
			h.Write(data[:cut])
			mid := h.Sum(nil)
			if want := blake3.Sum256(data[:cut]); !bytes.Equal(mid, want[:]) {
				t.Errorf("%s: digest of the first %d bytes = %x, want %x", k.name, cut, mid, want)
			}
			h.Write(data[cut:])
			if got, want := h.Sum([]byte("x")), blake3.Sum256(data); !bytes.Equal(got[1:], want[:]) || got[0] != 'x' {
				t.Errorf("%s: Sum after a Sum at %d = %q..., want x then %x", k.name, cut, got[:1], want)
			}
		}
	}
}

func TestSum256(t *testing.T) {
	data := pattern(100_000)
	if got, want := Sum256(data), blake3.Sum256(data); got != want {
		t.Fatalf("Sum256 = %x, want %x", got, want)
	}
}

// FuzzWide hashes size bytes (at most 70 calls' worth, so the tree has
// up to 7 levels above a call) from seed, written to the wide tree in the
// pieces cuts gives, and compares the digest with zeebo/blake3's. The
// input is made rather than fuzzed itself: the tree's shape depends only on
// the sizes, and Go's fuzzer slows down on inputs of kilobytes.
func FuzzWide(f *testing.F) {
	f.Add(uint32(3), uint64(1), []byte{1})
	f.Add(uint32(2*wideSize+1), uint64(2), []byte{0xff, 0x40, 0}) // a call from the buffer, one straight from the input
	f.Add(uint32(64*wideSize), uint64(3), []byte{})               // the root is one complete subtree
	f.Fuzz(func(t *testing.T, size uint32, seed uint64, cuts []byte) {
		data := make([]byte, size%(70*wideSize+1))
		rng := rand.New(rand.NewPCG(seed, 0))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		w := &Hasher{w: new(wide)}
		rest := data
		for i, c := range cuts {
			k := min(int(c)<<(i%12), len(rest))
			w.Write(rest[:k])
			rest = rest[k:]
		}
		w.Write(rest)
		if got, want := w.Sum(nil), blake3.Sum256(data); !bytes.Equal(got, want[:]) {
			t.Fatalf("%d bytes cut %v: %x, want %x", len(data), cuts, got, want)
		}
	})
}

// BenchmarkHash hashes 256 KiB writes, the transfer's record size, with
// each kernel; run it with GOMAXPROCS=1 (neither kernel uses more cores).
func BenchmarkHash(b *testing.B) {
	buf := pattern(256 << 10)
	for _, k := range kernels[:2] {
		b.Run(k.name, func(b *testing.B) {
			h := k.make()
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				h.Write(buf)
			}
			h.Sum(nil)
		})
	}
}

// Package b3 computes BLAKE3-256 digests with the fastest kernel this CPU
// has.
//
// There are two kernels. The wide one hashes 16 chunks (16 KiB) per call of
// lukechampine.com/blake3/guts's AVX-512 kernel and builds the tree itself;
// the other is github.com/zeebo/blake3 (AVX2, SSE4.1). Which is faster
// depends on the CPU, not only on its features: on an AMD EPYC with full
// 512-bit units the wide kernel hashed 1.2-1.4x zeebo's rate on one core,
// on an earlier EPYC host 0.8-0.9x (docs/benchmarks.md, issue 19). So on a
// CPU with AVX-512 the first New times both on the same 64 KiB and keeps
// the faster for the life of the process; without AVX-512 it is zeebo's.
// Both give the same digest; the tests check them against each other and
// against the BLAKE3 team's test vectors.
package b3

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/cpu"
	"lukechampine.com/blake3/guts"
)

// Size is the length of a digest in bytes.
const Size = 32

// wideSize is how many bytes one call of the wide kernel hashes.
const wideSize = guts.MaxSIMD * guts.ChunkSize

// wideHeight is log2 of the chunks one call of the wide kernel hashes: a
// full call makes one complete subtree of that height.
const wideHeight = 4

// useWide reports whether New hashes with the wide kernel: the CPU has
// AVX-512 and the wide kernel was the faster on it.
var useWide = sync.OnceValue(func() bool {
	return cpu.X86.HasAVX512F && wideIsFaster()
})

// wideIsFaster hashes the same 64 KiB with each kernel, alternating, three
// times each (about 0.1 ms in all), and reports whether the wide kernel's
// best time beat zeebo's.
func wideIsFaster() bool {
	p := make([]byte, 4*wideSize)
	w, z := new(wide), blake3.New()
	best := func(t *time.Duration, f func()) {
		start := time.Now()
		f()
		if d := time.Since(start); *t == 0 || d < *t {
			*t = d
		}
	}
	var tw, tz time.Duration
	for range 3 {
		best(&tw, func() { w.write(p); w.sum() })
		best(&tz, func() { z.Write(p); z.Sum(nil) })
	}
	return tw < tz
}

// Hasher computes a BLAKE3-256 digest of what is written to it; it
// implements hash.Hash. Its zero value is not usable; make one with New.
type Hasher struct {
	z *blake3.Hasher // set when the CPU has no AVX-512
	w *wide          // set otherwise
}

// New returns a Hasher with the fastest kernel for this CPU.
func New() *Hasher {
	if useWide() {
		return &Hasher{w: new(wide)}
	}
	return &Hasher{z: blake3.New()}
}

// Write adds p to the hash. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	if h.w != nil {
		h.w.write(p)
		return len(p), nil
	}
	return h.z.Write(p)
}

// Sum appends the digest of what was written so far to b and returns the
// result; the Hasher's state does not change.
func (h *Hasher) Sum(b []byte) []byte {
	if h.w != nil {
		d := h.w.sum()
		return append(b, d[:]...)
	}
	return h.z.Sum(b)
}

// Reset forgets what was written.
func (h *Hasher) Reset() {
	if h.w != nil {
		*h.w = wide{}
		return
	}
	h.z.Reset()
}

// Size returns the digest length, Size.
func (h *Hasher) Size() int { return Size }

// BlockSize returns BLAKE3's block size, 64 bytes.
func (h *Hasher) BlockSize() int { return guts.BlockSize }

// Sum256 returns the digest of p.
func Sum256(p []byte) [Size]byte {
	h := New()
	h.Write(p)
	var d [Size]byte
	h.Sum(d[:0])
	return d
}

// wide is a streaming BLAKE3 tree over 16-chunk calls of guts's kernel.
// The input is cut into calls of wideSize bytes at offsets that are
// multiples of wideSize, so every full call is one complete subtree of
// 2^wideHeight chunks; the newest one stays unmerged (as last) until more
// input shows it is not the root's right edge.
type wide struct {
	// stack[i] holds the chaining value of a complete subtree of 2^i
	// chunks for every bit i set in counter: the tree's left part.
	stack [64][8]uint32
	// counter is how many chunks precede last (when full) or buf.
	counter uint64
	// last is the newest full call's node, not yet finalised; valid when
	// full is set, and then buf is empty.
	last guts.Node
	full bool
	// buf holds the input after counter's chunks that does not fill a call.
	buf    [wideSize]byte
	buflen int
}

func (w *wide) write(p []byte) {
	for len(p) > 0 {
		if w.full {
			w.push(guts.ChainingValue(w.last))
			w.full = false
		}
		if w.buflen == 0 && len(p) >= wideSize {
			// Hash straight from p: no copy.
			w.last = guts.CompressBuffer((*[wideSize]byte)(p), wideSize, &guts.IV, w.counter, 0)
			w.full = true
			p = p[wideSize:]
			continue
		}
		n := copy(w.buf[w.buflen:], p)
		w.buflen += n
		p = p[n:]
		if w.buflen == wideSize {
			w.last = guts.CompressBuffer(&w.buf, wideSize, &guts.IV, w.counter, 0)
			w.full = true
			w.buflen = 0
		}
	}
}

// push adds the chaining value of the full call at counter to the stack,
// merging it with the complete subtrees of its height on its left.
func (w *wide) push(cv [8]uint32) {
	i := wideHeight
	for w.counter&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(w.stack[i], cv, &guts.IV, 0))
		i++
	}
	w.stack[i] = cv
	w.counter += 1 << wideHeight
}

// sum returns the digest: the pending node merged, right to left, with the
// subtrees on the stack, and compressed as the root.
func (w *wide) sum() [Size]byte {
	n := w.last
	if !w.full {
		n = guts.CompressBuffer(&w.buf, w.buflen, &guts.IV, w.counter, 0)
	}
	for i := wideHeight; i < 64; i++ {
		if w.counter&(1<<i) != 0 {
			n = guts.ParentNode(w.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	words := guts.CompressNode(n)
	var d [Size]byte
	for i := range Size / 4 {
		binary.LittleEndian.PutUint32(d[4*i:], words[i])
	}
	return d
}

// Command hashspeed measures github.com/zeebo/blake3 on this machine: a
// Hasher fed 1 MiB Writes, Sum256 of one large slice, and the file read with
// pread into a reused buffer or through mmap; with the process CPU time, to
// show whether the library uses more than one core. For comparison: XXH3-128
// (github.com/zeebo/xxh3) and CRC-32C (hash/crc32). Benchmark tool, not netkit.
//
//	go run ./bench/transfer/hashspeed /dev/shm/netkit-bench-2g
package main

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/zeebo/blake3"
	"github.com/zeebo/xxh3"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hashspeed FILE")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1]) // in memory, so only hashing is timed
	if err != nil {
		fmt.Fprintln(os.Stderr, "hashspeed:", err)
		os.Exit(1)
	}
	fmt.Printf("GOMAXPROCS=%d, %d MiB in memory\n\n", runtime.GOMAXPROCS(0), len(data)>>20)
	fmt.Println("| method | GB/s | CPU s per GiB | CPU/wall (cores used) |")
	fmt.Println("|---|---:|---:|---:|")
	for rep := 0; rep < 3; rep++ {
		measure("BLAKE3 New + Write(1 MiB chunks)", int64(len(data)), func() {
			h := blake3.New()
			for off := 0; off < len(data); off += 1 << 20 {
				h.Write(data[off:min(off+1<<20, len(data))])
			}
			h.Sum(nil)
		})
		measure("BLAKE3 Sum256(whole slice)", int64(len(data)), func() { blake3.Sum256(data) })
		measure("BLAKE3 New + Write(64 KiB chunks)", int64(len(data)), func() {
			h := blake3.New()
			for off := 0; off < len(data); off += 64 << 10 {
				h.Write(data[off:min(off+64<<10, len(data))])
			}
			h.Sum(nil)
		})
		measure("BLAKE3 pread 1 MiB from /dev/shm + Write", int64(len(data)), func() {
			f, err := os.Open(os.Args[1])
			if err != nil {
				panic(err)
			}
			defer f.Close()
			h := blake3.New()
			buf := make([]byte, 1<<20)
			for off := int64(0); ; {
				n, err := f.ReadAt(buf, off)
				h.Write(buf[:n])
				off += int64(n)
				if err == io.EOF {
					break
				} else if err != nil {
					panic(err)
				}
			}
			h.Sum(nil)
		})
		measure("BLAKE3 mmap 8 MiB windows of /dev/shm + Write", int64(len(data)), func() {
			f, _ := os.Open(os.Args[1])
			defer f.Close()
			h := blake3.New()
			for off := 0; off < len(data); off += 8 << 20 {
				m, err := syscall.Mmap(int(f.Fd()), int64(off), min(8<<20, len(data)-off), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
				if err != nil {
					panic(err)
				}
				h.Write(m)
				syscall.Munmap(m)
			}
			h.Sum(nil)
		})
		measure("XXH3-128, New + Write(1 MiB chunks)", int64(len(data)), func() {
			h := xxh3.New()
			for off := 0; off < len(data); off += 1 << 20 {
				h.Write(data[off:min(off+1<<20, len(data))])
			}
			h.Sum128()
		})
		measure("CRC-32C, 1 MiB chunks", int64(len(data)), func() {
			tab := crc32.MakeTable(crc32.Castagnoli)
			var c uint32
			for off := 0; off < len(data); off += 1 << 20 {
				c = crc32.Update(c, tab, data[off:min(off+1<<20, len(data))])
			}
		})
		measure("pread 1 MiB from /dev/shm, no hash", int64(len(data)), func() {
			f, _ := os.Open(os.Args[1])
			defer f.Close()
			buf := make([]byte, 1<<20)
			for off := int64(0); ; {
				n, err := f.ReadAt(buf, off)
				off += int64(n)
				if err != nil {
					break
				}
			}
		})
	}
}

func measure(name string, n int64, fn func()) {
	c0 := cpu()
	t0 := time.Now()
	fn()
	wall := time.Since(t0).Seconds()
	used := cpu() - c0
	gib := float64(n) / (1 << 30)
	fmt.Printf("| %s | %.2f | %.3f | %.2f |\n", name, float64(n)/wall/1e9, used/gib, used/wall)
}

func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

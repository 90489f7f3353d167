package history

import "unsafe"

// Memory accounting. Every figure is the heap the store keeps for one
// thing, rounded up to the allocator's size classes, so that MaxBytes
// bounds the real heap (TestMemoryCapMatchesHeap compares both).
const (
	// epochBytes is the allocation behind an 8-hex-digit epoch string: a
	// tiny (under 16 bytes, pointer-free) object, which can keep a whole
	// 16-byte block alive.
	epochBytes = 16
	// messageSlotBytes and refSlotBytes are one slot of a channel's
	// message ring and of a TTL queue.
	messageSlotBytes = int64(unsafe.Sizeof(message{}))
	refSlotBytes     = int64(unsafe.Sizeof(ref{}))
)

// channelBytes is what a channel state costs besides its messages, its
// ring and the map: the struct, its name and its epoch. A name under 16
// bytes is a tiny object, counted as the 16-byte block it can keep alive.
func channelBytes(name string) int64 {
	return allocSize(int64(unsafe.Sizeof(channel{}))) + allocSize(max(int64(len(name)), 16)) + epochBytes
}

// mapBytes bounds the memory of a map[string]*channel that has held n
// entries. Go's swiss tables hold n at a load of at most 7/8 in 8-slot
// groups of 24-byte slots and control bytes; after churn (channels made and
// forgotten) tombstones keep tables split at twice that. Measured: 29 to 57
// bytes per entry fresh, up to 82 after churn; this counts 2 x the slots
// at 28 bytes, 73 to 88 per entry. Sweep rebuilds a map that shrank.
func mapBytes(n int) int64 {
	if n == 0 {
		return 0
	}
	slots := int64(8)
	for slots*7/8 < int64(n) {
		slots *= 2
	}
	return 2 * slots * 28
}

// sizeClasses are the Go allocator's small-object size classes
// (runtime/sizeclasses.go); larger objects take whole 8 KiB pages.
var sizeClasses = [...]int64{
	0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280,
	1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
	6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072,
	20480, 21760, 24576, 27264, 28672, 32768,
}

// allocSize returns the heap an allocation of n bytes takes.
func allocSize(n int64) int64 {
	if n > sizeClasses[len(sizeClasses)-1] {
		return (n + 8191) &^ 8191
	}
	lo, hi := 0, len(sizeClasses)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if sizeClasses[mid] < n {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return sizeClasses[lo]
}

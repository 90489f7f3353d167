package transfer

import (
	"sync"
	"time"
)

// progressEvery is the least time between two progress events of a file.
const progressEvery = 100 * time.Millisecond

// emitter delivers events to a callback one at a time, from any goroutine.
type emitter struct {
	mu sync.Mutex
	fn func(Event) // guarded by mu (called under it)
}

func newEmitter(fn func(Event)) *emitter { return &emitter{fn: fn} }

// emit stamps ev with the time and delivers it.
func (em *emitter) emit(ev Event) {
	if em == nil || em.fn == nil {
		return
	}
	ev.Time = time.Now()
	em.mu.Lock()
	defer em.mu.Unlock()
	em.fn(ev)
}

// fileTicker rate-limits the progress events of one file.
type fileTicker struct {
	em   *emitter
	ev   Event // File, Size and Peer filled in
	last time.Time
}

func newFileTicker(em *emitter, peer, file string, size int64) fileTicker {
	return fileTicker{em: em, ev: Event{Kind: EventProgress, Peer: peer, File: file, Size: size}, last: time.Now()}
}

// at reports done bytes if progressEvery has passed since the last report.
func (t *fileTicker) at(done int64) {
	if t == nil || t.em == nil || t.em.fn == nil {
		return
	}
	now := time.Now()
	if now.Sub(t.last) < progressEvery {
		return
	}
	t.last = now
	ev := t.ev
	ev.Done = done
	t.em.emit(ev)
}

// xferRate returns bytes per second over d.
func xferRate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

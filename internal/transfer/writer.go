package transfer

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// errWriterClosed is what enqueueing returns once the writer has stopped.
var errWriterClosed = errors.New("transfer: connection writer stopped")

// frameWriter is the receiver's only writer on a connection. It owns the
// write deadline and sends a keepalive whenever it has been quiet for
// every, so that the sender can tell a busy receiver (hashing, syncing)
// from a dead one. The handler enqueues encoded frames, blocking, and
// closes q when it has nothing more to say; run then flushes and returns.
type frameWriter struct {
	conn  net.Conn
	q     chan []byte // closed by the handler, the only sender
	every time.Duration
	idle  time.Duration // write deadline; 0 for none
	done  chan struct{} // closed when run returns
	err   error         // why run stopped early; read after done

	progMu  sync.Mutex
	prog    progressReport // the latest progress, sent on the next tick; guarded by progMu
	progSeq uint64         // bumped by each report; guarded by progMu
}

// reportEvery is how often the writer reports progress to the sender.
const reportEvery = 200 * time.Millisecond

// report records the progress of the file being received; the writer
// sends the latest on its next tick, so that reporting never blocks.
// It allocates nothing: the receiver reports every piece it writes.
func (w *frameWriter) report(p progressReport) {
	w.progMu.Lock()
	w.prog = p
	w.progSeq++
	w.progMu.Unlock()
}

// latest returns the latest progress and its sequence number.
func (w *frameWriter) latest() (progressReport, uint64) {
	w.progMu.Lock()
	defer w.progMu.Unlock()
	return w.prog, w.progSeq
}

func newFrameWriter(conn net.Conn, every, idle time.Duration) *frameWriter {
	return &frameWriter{conn: conn, q: make(chan []byte, 64), every: every, idle: idle, done: make(chan struct{})}
}

// run writes until q is closed or a write fails; a failed write closes the
// connection so that the handler's reads end too.
func (w *frameWriter) run() {
	defer close(w.done)
	bw := bufio.NewWriterSize(w.conn, 64<<10)
	t := time.NewTicker(min(w.every, reportEvery))
	defer t.Stop()
	last := time.Now()
	keepalive := appendFrame(nil, fKeepalive, nil)
	var sent uint64 // progSeq of the last progress sent
	for {
		var err error
		select {
		case f, ok := <-w.q:
			if !ok {
				w.err = w.flush(bw)
				return
			}
			bw.Write(f)
			w.drain(bw) // join whatever else is queued into one write
			err = w.flush(bw)
		case <-t.C:
			if p, seq := w.latest(); seq != sent {
				sent = seq
				bw.Write(appendFrame(nil, fProgress, appendProgress(nil, p)))
			} else if time.Since(last) < w.every {
				continue
			} else {
				bw.Write(keepalive)
			}
			err = w.flush(bw)
		}
		if err != nil {
			w.err = err
			w.conn.Close()
			return
		}
		last = time.Now()
	}
}

func (w *frameWriter) drain(bw *bufio.Writer) {
	for {
		select {
		case f, ok := <-w.q:
			if !ok {
				return // run sees the close on its next receive
			}
			bw.Write(f)
		default:
			return
		}
	}
}

func (w *frameWriter) flush(bw *bufio.Writer) error {
	if w.idle > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.idle))
	}
	return bw.Flush()
}

// send enqueues one encoded frame.
func (w *frameWriter) send(ctx context.Context, frame []byte) error {
	select {
	case w.q <- frame:
		return nil
	case <-w.done:
		if w.err != nil {
			return w.err
		}
		return errWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close tells run to flush and stop, and waits for it.
func (w *frameWriter) close() error {
	close(w.q)
	<-w.done
	return w.err
}

package udp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// benchMagic starts every bench datagram; others are ignored.
var benchMagic = [4]byte{'N', 'K', 'B', '1'}

// MinBenchSize is the smallest bench datagram: magic, sequence number and
// send time.
const MinBenchSize = 20

// BenchConfig is the load Bench generates.
type BenchConfig struct {
	Addr     string        // HOST:PORT of an echo server
	Rate     int           // datagrams per second, at least 1
	Size     int           // bytes per datagram, MinBenchSize to 65507
	Duration time.Duration // how long to send
	Wait     time.Duration // how long to wait for late echoes after the last send; 0 means 1s
}

// Report is what Bench measured. Loss counts every datagram sent whose
// echo did not come back within Wait, in either direction.
type Report struct {
	Addr        string  `json:"addr"`
	Size        int     `json:"size"`
	TargetRate  int     `json:"target_rate"`
	Duration    float64 `json:"duration_s"`   // time spent sending
	Sent        int64   `json:"sent"`         // datagrams handed to the kernel
	SendErrors  int64   `json:"send_errors"`  // sends the kernel refused (not counted in Sent)
	Received    int64   `json:"received"`     // distinct datagrams echoed back
	Lost        int64   `json:"lost"`         // Sent - Received
	LossPercent float64 `json:"loss_percent"` // 100 * Lost / Sent
	Reordered   int64   `json:"reordered"`    // arrived after a higher sequence number
	Duplicates  int64   `json:"duplicates"`   // arrived more than once
	Foreign     int64   `json:"foreign"`      // datagrams that were not ours
	Rate        float64 `json:"rate"`         // achieved send rate, datagrams/s
	JitterMs    float64 `json:"jitter_ms"`    // RFC 3550 interarrival jitter of round-trip times
	RTTMinMs    float64 `json:"rtt_min_ms"`   //
	RTTP50Ms    float64 `json:"rtt_p50_ms"`   //
	RTTP90Ms    float64 `json:"rtt_p90_ms"`   //
	RTTP99Ms    float64 `json:"rtt_p99_ms"`   //
	RTTMaxMs    float64 `json:"rtt_max_ms"`   //
	Refused     bool    `json:"refused"`      // the host said nothing listens on the port
}

// Bench sends cfg.Rate datagrams per second for cfg.Duration to an echo
// server, each carrying a sequence number and its send time, and measures
// what comes back. It returns when the sending is over and every echo
// arrived or Wait passed since the last send, or when ctx ends (then with
// what was measured so far).
func Bench(ctx context.Context, cfg BenchConfig) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", cfg.Addr)
	if err != nil {
		return Report{}, fmt.Errorf("udp: bench: %w", err)
	}
	conn := c.(*net.UDPConn)
	defer conn.Close()
	_ = conn.SetReadBuffer(socketBuffer) // best effort: a larger buffer loses less at high rates
	_ = conn.SetWriteBuffer(socketBuffer)

	start := time.Now()
	rec := &recorder{start: start, limit: benchTotal(cfg), complete: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { rec.loop(conn, cfg.Size) })

	rep := Report{Addr: cfg.Addr, Size: cfg.Size, TargetRate: cfg.Rate}
	sendDur := send(ctx, conn, cfg, start, &rep)
	rec.setTarget(rep.Sent)
	t := time.NewTimer(cfg.Wait)
	select {
	case <-rec.complete:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	rec.stop.Store(true) // a loop that a stream keeps busy returns after its batch
	conn.Close()
	wg.Wait()

	rec.fill(&rep)
	rep.Duration = sendDur.Seconds()
	if sendDur > 0 {
		rep.Rate = float64(rep.Sent) / sendDur.Seconds()
	}
	if rec.err != nil {
		return rep, rec.err
	}
	if rep.Received == 0 && rep.Refused {
		return rep, fmt.Errorf("udp: %s: %w", cfg.Addr, ErrRefused)
	}
	return rep, nil
}

func (c *BenchConfig) check() error {
	var errs []error
	if c.Rate < 1 {
		errs = append(errs, fmt.Errorf("udp: bench rate %d: want at least 1 datagram/s", c.Rate))
	}
	if c.Size < MinBenchSize || c.Size > 65507 {
		errs = append(errs, fmt.Errorf("udp: bench size %d: want %d to 65507 bytes", c.Size, MinBenchSize))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("udp: bench duration %v: want more than 0", c.Duration))
	}
	if c.Wait <= 0 {
		c.Wait = time.Second
	}
	return errors.Join(errs...)
}

// benchInterval is the time between two datagrams.
func benchInterval(cfg BenchConfig) time.Duration {
	return max(time.Second/time.Duration(cfg.Rate), 1)
}

// benchTotal is how many datagrams a run sends at most.
func benchTotal(cfg BenchConfig) int64 { return int64(cfg.Duration / benchInterval(cfg)) }

// benchBatch is how many datagrams Bench sends or reads with one system
// call where the system batches (Linux).
const benchBatch = 64

// benchWakes is about how many times a second the sender wakes at high
// rates: it waits until this many datagrams' worth of time has passed and
// sends them together (benchPace).
const benchWakes = 10000

// benchPace is how many datagrams the sender waits for before it wakes:
// one at rates up to benchWakes per second, so that slow runs keep exact
// spacing; above, rate/benchWakes, at most benchBatch. A timer wake per
// datagram cost more CPU than its send at 200,000 datagrams/s, on the two
// cores the client shares with the server.
func benchPace(rate int) int64 { return int64(min(max(rate/benchWakes, 1), benchBatch)) }

// send paces the datagrams: datagram i is due at start + i/rate. It wakes
// when benchPace datagrams are due and sends every datagram due at once,
// up to benchBatch with one system call, so a sender that falls behind
// catches up in batches. It returns the time spent.
func send(ctx context.Context, conn *net.UDPConn, cfg BenchConfig, start time.Time, rep *Report) time.Duration {
	s := newSender(conn, cfg.Size)
	interval := benchInterval(cfg)
	total := benchTotal(cfg)
	pace := benchPace(cfg.Rate)
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for seq := int64(0); seq < total; {
		elapsed := time.Since(start)
		due := min(int64(elapsed/interval)+1, total)
		if want := min(seq+pace, total); due < want {
			// Datagram want-1 is due at (want-1)*interval.
			t.Reset(time.Duration(want-1)*interval - elapsed)
			select {
			case <-ctx.Done():
				return time.Since(start)
			case <-t.C:
			}
			continue
		}
		if ctx.Err() != nil {
			return time.Since(start)
		}
		n := min(due-seq, int64(s.max()))
		sent, failed, err := s.send(seq, n, elapsed)
		rep.Sent += int64(sent)
		rep.SendErrors += int64(failed)
		if err != nil && isRefused(err) {
			rep.Refused = true
		}
		seq += n
	}
	return time.Since(start)
}

// sender writes runs of bench datagrams: with UDP GSO where the kernel
// offers it (one send of up to 64 datagrams laid end to end, cut by the
// kernel), else with sendmmsg batches (Linux) or one by one. The receiver
// sees the same datagrams either way. Owned by send.
type sender struct {
	conn *net.UDPConn
	size int
	gso  int    // datagrams per GSO send; 0 when off
	run  []byte // gso datagrams end to end
	bc   *batchConn
	bufs [][]byte // benchBatch datagrams for bc
}

func newSender(conn *net.UDPConn, size int) *sender {
	s := &sender{conn: conn, size: size, bc: newBatchConn(conn, benchBatch, 0), bufs: make([][]byte, benchBatch)}
	for i := range s.bufs {
		s.bufs[i] = newBenchDatagram(size)
	}
	if s.gso = setGSO(conn, size); s.gso > 0 {
		s.run = make([]byte, 0, s.gso*size)
		for range s.gso {
			s.run = append(s.run, newBenchDatagram(size)...)
		}
	}
	return s
}

// newBenchDatagram returns a bench datagram of size bytes: the magic, room
// for the sequence number and send time, then a counting pattern.
func newBenchDatagram(size int) []byte {
	b := make([]byte, size)
	copy(b, benchMagic[:])
	for j := range b[MinBenchSize:] {
		b[MinBenchSize+j] = byte(j)
	}
	return b
}

// max is the most datagrams one call of send takes.
func (s *sender) max() int {
	if s.gso > 0 {
		return s.gso
	}
	return benchBatch
}

// send sends datagrams seq to seq+n-1 stamped with elapsed. A GSO send the
// kernel refuses for any reason but ICMP port unreachable (a device that
// cannot cut it, a segment larger than the path's MTU) turns GSO off and
// goes again through the batch path.
func (s *sender) send(seq, n int64, elapsed time.Duration) (sent, failed int, err error) {
	if s.gso > 0 {
		for i := range n {
			d := s.run[int(i)*s.size:]
			binary.BigEndian.PutUint64(d[4:], uint64(seq+i))
			binary.BigEndian.PutUint64(d[12:], uint64(elapsed))
		}
		_, err := s.conn.Write(s.run[:int(n)*s.size])
		switch {
		case err == nil:
			return int(n), 0, nil
		case isRefused(err):
			return 0, int(n), err
		}
		s.gso = 0
		clearGSO(s.conn)
	}
	for i := range n {
		binary.BigEndian.PutUint64(s.bufs[i][4:], uint64(seq+i))
		binary.BigEndian.PutUint64(s.bufs[i][12:], uint64(elapsed))
		s.bc.Queue(s.bufs[i])
	}
	return s.bc.Flush()
}

// recorder takes the echoes. Owned by loop until it returns: seen, rtts,
// highest, jitter, lastTransit and the counters.
type recorder struct {
	start    time.Time
	limit    int64         // sequence numbers at or above it were never sent
	complete chan struct{} // closed once every datagram sent came back
	stop     atomic.Bool   // Bench is done: loop returns after its batch

	mu       sync.Mutex
	target   int64 // guarded by mu; datagrams sent, once known, else 0
	received int64 // guarded by mu; distinct echoes
	closed   bool  // guarded by mu; complete is closed

	seen        []uint64 // bit per sequence number
	rtts        []time.Duration
	highest     int64
	jitter      float64 // RFC 3550 J, in nanoseconds
	lastTransit time.Duration
	reordered   int64
	duplicates  int64
	foreign     int64
	refused     bool
	err         error
}

func (r *recorder) loop(conn *net.UDPConn, size int) {
	bc := newBatchConn(conn, benchBatch, size)
	r.highest = -1
	batch := func(n int) bool {
		now := time.Since(r.start)
		for i := range n {
			seq, rtt, ok := parseEcho(bc.Data(i), r.limit, now)
			if !ok {
				r.foreign++
				continue
			}
			r.record(seq, rtt)
		}
		return !r.stop.Load()
	}
	for {
		err := bc.ReadLoop(batch)
		switch {
		case err == nil: // Bench is done
		case isRefused(err):
			r.refused = true
			continue
		case !errors.Is(err, net.ErrClosed):
			r.err = fmt.Errorf("udp: bench receive: %w", err)
		}
		return
	}
}

// parseEcho decodes an echoed bench datagram received at now (since the
// run's start): its sequence number and round trip. ok is false for a
// datagram that is not one of ours: too short, another magic, a sequence
// number at or above limit (never sent), or a send time in the future.
func parseEcho(b []byte, limit int64, now time.Duration) (seq int64, rtt time.Duration, ok bool) {
	if len(b) < MinBenchSize || [4]byte(b[:4]) != benchMagic {
		return 0, 0, false
	}
	seq = int64(binary.BigEndian.Uint64(b[4:]))
	sent := time.Duration(binary.BigEndian.Uint64(b[12:]))
	if seq < 0 || seq >= limit || sent < 0 || sent > now {
		return 0, 0, false
	}
	return seq, now - sent, true
}

// record counts the echo of seq that took rtt.
func (r *recorder) record(seq int64, rtt time.Duration) {
	word, bit := int(seq/64), uint64(1)<<(seq%64)
	if word >= len(r.seen) {
		r.seen = append(r.seen, make([]uint64, word+1-len(r.seen))...)
	}
	if r.seen[word]&bit != 0 {
		r.duplicates++
		return
	}
	r.seen[word] |= bit
	if seq < r.highest {
		r.reordered++
	}
	r.highest = max(r.highest, seq)
	// RFC 3550 section 6.4.1: J += (|D(i-1,i)| - J) / 16, where D is the
	// difference of two consecutive transit times, here round trips.
	if len(r.rtts) > 0 {
		d := math.Abs(float64(rtt - r.lastTransit))
		r.jitter += (d - r.jitter) / 16
	}
	r.lastTransit = rtt
	r.rtts = append(r.rtts, rtt)

	r.mu.Lock()
	r.received++
	r.checkLocked()
	r.mu.Unlock()
}

// setTarget tells the recorder how many datagrams were sent.
func (r *recorder) setTarget(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target = n
	r.checkLocked()
}

func (r *recorder) checkLocked() {
	if !r.closed && r.target > 0 && r.received >= r.target {
		r.closed = true
		close(r.complete)
	}
}

// fill writes the results into rep; call it after loop returned.
func (r *recorder) fill(rep *Report) {
	rep.Received = int64(len(r.rtts))
	rep.Lost = max(rep.Sent-rep.Received, 0)
	if rep.Sent > 0 {
		rep.LossPercent = 100 * float64(rep.Lost) / float64(rep.Sent)
	}
	rep.Reordered, rep.Duplicates, rep.Foreign = r.reordered, r.duplicates, r.foreign
	rep.Refused = rep.Refused || r.refused
	rep.JitterMs = r.jitter / 1e6
	if len(r.rtts) == 0 {
		return
	}
	slices.Sort(r.rtts)
	rep.RTTMinMs = ms(r.rtts[0])
	rep.RTTP50Ms = ms(percentile(r.rtts, 0.50))
	rep.RTTP90Ms = ms(percentile(r.rtts, 0.90))
	rep.RTTP99Ms = ms(percentile(r.rtts, 0.99))
	rep.RTTMaxMs = ms(r.rtts[len(r.rtts)-1])
}

// percentile is the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// WriteText writes the report for people.
func (rep Report) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `udp bench %s: %d-byte datagrams, %d/s target, %.1fs
sent        %d (%.0f/s achieved)%s
received    %d
lost        %d (%.2f%%)
reordered   %d
duplicates  %d
jitter      %.3f ms (RFC 3550, on round-trip times)
rtt         min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms
`, rep.Addr, rep.Size, rep.TargetRate, rep.Duration,
		rep.Sent, rep.Rate, sendErrNote(rep.SendErrors), rep.Received, rep.Lost, rep.LossPercent,
		rep.Reordered, rep.Duplicates, rep.JitterMs,
		rep.RTTMinMs, rep.RTTP50Ms, rep.RTTP90Ms, rep.RTTP99Ms, rep.RTTMaxMs)
	return err
}

func sendErrNote(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d refused by the kernel", n)
}

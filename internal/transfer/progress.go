package transfer

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/netkit/netkit/internal/termtext"
)

// ProgressStyle says how a Progress shows a transfer's events.
type ProgressStyle int

const (
	// ProgressLines writes one line to Err per connection, manifest, file
	// started, done, skipped or rejected, warning, error and summary; no
	// byte counts in between. For logs and pipes.
	ProgressLines ProgressStyle = iota
	// ProgressBars draws a bar on Err for each file in flight (name, bytes,
	// rate, time left) and writes above the bars the lines of ProgressLines,
	// except for starts. For terminals.
	ProgressBars
	// ProgressQuiet writes to Err only errors and rejected files, and the
	// code a TLS receiver prints, without which no sender can connect.
	ProgressQuiet
	// ProgressJSON writes every event to Out as one JSON object per line
	// and to Err what ProgressQuiet writes.
	ProgressJSON
)

// barRefresh is how often ProgressBars redraws.
const barRefresh = 150 * time.Millisecond

// ProgressConfig configures a Progress.
type ProgressConfig struct {
	Style    ProgressStyle
	Out      io.Writer // ProgressJSON's JSON lines; nil for none
	Err      io.Writer // lines and bars for people; nil for none
	Receiver bool      // the events come from Receive: "received", "from"
	Classic  bool      // the classic protocol: no hashes, nothing verified
	TLS      bool      // legacy TLS: the listening event's code is a certificate fingerprint
	Confirm  bool      // recv --confirm: the confirmation shows each offer, so its manifest event has no line
	BarWidth int       // columns of ProgressBars; 0 means the terminal's width
}

// Progress shows the events of Send or Receive. Pass its Event method as
// SendConfig.Events or RecvConfig.Events and call Close when the transfer
// has returned. Event is safe for concurrent use, so one Progress serves
// every connection of a receiver. Lines are written under a lock, one
// event at a time, so that they never interleave.
type Progress struct {
	cfg ProgressConfig

	mu     sync.Mutex
	closed bool                 // guarded by mu
	err    error                // the first write error; guarded by mu
	bars   map[fileKey]*fileBar // files in flight with ProgressBars; guarded by mu

	// With ProgressBars: the bar container, the channel that makes it redraw,
	// and the ticker goroutine that feeds that channel until stop closes.
	container *mpb.Progress
	redraw    chan any
	shutdown  chan any // closed by mpb when the container has stopped
	stop      chan struct{}
	ticker    sync.WaitGroup
}

// fileKey names one file of one connection: a receiver can get files of
// the same name from two senders at once.
type fileKey struct{ peer, file string }

// fileBar is the bar of one file in flight.
type fileBar struct {
	bar  *mpb.Bar
	last time.Time // of the event of the previous update, for the rate
}

// NewProgress returns a Progress that writes as cfg says. With
// ProgressBars it starts a goroutine that Close stops.
func NewProgress(cfg ProgressConfig) *Progress {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Err == nil {
		cfg.Err = io.Discard
	}
	p := &Progress{cfg: cfg}
	if cfg.Style != ProgressBars {
		return p
	}
	p.bars = make(map[fileKey]*fileBar)
	p.redraw = make(chan any)
	p.shutdown = make(chan any)
	p.stop = make(chan struct{})
	p.container = mpb.New(
		mpb.WithOutput(cfg.Err),
		mpb.WithWidth(cfg.BarWidth),
		// Progress redraws on its own ticker, so that Close can draw the
		// last lines before it stops the container.
		mpb.WithManualRefresh(p.redraw),
		mpb.WithShutdownNotifier(p.shutdown),
	)
	p.ticker.Go(p.tick)
	return p
}

// tick asks the bar container to redraw every barRefresh until stop closes.
func (p *Progress) tick() {
	t := time.NewTicker(barRefresh)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			select {
			case p.redraw <- now:
			case <-p.shutdown:
				return
			case <-p.stop:
				return
			}
		case <-p.stop:
			return
		}
	}
}

// Event shows e. It does nothing after Close.
func (p *Progress) Event(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	switch p.cfg.Style {
	case ProgressJSON:
		b, err := json.Marshal(e)
		if err == nil {
			_, err = p.cfg.Out.Write(append(b, '\n'))
		}
		p.keepErr(err)
		if e.Kind == EventError || e.Kind == EventReject { // the code is in the JSON
			p.quietLineLocked(e)
		}
	case ProgressQuiet:
		p.quietLineLocked(e)
	case ProgressBars:
		p.barEventLocked(e)
	default:
		if line := p.line(e); line != "" {
			p.writeLocked(p.cfg.Err, line)
		}
	}
}

// Close stops drawing: bars of files still in flight are removed and the
// lines written so far are drawn. It returns the first error writing to
// Out or Err.
func (p *Progress) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.err
	}
	p.closed = true
	if p.container == nil {
		return p.err
	}
	for k, fb := range p.bars {
		fb.bar.Abort(true)
		delete(p.bars, k)
	}
	close(p.stop)
	p.ticker.Wait()
	// One last redraw writes the lines that came since the previous one;
	// the container's own shutdown would drop them.
	select {
	case p.redraw <- time.Now():
	case <-p.shutdown:
	}
	p.container.Shutdown()
	p.keepErr(p.container.Error)
	return p.err
}

// quietLineLocked writes e's line if it is one that ProgressQuiet shows.
func (p *Progress) quietLineLocked(e Event) {
	var line string
	switch e.Kind {
	case EventError, EventReject:
		line = p.line(e)
	case EventListening:
		switch {
		case e.Code != "" && p.cfg.TLS:
			line = p.codeLine(e)
		case e.Code != "":
			line = "code " + e.Code
		}
	case EventCode:
		line = p.line(e)
	}
	if line != "" {
		p.writeLocked(p.cfg.Err, line)
	}
}

// barEventLocked updates the bars for e and writes its line above them.
func (p *Progress) barEventLocked(e Event) {
	key := fileKey{e.Peer, e.File}
	switch e.Kind {
	case EventStart:
		if !p.sizeUnknown() { // a bar without a total would say nothing
			p.startBarLocked(key, e)
			return
		}
	case EventProgress:
		fb := p.bars[key]
		if fb == nil {
			fb = p.startBarLocked(key, e)
		}
		if d := e.Time.Sub(fb.last); d > 0 {
			fb.bar.EwmaSetCurrent(e.Done, d)
			fb.last = e.Time
		} else {
			fb.bar.SetCurrent(e.Done) // no time to measure a rate over
		}
		return
	case EventDone, EventSkip, EventReject, EventError:
		if fb := p.bars[key]; fb != nil {
			fb.bar.Abort(true) // removes the bar if not complete; the line says how it ended
			delete(p.bars, key)
		}
	}
	if line := p.line(e); line != "" {
		p.writeLocked(p.container, line)
	}
}

// startBarLocked adds a bar for the file e names, at e.Offset of e.Size.
func (p *Progress) startBarLocked(key fileKey, e Event) *fileBar {
	if old := p.bars[key]; old != nil {
		old.bar.Abort(true)
	}
	name := shortName(printable(e.File), 40)
	bar := p.container.AddBar(e.Size,
		mpb.BarRemoveOnComplete(), // the done line replaces it
		mpb.PrependDecorators(
			decor.Name(name, decor.WCSyncWidthR),
		),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace),
			decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace),
		),
	)
	bar.SetCurrent(e.Offset)
	fb := &fileBar{bar: bar, last: e.Time}
	p.bars[key] = fb
	return fb
}

// writeLocked writes line and a newline to w, keeping the first error.
func (p *Progress) writeLocked(w io.Writer, line string) {
	_, err := io.WriteString(w, line+"\n")
	p.keepErr(err)
}

func (p *Progress) keepErr(err error) {
	if p.err == nil {
		p.err = err
	}
}

// line returns the line ProgressLines writes for e, or "" for none. On the
// receiver, lines about one sender's files start with its address.
func (p *Progress) line(e Event) string {
	switch e.Kind {
	case EventListening:
		return p.listening(e)
	case EventCode:
		return "code " + e.Code + "\non the receiving machine run: netkit recv --relay " + e.Addr + " " + e.Code
	case EventWaiting:
		return e.Reason
	case EventConnected:
		if p.cfg.Receiver {
			return "connection from " + e.Peer
		}
		return "connected to " + e.Peer
	case EventManifest:
		if p.cfg.Receiver && p.cfg.Confirm {
			return ""
		}
		s := "sending " + countFiles(e.Files)
		if p.cfg.Receiver {
			s = e.Peer + " offers " + countFiles(e.Files)
		}
		if !p.sizeUnknown() {
			s += ", " + formatBytes(e.Bytes)
		}
		return s
	case EventSummary:
		return p.summary(e)
	}
	s := p.fileLine(e)
	if s != "" && p.cfg.Receiver && e.Peer != "" {
		s = e.Peer + ": " + s
	}
	return s
}

// fileLine returns the line for an event about a file, or "" for none.
// Names and reasons come from the other end: they are quoted if they hold
// characters that a terminal would interpret.
func (p *Progress) fileLine(e Event) string {
	name := printable(e.File)
	reason := printable(e.Reason)
	switch e.Kind {
	case EventStart:
		switch {
		case p.sizeUnknown():
			return "start " + name
		case e.Offset > 0:
			return fmt.Sprintf("resume %s at %s of %s", name, formatBytes(e.Offset), formatBytes(e.Size))
		}
		return fmt.Sprintf("start %s (%s)", name, formatBytes(e.Size))
	case EventDone:
		s := fmt.Sprintf("done %s (%s)", name, formatBytes(e.Size))
		if e.Hash != "" {
			s += " blake3 " + e.Hash
		}
		return s
	case EventSkip:
		return withReason("skip "+name, reason)
	case EventReject:
		return withReason("rejected "+name, reason)
	case EventWarning:
		return withReason(withReason("warning", name), reason)
	case EventError:
		return withReason(withReason("error", name), reason)
	}
	return "" // EventProgress, and kinds this version does not know
}

// sizeUnknown reports whether files arrive without their size announced:
// a classic sender only sends a name.
func (p *Progress) sizeUnknown() bool { return p.cfg.Classic && p.cfg.Receiver }

// listening is the receiver's first screen: where files go, who may send,
// and a command to paste on the sending machine for each of this
// machine's addresses.
func (p *Progress) listening(e Event) string {
	into := ""
	if e.Dir != "" {
		into = "receiving into " + e.Dir + ", "
	}
	if len(e.Addrs) == 0 && e.Code != "" && !p.cfg.TLS {
		return into + "through the relay " + e.Addr // recv --relay
	}
	var b strings.Builder
	switch {
	case p.cfg.TLS:
		b.WriteString(into + "listening on " + e.Addr + " with TLS\n" + p.codeLine(e))
		return b.String()
	case e.Code != "":
		b.WriteString(into + "listening on " + e.Addr + "; only a sender with the code can send\ncode " + e.Code)
	case p.cfg.Classic:
		b.WriteString(into + "listening on " + e.Addr + " (classic protocol: anyone who can reach it may send, nothing is verified)")
	default:
		b.WriteString(into + "listening on " + e.Addr + " with --open: anyone who can reach it may send, in the clear")
	}
	addrs := e.Addrs
	if len(addrs) > 3 {
		addrs = addrs[:3]
	}
	for i, a := range addrs {
		if i == 0 {
			b.WriteString("\non the sending machine run:")
		}
		switch {
		case e.Code != "":
			b.WriteString("\n  netkit send --code " + e.Code + " PATH... " + a)
		case p.cfg.Classic:
			b.WriteString("\n  netkit send --classic FILE " + a)
		default:
			b.WriteString("\n  netkit send --open PATH... " + a)
		}
	}
	return b.String()
}

// codeLine tells what a sender must run to reach a TLS receiver.
func (p *Progress) codeLine(e Event) string {
	port := "PORT"
	if _, pt, err := net.SplitHostPort(e.Addr); err == nil {
		port = pt
	}
	return fmt.Sprintf("code %s: send with netkit send --tls --code %s PATH... HOST:%s", e.Code, e.Code, port)
}

// summary is the last line of a transfer: "sent 12 files, 1.2 GiB in
// 0.8s (1.5 GiB/s), 12 verified".
func (p *Progress) summary(e Event) string {
	verb := "sent"
	if p.cfg.Receiver {
		verb = "received"
	}
	s := fmt.Sprintf("%s %s, %s in %s", verb, countFiles(e.Files), formatBytes(e.Bytes), formatElapsed(e.Elapsed))
	rate := e.Rate
	if rate == 0 && e.Elapsed > 0 {
		rate = float64(e.Bytes) / e.Elapsed.Seconds()
	}
	if rate > 0 {
		s += " (" + formatBytes(int64(rate)) + "/s)"
	}
	if p.cfg.Classic {
		s += ", not verified (classic protocol)"
	} else {
		s += fmt.Sprintf(", %d verified", e.Verified)
	}
	for _, n := range []struct {
		count int
		what  string
	}{{e.Skipped, "already there"}, {e.Rejected, "rejected"}, {e.Failed, "failed"}} {
		if n.count > 0 {
			s += fmt.Sprintf(", %d %s", n.count, n.what)
		}
	}
	if p.cfg.Receiver && e.Peer != "" {
		s += " from " + e.Peer
	}
	return s
}

// withReason appends ": reason" to s, unless reason is empty.
func withReason(s, reason string) string {
	if reason == "" {
		return s
	}
	return s + ": " + reason
}

// countFiles is "1 file" or "n files".
func countFiles(n int) string {
	if n == 1 {
		return "1 file"
	}
	return strconv.Itoa(n) + " files"
}

// formatBytes writes n for people, in powers of 1024: "512 B", "1.5 KiB",
// "1.2 GiB".
func formatBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	const units = "KMGTPE"
	f := float64(n) / 1024
	i := 0
	for f >= 1023.95 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}

// formatElapsed writes d for people: "42ms", "0.8s", "12s", "1m15s".
func formatElapsed(d time.Duration) string {
	switch {
	case d < 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

// printable returns s, or s quoted if it holds characters that are not
// printable, such as the escape sequences a hostile sender could put in a
// file name to rewrite the receiver's terminal.
func printable(s string) string { return termtext.Quote(s) }

// shortName fits name in max runes by cutting its middle.
func shortName(name string, max int) string {
	r := []rune(name)
	if len(r) <= max {
		return name
	}
	half := (max - 1) / 2
	return string(r[:half]) + "…" + string(r[len(r)-(max-1-half):])
}

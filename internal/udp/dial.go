package udp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/netkit/netkit/internal/termtext"
)

// DialConfig is what Dial sends and how long it waits for replies.
type DialConfig struct {
	Addr    string        // HOST:PORT of the peer
	Timeout time.Duration // how long to wait for replies after the last send; 0 means 1s
	Count   int           // if > 0, send Count test datagrams instead of reading stdin
	Size    int           // size of each test datagram, at least 1; 0 means 64
}

// DialStats counts what Dial sent and received.
type DialStats struct {
	Sent, Received int
}

// Dial sends datagrams to cfg.Addr and writes each reply, escaped, as one
// line to stdout. Without Count, each line of stdin (without its newline)
// is one datagram; with Count, it sends Count datagrams of Size bytes. It
// then waits up to Timeout for outstanding replies and returns. A Count
// run that gets no reply at all is an error.
func Dial(ctx context.Context, cfg DialConfig, stdin io.Reader, stdout io.Writer) (DialStats, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Size <= 0 {
		cfg.Size = 64
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", cfg.Addr)
	if err != nil {
		return DialStats{}, fmt.Errorf("udp: dial: %w", err)
	}
	conn := c.(*net.UDPConn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	r := &replies{conn: conn, out: stdout, timeout: cfg.Timeout, got: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Go(r.loop)

	var st DialStats
	if cfg.Count > 0 {
		err = sendTest(conn, cfg, &st)
	} else {
		err = sendLines(conn, stdin, &st)
	}
	if err == nil {
		err = r.wait(ctx, st.Sent)
	}
	conn.Close()
	wg.Wait()
	st.Received = r.count()
	switch {
	case ctx.Err() != nil:
		return st, nil
	case err != nil:
		return st, err
	case r.err != nil:
		return st, r.err
	case cfg.Count > 0 && st.Received == 0:
		return st, fmt.Errorf("udp: no reply from %s within %v", cfg.Addr, cfg.Timeout)
	}
	return st, nil
}

// sendTest sends cfg.Count datagrams of cfg.Size bytes: "netkit N " and
// dots.
func sendTest(conn *net.UDPConn, cfg DialConfig, st *DialStats) error {
	buf := make([]byte, cfg.Size)
	for i := range cfg.Count {
		for j := range buf {
			buf[j] = '.'
		}
		copy(buf, fmt.Sprintf("netkit %d ", i+1))
		if _, err := conn.Write(buf); err != nil {
			return fmt.Errorf("udp: send: %w", refused(err))
		}
		st.Sent++
	}
	return nil
}

// sendLines sends each line of stdin as one datagram.
func sendLines(conn *net.UDPConn, stdin io.Reader, st *DialStats) error {
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 4096), MaxDatagram)
	for sc.Scan() {
		if _, err := conn.Write(sc.Bytes()); err != nil {
			return fmt.Errorf("udp: send: %w", refused(err))
		}
		st.Sent++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("udp: reading stdin: %w", err)
	}
	return nil
}

// replies prints what comes back on conn. Owned by loop: out, err (read
// after loop returns).
type replies struct {
	conn    *net.UDPConn
	out     io.Writer
	timeout time.Duration
	got     chan struct{} // a token per reply, capacity 1
	mu      sync.Mutex
	n       int // guarded by mu
	err     error
}

func (r *replies) loop() {
	buf := make([]byte, MaxDatagram)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			if isRefused(err) {
				r.err = fmt.Errorf("udp: receive: %w", ErrRefused)
			} else if !errors.Is(err, net.ErrClosed) {
				r.err = fmt.Errorf("udp: receive: %w", err)
			}
			return
		}
		if _, err := fmt.Fprintln(r.out, termtext.Escape(buf[:n])); err != nil {
			r.err = fmt.Errorf("udp: writing stdout: %w", err)
			return
		}
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default:
		}
	}
}

func (r *replies) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// wait returns once sent replies arrived, or after timeout without a new
// one.
func (r *replies) wait(ctx context.Context, sent int) error {
	t := time.NewTimer(r.timeout)
	defer t.Stop()
	for r.count() < sent {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			return nil
		case <-r.got:
			t.Reset(r.timeout)
		}
	}
	return nil
}

// refused turns a connection-refused error into ErrRefused.
func refused(err error) error {
	if isRefused(err) {
		return ErrRefused
	}
	return err
}

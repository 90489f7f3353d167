package transfer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// The relay pairs a sender and a receiver that cannot reach each other:
// both connect out to it. The sender makes a room named by its code's
// number, the receiver joins it with the same code, and from then on the
// relay copies bytes both ways. It sees the room number and ciphertext:
// the code exchange runs through it, so a relay that guesses the words
// spends its one guess and fails the transfer, and one that changes a
// byte fails it too (ErrTampered). docs/transfer.md, "Relay", has the
// bytes.

// DefaultRelayPort is the port netkit relay listens on by default.
const DefaultRelayPort = 8009

const (
	relayHelloLen = 11 // "nkrelay", version, op, room u16
	relayVersion  = 1
	opCreate      = 1 // sender: make the room, wait for the receiver
	opJoin        = 2 // receiver: join the room

	stOK      = 0 // create: room made (a second 0 follows when paired); join: paired
	stTaken   = 1 // create: the room is in use: pick another code
	stNoRoom  = 2 // join: no such room
	stRefused = 3 // reason follows
)

var relayMagic = [7]byte{'n', 'k', 'r', 'e', 'l', 'a', 'y'}

// RelayConfig configures Relay. Zero fields take the defaults in their
// comments.
type RelayConfig struct {
	MaxRooms  int           // rooms open at once, waiting or paired; 0 means 100
	RoomBytes int64         // bytes the relay carries from each end of a room; 0 means 64 GiB
	RoomTime  time.Duration // how long a paired room may last; 0 means 6h
	WaitTime  time.Duration // how long a room waits for its receiver; 0 means 10m
	Logger    *slog.Logger  // nil for slog.Default()
}

func (c *RelayConfig) defaults() {
	if c.MaxRooms <= 0 {
		c.MaxRooms = 100
	}
	if c.RoomBytes <= 0 {
		c.RoomBytes = 64 << 30
	}
	if c.RoomTime <= 0 {
		c.RoomTime = 6 * time.Hour
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// relayServer is Relay's state.
type relayServer struct {
	cfg   RelayConfig
	mu    sync.Mutex
	rooms map[uint16]chan net.Conn // waiting rooms: the receiver's conn goes in; guarded by mu
	open  int                      // rooms waiting or paired, guarded by mu
}

// Relay serves rooms on ln until ctx ends, then closes ln and every
// room's connections and returns after all its goroutines have: nil when
// ctx ended, else the listener's error.
func Relay(ctx context.Context, ln net.Listener, cfg RelayConfig) error {
	cfg.defaults()
	r := &relayServer{cfg: cfg, rooms: map[uint16]chan net.Conn{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("transfer: relay: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.serve(ctx, conn)
		}()
	}
}

// serve handles one client connection.
func (r *relayServer) serve(ctx context.Context, conn net.Conn) {
	handed := false
	defer func() {
		if !handed {
			conn.Close()
		}
	}()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var hello [relayHelloLen]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		return
	}
	if [7]byte(hello[:7]) != relayMagic || hello[7] != relayVersion || (hello[8] != opCreate && hello[8] != opJoin) {
		relayStatus(conn, stRefused, "not a netkit relay client, or another version")
		return
	}
	room := binary.BigEndian.Uint16(hello[9:])
	log := r.cfg.Logger.With("peer", conn.RemoteAddr().String(), "room", room)
	if hello[8] == opJoin {
		handed = r.join(conn, room, log)
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	joiner, st, why := r.create(room)
	if st != stOK {
		relayStatus(conn, st, why)
		return
	}
	defer r.leave()
	relayStatus(conn, stOK, "")
	conn.SetDeadline(time.Time{})
	log.Info("relay: room open")
	t := time.NewTimer(r.cfg.WaitTime)
	defer t.Stop()
	// The sender says nothing until it is paired: a read that returns
	// means it left (or broke the protocol), and the room goes.
	gone := make(chan bool, 1) // true when the sender sent a byte or left
	go func() {
		var b [1]byte
		_, err := conn.Read(b[:])
		var ne net.Error
		gone <- !(errors.As(err, &ne) && ne.Timeout())
	}()
	watching := true
	defer func() { // the watcher ends before serve does
		if watching {
			conn.Close()
			<-gone
		}
	}()
	var peer net.Conn
	select {
	case peer = <-joiner:
	case <-gone:
		watching = false
		r.drop(room, joiner)
		log.Info("relay: room closed: the sender left")
		return
	case <-t.C:
		r.drop(room, joiner)
		log.Info("relay: room closed: no receiver came", "wait", r.cfg.WaitTime)
		return
	case <-ctx.Done():
		r.drop(room, joiner)
		return
	}
	defer peer.Close()
	conn.SetReadDeadline(time.Now()) // stop the watcher before the copy reads
	watching = false
	if left := <-gone; left {
		log.Info("relay: room closed: the sender left as the receiver came")
		return
	}
	conn.SetReadDeadline(time.Time{})
	stopPeer := context.AfterFunc(ctx, func() { peer.Close() })
	defer stopPeer()
	r.pipe(conn, peer, log)
}

// create makes a waiting room.
func (r *relayServer) create(room uint16) (chan net.Conn, byte, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.rooms[room]; ok {
		return nil, stTaken, ""
	}
	if r.open >= r.cfg.MaxRooms {
		return nil, stRefused, fmt.Sprintf("relay full: %d rooms open; try again later", r.cfg.MaxRooms)
	}
	ch := make(chan net.Conn, 1)
	r.rooms[room] = ch
	r.open++
	return ch, stOK, ""
}

// drop removes a waiting room that nobody joined; a receiver that joined
// at that very moment is closed.
func (r *relayServer) drop(room uint16, ch chan net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rooms[room] == ch {
		delete(r.rooms, room)
	}
	select { // join hands over under mu: after this no receiver can come
	case c := <-ch:
		c.Close()
	default:
	}
}

func (r *relayServer) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open--
}

// join hands the receiver's connection to the room's sender, which owns
// it from then on.
func (r *relayServer) join(conn net.Conn, room uint16, log *slog.Logger) (handed bool) {
	conn.SetDeadline(time.Time{})
	r.mu.Lock()
	ch, ok := r.rooms[room]
	if ok {
		delete(r.rooms, room)
		ch <- conn // buffered, and only one joiner: the room's goroutine owns conn now
	}
	r.mu.Unlock()
	if !ok {
		relayStatus(conn, stNoRoom, "")
		return false
	}
	log.Info("relay: receiver joined")
	return true
}

// pipe tells both ends they are paired and copies bytes both ways, at
// most RoomBytes from each end, for at most RoomTime.
func (r *relayServer) pipe(sender, receiver net.Conn, log *slog.Logger) {
	if err := relayStatus(receiver, stOK, ""); err != nil {
		return
	}
	if err := relayStatus(sender, stOK, ""); err != nil {
		return
	}
	deadline := time.Now().Add(r.cfg.RoomTime)
	sender.SetDeadline(deadline)
	receiver.SetDeadline(deadline)
	start := time.Now()
	var wg sync.WaitGroup
	var up, down int64
	wg.Add(2)
	go func() { defer wg.Done(); up = r.copy(receiver, sender) }()
	go func() { defer wg.Done(); down = r.copy(sender, receiver) }()
	wg.Wait()
	log.Info("relay: room closed", "from_sender", up, "from_receiver", down, "elapsed", time.Since(start).Round(time.Millisecond))
}

// copy moves src to dst up to RoomBytes; at the end it closes dst for
// writing, or both when the limit or an error cut the room short.
func (r *relayServer) copy(dst, src net.Conn) int64 {
	n, err := io.CopyN(dst, src, r.cfg.RoomBytes)
	if err == io.EOF {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
			return n
		}
	}
	// The limit, a time-out or an error: the room ends for both.
	dst.Close()
	src.Close()
	return n
}

// relayStatus writes a status byte and, for stRefused, a reason.
func relayStatus(conn net.Conn, st byte, why string) error {
	b := []byte{st}
	if st == stRefused {
		why = clipReason(why)[:min(len(why), 255)]
		b = append(b, byte(len(why)))
		b = append(b, why...)
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := conn.Write(b)
	conn.SetWriteDeadline(time.Time{})
	return err
}

// relayDial connects to a relay and asks for op on room; it returns the
// connection once the relay said yes.
func relayDial(ctx context.Context, relay string, op byte, room int) (net.Conn, byte, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", relay)
	if err != nil {
		return nil, 0, dialError(relay, "is netkit relay running there", err)
	}
	b := append(relayMagic[:0:0], relayMagic[:]...)
	b = append(b, relayVersion, op)
	b = binary.BigEndian.AppendUint16(b, uint16(room))
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	st, err := relayRead(conn, b)
	conn.SetDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("transfer: relay %s: %w", relay, err)
	}
	if st != stOK {
		conn.Close()
	}
	return conn, st, nil
}

// relayRead writes hello and reads the relay's status; a refusal becomes
// an error with the relay's reason.
func relayRead(conn net.Conn, hello []byte) (byte, error) {
	if hello != nil {
		if _, err := conn.Write(hello); err != nil {
			return 0, err
		}
	}
	var st [2]byte
	if _, err := io.ReadFull(conn, st[:1]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, errors.New("the relay closed the connection (is it a netkit relay?)")
		}
		return 0, err
	}
	if st[0] == stRefused {
		if _, err := io.ReadFull(conn, st[1:]); err != nil {
			return 0, err
		}
		why := make([]byte, st[1])
		if _, err := io.ReadFull(conn, why); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("refused: %s", safeText(string(why)))
	}
	if st[0] > stRefused {
		return 0, errors.New("not a netkit relay")
	}
	return st[0], nil
}

// relayOffer makes a room on the relay under a fresh code, reports the
// code, and waits for the receiver to join.
func relayOffer(ctx context.Context, relay string, em *emitter) (net.Conn, string, error) {
	for range 20 {
		code, err := NewCode()
		if err != nil {
			return nil, "", err
		}
		_, room, _ := ParseCode(code)
		conn, st, err := relayDial(ctx, relay, opCreate, room)
		if err != nil {
			return nil, "", err
		}
		if st == stTaken {
			continue
		}
		em.emit(Event{Kind: EventCode, Code: code, Addr: relay})
		em.emit(Event{Kind: EventWaiting, Addr: relay, Code: code,
			Reason: "waiting for the receiver: netkit recv --relay " + relay + " " + code})
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		st, err = relayRead(conn, nil)
		stop()
		if err != nil || st != stOK {
			conn.Close()
			if ctx.Err() != nil {
				return nil, "", fmt.Errorf("transfer: stopped waiting for the receiver: %w", ctx.Err())
			}
			return nil, "", fmt.Errorf("transfer: relay %s: no receiver joined (the room expired or the relay stopped): %v", relay, err)
		}
		return conn, code, nil
	}
	return nil, "", fmt.Errorf("transfer: relay %s: no free room after 20 tries; try again later", relay)
}

// receiveRelay joins cfg.Code's room on cfg.Relay and serves the one
// transfer that comes through it.
func receiveRelay(ctx context.Context, cfg RecvConfig) error {
	code, room, err := ParseCode(cfg.Code)
	if err != nil {
		return err
	}
	cfg.Code, cfg.Open, cfg.Once = code, false, true
	dir := cfg.Dir
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("transfer: --dir: %w", err)
	}
	defer root.Close()
	s, err := newServer(cfg, root)
	if err != nil {
		return err
	}
	conn, st, err := relayDial(ctx, cfg.Relay, opJoin, room)
	if err != nil {
		return err
	}
	if st == stNoRoom {
		return fmt.Errorf("transfer: relay %s: no room for code %s: check the code, and that netkit send --relay is still waiting", cfg.Relay, code)
	}
	s.em.emit(Event{Kind: EventListening, Addr: cfg.Relay, Dir: absDir(dir), Code: code})
	var first error
	s.finished = func(err error) { first = err }
	if err := s.serveConn(ctx, conn); err != nil {
		return err
	}
	return first
}

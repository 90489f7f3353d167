// Package transfer sends files and directory trees over TCP and receives
// them safely: a code exchange (SPAKE2) that authenticates both ends and
// keys the encryption, a manifest, per-file accept/resume/skip/reject
// answers, BLAKE3 verification before a file becomes visible, partial
// files kept for resume, a relay for ends that cannot reach each other,
// and a classic mode that speaks the teaching protocol (name, "ok",
// bytes).
package transfer

import (
	"context"
	"net"
	"time"
)

// Event kinds, in the order a transfer produces them.
const (
	EventListening = "listening" // receiver: Addr, Dir, Addrs, and Code (the code, or with TLS the fingerprint)
	EventCode      = "code"      // sender with a relay: Code, Addr (the relay): tell the receiver
	EventWaiting   = "waiting"   // Reason: what this end waits for (the classic ok, the relay's peer)
	EventConnected = "connected" // Peer
	EventManifest  = "manifest"  // Files, Bytes: what the sender offers
	EventStart     = "start"     // File, Size, Offset (> 0 when resuming)
	EventProgress  = "progress"  // File, Size, Done (bytes of this file so far)
	EventSkip      = "skip"      // File, Reason: already there, same size and hash
	EventReject    = "reject"    // File, Reason: refused by the receiver
	EventDone      = "done"      // File, Size, Hash: verified and in place
	EventWarning   = "warning"   // File, Reason: e.g. a symlink skipped
	EventError     = "error"     // File (if any), Reason
	EventSummary   = "summary"   // Files, Bytes, Elapsed, Rate, Verified, Skipped, Rejected, Failed
)

// Event is one step of a transfer, for progress display and --json output.
// Fields that do not apply to a kind are zero.
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     string        `json:"event"`
	Peer     string        `json:"peer,omitempty"`
	Addr     string        `json:"addr,omitempty"`
	Code     string        `json:"code,omitempty"`
	Dir      string        `json:"dir,omitempty"`   // listening: where files go
	Addrs    []string      `json:"addrs,omitempty"` // listening: this machine's addresses, HOST:PORT
	File     string        `json:"file,omitempty"`  // path relative to the transfer root, "/"-separated
	Size     int64         `json:"size,omitempty"`
	Offset   int64         `json:"offset,omitempty"`
	Done     int64         `json:"done,omitempty"`
	Hash     string        `json:"hash,omitempty"` // BLAKE3-256, hex
	Reason   string        `json:"reason,omitempty"`
	Files    int           `json:"files,omitempty"`
	Bytes    int64         `json:"bytes,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns,omitempty"`
	Rate     float64       `json:"rate_bytes_per_s,omitempty"`
	Verified int           `json:"verified,omitempty"`
	Skipped  int           `json:"skipped,omitempty"`  // summary: files already there
	Rejected int           `json:"rejected,omitempty"` // summary: files refused
	Failed   int           `json:"failed,omitempty"`   // summary: files that failed
}

// Offer is what a sender offers, for RecvConfig.Confirm: at most
// MaxOfferNames names, with their sizes.
type Offer struct {
	Peer    string
	Entries int   // files and directories in the manifest
	Files   int   // files in the manifest
	Bytes   int64 // their total size
	Names   []OfferedFile
}

// OfferedFile is one entry of an Offer.
type OfferedFile struct {
	Name string // made safe to print (termtext.Safe)
	Size int64
	Dir  bool
}

// MaxOfferNames is how many entries an Offer lists.
const MaxOfferNames = 20

// Summary is the outcome of one transfer (one sender's connection).
type Summary struct {
	Files    int           // files sent or received and verified
	Skipped  int           // files already there
	Rejected int           // files the receiver refused
	Failed   int           // files that did not make it: unreadable, changed while sent, hash mismatch, disk error
	Bytes    int64         // file bytes the receiver confirmed it has on disk (after resume offsets)
	Elapsed  time.Duration //
	Verified int           // files verified: their hash matched the sender's, or every sealed record of them authenticated
}

// SendConfig configures Send.
type SendConfig struct {
	Addr        string        // receiver, host:port; "" with Relay
	Relay       string        // relay host:port: make a room there, report a new code (EventCode), wait for the receiver
	Paths       []string      // files and directories to send
	Follow      bool          // follow symlinks instead of skipping them with a warning
	Classic     bool          // the teaching protocol: one file, name, "ok", bytes
	Open        bool          // no code: only to a receiver that runs with Open; nothing is encrypted
	TLS         bool          // legacy: TLS pinned by Code, the receiver's certificate fingerprint
	Code        string        // the code the receiver printed (with TLS, its fingerprint)
	IdleTimeout time.Duration // give up when the receiver stalls this long
	Events      func(Event)   // called for each event, from one goroutine at a time; nil for none

	afterPiece func(pos int64) // tests: called after each piece of file data went out through a buffer
}

// RecvConfig configures Receive.
type RecvConfig struct {
	Dir         string           // where files go; nothing is written outside it
	Once        bool             // return after one transfer
	Classic     bool             // the teaching protocol (no code: anyone may send)
	Open        bool             // no code: anyone who reaches the port may send, in the clear
	Code        string           // the code senders must prove; "" makes a new one (unless Open, Classic or TLS)
	Relay       string           // ReceiveRelay: the relay's host:port
	Overwrite   bool             // replace existing files that differ
	MaxSize     int64            // refuse files larger than this; 0 means no limit
	IdleTimeout time.Duration    // drop a sender that stalls this long (its partial file is kept)
	Hold        time.Duration    // drop a sender that moves no file data for this long, whatever its keepalives; 0 means 2m
	MaxConns    int              // connections served at once, handshakes included; 0 means 16
	MaxFailures int              // wrong codes before Receive retires the code and returns ErrTooManyFailures; 0 means 10
	ManifestMem int64            // bytes all connections' manifests may take at once; 0 means 256 MiB
	TLS         bool             // legacy: serve TLS with a generated self-signed certificate, no code
	Confirm     func(Offer) bool // asked before answering each offer (after the code): false declines it; nil accepts all
	Events      func(Event)      // called for each event, from one goroutine at a time; nil for none

	freeSpace func() (int64, error) // tests: replaces the file system's free space
	takeover  time.Duration         // tests: replaces takeoverAfter
}

// Send sends cfg.Paths to the receiver at cfg.Addr. It returns nil when
// the transfer ran to its end, even if some files were rejected or failed
// (the events and Summary.Rejected and Summary.Failed say which); an error
// when it could not: the connection broke, the receiver gave up (its
// reason is in the error), or with TLS the certificate is not the one
// cfg.Code names (ErrCodeMismatch).
func Send(ctx context.Context, cfg SendConfig) (Summary, error) {
	if cfg.Classic {
		return sendClassic(ctx, cfg)
	}
	return send(ctx, cfg)
}

// Receive serves senders on ln until ctx ends (or after one transfer with
// cfg.Once), writing into cfg.Dir. It reports the code senders need (or
// with cfg.TLS the certificate's fingerprint) in the EventListening
// event. After cfg.MaxFailures wrong codes it returns ErrTooManyFailures. It closes
// ln and returns after every connection's goroutine has: nil when ctx
// ends; with cfg.Once, the transfer's error (nil when it ran to its end,
// even with files rejected or failed: the events say which); or the
// listener's error.
func Receive(ctx context.Context, ln net.Listener, cfg RecvConfig) error {
	return receive(ctx, ln, cfg)
}

// ReceiveRelay joins the room of cfg.Code on the relay at cfg.Relay and
// receives one transfer through it into cfg.Dir. It returns the
// transfer's error, nil when it ran to its end (the events say which
// files were rejected or failed).
func ReceiveRelay(ctx context.Context, cfg RecvConfig) error {
	return receiveRelay(ctx, cfg)
}

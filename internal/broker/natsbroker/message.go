package natsbroker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A stream message carries one publication or, when a node had several
// publishes to one channel waiting while its previous one was stored, a
// batch of them with consecutive offsets. Its headers give the offset of
// its last publication (Netkit-Offset), their epoch and the stream
// sequence of the channel's message before it (Netkit-Prev); Netkit-Count
// says how many publications it holds. Without Netkit-Count the body is
// the one publication's data and Netkit-From its publisher; with it the
// body is the publications in offset order, each as
//
//	uvarint len(from) | from | uvarint len(data) | data
//
// A batch is stored, republished and read as one JetStream message.

// maxBatchCount bounds the publications in one stream message.
const maxBatchCount = 256

// pub is one publication in a stream message.
type pub struct {
	from string
	data json.RawMessage
}

// message is one stream message read from the stream or the wire.
type message struct {
	seq     uint64 // stream sequence; 0 when unknown
	prevSeq uint64 // stream sequence of the channel's message before it
	offset  uint64 // offset of its last publication
	epoch   string
	time    time.Time
	pubs    []pub // oldest first: offsets first() to offset
}

// first returns the offset of m's first publication.
func (m *message) first() uint64 { return m.offset - uint64(len(m.pubs)) + 1 }

var errBadBatch = errors.New("natsbroker: malformed batch")

func parse(h nats.Header, data []byte) (message, error) {
	off, err := strconv.ParseUint(h.Get(hdrOffset), 10, 64)
	if err != nil {
		return message{}, fmt.Errorf("natsbroker: message without offset: %w", err)
	}
	prev, _ := strconv.ParseUint(h.Get(hdrPrev), 10, 64)
	seq, _ := strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64) // set on republished messages
	m := message{seq: seq, prevSeq: prev, offset: off, epoch: h.Get(hdrEpoch)}
	count := h.Get(hdrCount)
	if count == "" {
		m.pubs = []pub{{from: h.Get(hdrFrom), data: data}}
	} else {
		n, err := strconv.ParseUint(count, 10, 64)
		if err != nil || n == 0 || n > maxBatchCount {
			return message{}, fmt.Errorf("%w: count %q", errBadBatch, count)
		}
		if m.pubs, err = decodeBatch(data, int(n)); err != nil {
			return message{}, err
		}
	}
	if off < uint64(len(m.pubs)) {
		return message{}, fmt.Errorf("%w: %d publications up to offset %d", errBadBatch, len(m.pubs), off)
	}
	return m, nil
}

func fromRaw(m *jetstream.RawStreamMsg) (message, error) {
	msg, err := parse(m.Header, m.Data)
	msg.seq, msg.time = m.Sequence, m.Time
	return msg, err
}

// appendBatch appends the body of a batch of pubs.
func appendBatch(dst []byte, pubs []pub) []byte {
	for _, p := range pubs {
		dst = binary.AppendUvarint(dst, uint64(len(p.from)))
		dst = append(dst, p.from...)
		dst = binary.AppendUvarint(dst, uint64(len(p.data)))
		dst = append(dst, p.data...)
	}
	return dst
}

// batchSize is the length of appendBatch's output for pubs.
func batchSize(pubs []pub) int {
	n := 0
	for _, p := range pubs {
		n += pubSize(p)
	}
	return n
}

func pubSize(p pub) int {
	return 2*binary.MaxVarintLen32 + len(p.from) + len(p.data)
}

// decodeBatch decodes the body of a batch of n publications. The data
// slices point into body.
func decodeBatch(body []byte, n int) ([]pub, error) {
	out := make([]pub, 0, min(n, len(body)/2+1))
	field := func() ([]byte, error) {
		l, k := binary.Uvarint(body)
		if k <= 0 || l > uint64(len(body)-k) {
			return nil, errBadBatch
		}
		f := body[k : k+int(l)]
		body = body[k+int(l):]
		return f, nil
	}
	for range n {
		from, err := field()
		if err != nil {
			return nil, err
		}
		data, err := field()
		if err != nil {
			return nil, err
		}
		out = append(out, pub{from: string(from), data: data})
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after %d publications", errBadBatch, len(body), n)
	}
	return out, nil
}

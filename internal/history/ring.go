package history

// ring is a FIFO in a circular buffer. Its capacity changes only through
// grow and resize, so its owner can count the memory it holds.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) cap() int { return len(r.buf) }

// at returns the i-th oldest element.
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) front() *T { return &r.buf[r.head] }

// push appends v; the ring must have room (len < cap).
func (r *ring[T]) push(v T) {
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
}

// pop removes the oldest element and clears its slot, so the ring keeps no
// reference to what it no longer holds.
func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v
}

// resize moves the elements into a buffer of capacity c >= len; c 0 frees
// the buffer.
func (r *ring[T]) resize(c int) {
	var buf []T
	if c > 0 {
		buf = make([]T, c)
		for i := range r.n {
			buf[i] = *r.at(i)
		}
	}
	r.buf, r.head = buf, 0
}

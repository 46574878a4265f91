package server

// tail is a stream's most recent events, encoded once for every
// subscriber and transport, indexed by seq: a ring whose length is a power
// of two, seq s at ring[s&(len-1)]. It starts small and grows as events
// come, up to its size; then each new event takes the oldest one's place.
// It ends at the stream's head, last, and holds the seqs first to last
// with no gap; an empty tail has first = last+1. What it does not hold,
// subscribers read from the store.
//
// A tail is not safe for concurrent use: its stream's mu guards it.
type tail struct {
	ring  []*entry
	first uint64 // the oldest seq held; last+1 when empty
	last  uint64 // the stream's newest seq, held or not
	size  int    // the most entries held: a power of two
}

// minTail is the length of a new tail's ring, and the least size.
const minTail = 8

// newTail returns an empty tail that ends at seq last and holds up to
// size entries, rounded up to a power of two.
func newTail(size int, last uint64) tail {
	n := minTail
	for n < size {
		n *= 2
	}
	return tail{ring: make([]*entry, minTail), first: last + 1, last: last, size: n}
}

// push adds e as the newest event. An e that does not follow last (the
// tail missed events) empties the tail first, so that what it holds has
// no gap.
func (t *tail) push(e *entry) {
	if e.seq != t.last+1 {
		t.reset(e.seq - 1)
	}
	n := uint64(len(t.ring))
	if t.first <= t.last && e.seq-t.first == n { // the ring is full
		if int(n) < t.size {
			grown := make([]*entry, 2*n)
			for seq := t.first; seq < e.seq; seq++ {
				grown[seq&(2*n-1)] = t.ring[seq&(n-1)]
			}
			t.ring, n = grown, 2*n
		} else {
			t.ring[t.first&(n-1)] = nil
			t.first++
		}
	}
	t.ring[e.seq&(n-1)] = e
	t.last = e.seq
}

// lookup returns the entry of seq, or nil if the tail does not hold it.
func (t *tail) lookup(seq uint64) *entry {
	if seq < t.first || seq > t.last {
		return nil
	}
	return t.ring[seq&uint64(len(t.ring)-1)]
}

// reset empties the tail, which then ends at seq last: a new history
// begins, or events went by that the tail could not hold.
func (t *tail) reset(last uint64) {
	clear(t.ring)
	t.first, t.last = last+1, last
}

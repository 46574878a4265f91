package bench

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/internal/sse"
	"github.com/pushd/push/protocol"
)

// How many times a subscriber tries its first connection before the run
// gives up, and how long each try may take.
const (
	connectAttempts = 3
	connectTimeout  = 10 * time.Second
)

// reconnectBackoff paces a subscriber's reconnects: from 20 ms, doubling
// up to 1 s, and from the start again after a connection that made
// progress or lasted longer than that.
var reconnectBackoff = backoff.Policy{Min: 20 * time.Millisecond, Max: time.Second}

// latencyBatch is how many latency samples a subscriber gathers before it
// adds them to the shared histogram.
const latencyBatch = 128

// subscriber is one subscription to the room and what it received. One
// goroutine runs it (run); only unique is read by others while it runs,
// everything else once it has returned.
type subscriber struct {
	r    *runner
	id   int
	base string // the server it connects to

	// The cursor of the last event read: where a reconnect continues.
	epoch string
	seq   uint64

	seen   []uint64 // a bit per message of the run
	last   []int    // per publisher, the highest sequence number seen (-1: none)
	unique atomic.Int64

	dups, outOfOrder, malformed int64
	resets, reconnects, slow    int64
	firstDrop                   string // why the first connection that was up ended, if one did
	lastRecv                    int64  // unix nanos of the last new message
	lat                         []int64

	resumed      bool // connected to the restarted server (RestartAfter)
	stallPending bool // stall at the first message
	stallNow     bool // stall before reading on

	// Buffers reused by the transports across messages and connections.
	buf   []byte
	sse   *sse.Reader
	polls pollState
}

func newSubscriber(r *runner, id int) *subscriber {
	s := &subscriber{
		r:            r,
		id:           id,
		base:         r.base,
		epoch:        r.since.Epoch,
		seq:          r.since.Seq,
		seen:         make([]uint64, (r.o.Messages+63)/64),
		last:         make([]int, r.o.Publishers),
		lat:          make([]int64, 0, latencyBatch),
		stallPending: id < r.o.Stall,
	}
	if len(r.bases) > 0 {
		s.base = r.bases[id%len(r.bases)]
	}
	for i := range s.last {
		s.last[i] = -1
	}
	return s
}

// cursor is where the next connection continues.
func (s *subscriber) cursor() string {
	return protocol.Cursor{Epoch: s.epoch, Seq: s.seq}.String()
}

// run keeps the subscriber connected until ctx ends, reconnecting with its
// cursor whenever a connection drops. It takes a slot of connect before its
// first connection and gives it back once that is up; ready then gets nil,
// or the error that kept the first connection from coming up, after which
// run returns.
func (s *subscriber) run(ctx context.Context, connect chan struct{}, ready chan<- error) {
	defer s.flushLatency()
	select {
	case connect <- struct{}{}:
	case <-ctx.Done():
		ready <- ctx.Err()
		return
	}
	up := false
	connected := func() {
		if !up {
			up = true
			<-connect
			ready <- nil
		}
	}
	retry := backoff.New(reconnectBackoff)
	for attempt := 1; ; attempt++ {
		before, started := s.unique.Load(), time.Now()
		established := false
		err := s.session(ctx, func() { established = true; connected(); s.r.resumed(s) })
		if ctx.Err() != nil {
			if !up {
				<-connect
				ready <- ctx.Err()
			}
			return
		}
		if !up {
			if attempt >= connectAttempts {
				<-connect
				ready <- fmt.Errorf("subscriber %d: %w", s.id, err)
				return
			}
		} else if established {
			// A connection that ended; attempts that never connected
			// (the server away) are not counted.
			s.reconnects++
			if s.firstDrop == "" && err != nil {
				s.firstDrop = fmt.Sprintf("subscriber %d: %v", s.id, err)
			}
		}
		if s.unique.Load() != before || time.Since(started) > reconnectBackoff.Max {
			retry.Reset()
		}
		backoff.Sleep(ctx, retry.Next()) // if ctx ends, the next session returns at once
	}
}

// session runs one connection of the subscriber's transport until it ends
// or ctx does, calling connected once the subscription is established.
func (s *subscriber) session(ctx context.Context, connected func()) error {
	switch s.r.o.Transport {
	case WebSocket:
		return s.wsSession(ctx, connected)
	case SSE:
		return s.sseSession(ctx, connected)
	default:
		return s.pollSession(ctx, connected)
	}
}

// handle takes one event's JSON, received at now (unix nanos).
func (s *subscriber) handle(b []byte, now int64) {
	ev, err := scanEvent(b)
	if err != nil {
		s.malformed++
		return
	}
	if string(ev.epoch) != s.epoch {
		s.epoch = string(ev.epoch)
	}
	s.seq = ev.seq
	switch string(ev.typ) {
	case string(protocol.TypeMessage):
	case string(protocol.TypeReset):
		s.resets++
		return
	default:
		return
	}
	st, ok := parsePayload(ev.text, s.r.runID)
	if !ok {
		return // someone else's message
	}
	p, m := s.r.o.Publishers, s.r.o.Messages
	if st.pub >= p || st.seq >= m || st.seq*p+st.pub >= m {
		s.malformed++
		return
	}
	idx := st.seq*p + st.pub
	word, bit := idx/64, uint64(1)<<(idx%64)
	if s.seen[word]&bit != 0 {
		s.dups++
		return
	}
	s.seen[word] |= bit
	if st.seq < s.last[st.pub] {
		s.outOfOrder++
	} else {
		s.last[st.pub] = st.seq
	}
	s.lastRecv = now
	if s.lat = append(s.lat, now-st.sent); len(s.lat) == cap(s.lat) {
		s.flushLatency()
	}
	if s.unique.Add(1) == int64(s.r.o.Messages) {
		s.r.subscriberDone()
	}
	if s.stallPending {
		s.stallPending, s.stallNow = false, true
	}
}

func (s *subscriber) flushLatency() {
	if len(s.lat) > 0 {
		s.r.latency.add(s.id, s.lat)
		s.lat = s.lat[:0]
	}
}

// pause stops reading for the stall time if the subscriber is to stall now.
func (s *subscriber) pause(ctx context.Context) {
	if s.stallNow {
		s.stallNow = false
		backoff.Sleep(ctx, s.r.o.StallFor)
	}
}

// readAll reads r to its end into dst[len(dst):], reusing dst's capacity.
func readAll(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// keepSmall drops a buffer that grew large for one big read, so idle
// subscribers do not each hold one.
func keepSmall(b []byte) []byte {
	if cap(b) > 256<<10 {
		return nil
	}
	return b[:0]
}

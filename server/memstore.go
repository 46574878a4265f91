package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// MemoryStore keeps every stream's log in memory, up to a number of events
// and an age per stream. It forgets everything when the process ends, so
// each stream gets a fresh epoch per MemoryStore: a client resuming with a
// cursor from an earlier process gets a reset.
//
// Only what is appended takes memory: reading a stream that holds nothing
// keeps nothing, and a stream whose events have all aged out is dropped
// (see Store).
type MemoryStore struct {
	opts MemoryOptions

	mu      sync.RWMutex
	streams map[string]*memLog
	closed  bool
	// empty makes the epochs of the streams the store does not hold (see
	// EmptyEpoch); a new stream starts in its epoch, and it changes when a
	// stream is dropped.
	empty     string
	lastSweep time.Time // when aged-out streams were last looked for
}

var _ Store = (*MemoryStore)(nil)

type memLog struct {
	mu      sync.RWMutex
	epoch   string
	first   uint64 // seq of events[0]
	events  []protocol.Event
	ids     idWindow
	dropped bool // no longer the store's: appends look the stream up again
}

// MemoryOptions bound what a MemoryStore keeps per stream.
type MemoryOptions struct {
	// MaxEvents is how many events a stream keeps (0: unbounded).
	MaxEvents int
	// MaxAge drops events older than this (0: no age limit).
	MaxAge time.Duration
	// DedupeWindow is how long the IDs of stored events are remembered
	// (0: DefaultConfig's DedupeWindow).
	DedupeWindow time.Duration
}

// NewMemoryStore returns a store bounded by opts.
func NewMemoryStore(opts MemoryOptions) *MemoryStore {
	orDefault(&opts.DedupeWindow, DefaultConfig().DedupeWindow)
	return &MemoryStore{opts: opts, streams: make(map[string]*memLog), empty: NewEpoch()}
}

// log returns the stream's log; a stream the store does not hold is made,
// in the store's empty epoch, when create is set, and nil otherwise, with
// that epoch.
func (m *MemoryStore) log(stream string, create bool) (*memLog, string, error) {
	m.sweep()
	m.mu.RLock()
	l, ok := m.streams[stream]
	closed, empty := m.closed, m.empty
	m.mu.RUnlock()
	switch {
	case closed:
		return nil, "", ErrStoreClosed
	case ok || !create:
		return l, EmptyEpoch(empty, stream), nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok = m.streams[stream]; !ok {
		l = &memLog{epoch: EmptyEpoch(m.empty, stream), first: 1, ids: idWindow{span: m.opts.DedupeWindow}}
		m.streams[stream] = l
	}
	return l, l.epoch, nil
}

// Append implements Store.
func (m *MemoryStore) Append(_ context.Context, stream string, events []protocol.Event) ([]Appended, error) {
	for {
		l, _, err := m.log(stream, true)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.dropped {
			l.mu.Unlock()
			continue // aged out meanwhile: it starts anew
		}
		out := l.append(stream, events, m.opts.DedupeWindow)
		m.trim(l)
		l.mu.Unlock()
		return out, nil
	}
}

// append adds events to l, but for the repeats of an ID in its window.
// l.mu is held.
func (l *memLog) append(stream string, events []protocol.Event, window time.Duration) []Appended {
	now := time.Now()
	out := make([]Appended, len(events))
	for i, ev := range events {
		ev.Stream, ev.Epoch = stream, l.epoch
		if ev.ID != "" {
			if rec, ok := l.ids.lookup(ev.ID, now); ok {
				out[i] = RepeatOf(ev, rec)
				continue
			}
		}
		ev.Seq = l.first + uint64(len(l.events))
		l.events = append(l.events, ev)
		if ev.ID != "" {
			l.ids.add(&ev, now)
		}
		out[i] = Appended{Event: ev}
	}
	return out
}

// trim drops what retention no longer allows. Append calls it, so a stream
// that is only written to stays within both limits; Read and Info call it
// too, since events also age while nothing is appended, and so does the
// sweep of streams nobody uses (see sweep). Events are in time order, so
// the age limit is met by dropping from the front up to the first event
// young enough: the cost is the number of events dropped. trim keeps the
// slice's backing array bounded by copying down once half of it is dead.
// l.mu is held.
func (m *MemoryStore) trim(l *memLog) {
	drop := 0
	if m.opts.MaxEvents > 0 && len(l.events) > m.opts.MaxEvents {
		drop = len(l.events) - m.opts.MaxEvents
	}
	if m.opts.MaxAge > 0 {
		cutoff := time.Now().Add(-m.opts.MaxAge)
		for drop < len(l.events) && l.events[drop].Time.Before(cutoff) {
			drop++
		}
	}
	if drop == 0 {
		return
	}
	l.first += uint64(drop)
	rest := l.events[drop:]
	if len(rest) < cap(l.events)/2 {
		l.events = append(make([]protocol.Event, 0, max(2*len(rest), 16)), rest...)
	} else {
		clear(l.events[:drop])
		l.events = rest
	}
}

// Read implements Store.
func (m *MemoryStore) Read(_ context.Context, stream string, after uint64, limit int) ([]protocol.Event, StreamInfo, error) {
	l, empty, err := m.aged(stream)
	if l == nil || err != nil {
		return nil, emptyInfo(empty), err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	info := l.info()
	start := max(after+1, l.first)
	if start > info.Last || limit <= 0 {
		return nil, info, nil
	}
	i := int(start - l.first)
	j := min(len(l.events), i+limit)
	return append([]protocol.Event(nil), l.events[i:j]...), info, nil
}

// Info implements Store.
func (m *MemoryStore) Info(_ context.Context, stream string) (StreamInfo, error) {
	l, empty, err := m.aged(stream)
	if l == nil || err != nil {
		return emptyInfo(empty), err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.info(), nil
}

// emptyInfo is the info of a stream a store does not hold, in its epoch
// for those.
func emptyInfo(epoch string) StreamInfo { return StreamInfo{Epoch: epoch, First: 1} }

// aged returns the stream's log with the events too old for the age limit
// dropped, for a read (events age while nothing is appended); nil, and the
// epoch of streams the store does not hold, when it holds none, or none
// any more.
func (m *MemoryStore) aged(stream string) (*memLog, string, error) {
	l, empty, err := m.log(stream, false)
	if l == nil || err != nil || m.opts.MaxAge <= 0 {
		return l, empty, err
	}
	l.mu.Lock()
	m.trim(l)
	gone := m.agedOut(l)
	l.mu.Unlock()
	if gone {
		return nil, EmptyEpoch(m.drop(stream, l), stream), nil
	}
	return l, empty, nil
}

// agedOut reports whether l's events have all aged out: the stream is to
// be dropped. l.mu is held.
func (m *MemoryStore) agedOut(l *memLog) bool {
	return m.opts.MaxAge > 0 && len(l.events) == 0 && l.first > 1
}

// drop forgets the stream, whose events have all aged out, if l is still
// its log, and returns what makes the epochs of the streams the store does
// not hold, which changes: a cursor of the dropped history is never taken
// for one of the next.
func (m *MemoryStore) drop(stream string, l *memLog) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.streams[stream] == l && m.agedOut(l) && !l.dropped {
		l.dropped = true
		delete(m.streams, stream)
		m.empty = NewEpoch()
	}
	return m.empty
}

// sweep drops the streams whose events have all aged out, on a call at
// most once per SweepEvery, so that streams nobody uses any more leave
// memory too.
func (m *MemoryStore) sweep() {
	if m.opts.MaxAge <= 0 {
		return
	}
	now := time.Now()
	m.mu.Lock()
	if m.closed || now.Sub(m.lastSweep) < SweepEvery(m.opts.MaxAge) {
		m.mu.Unlock()
		return
	}
	m.lastSweep = now
	logs := make(map[string]*memLog, len(m.streams))
	for name, l := range m.streams {
		logs[name] = l
	}
	m.mu.Unlock()
	for name, l := range logs {
		l.mu.Lock()
		m.trim(l)
		gone := m.agedOut(l)
		l.mu.Unlock()
		if gone {
			m.drop(name, l)
		}
	}
}

func (l *memLog) info() StreamInfo {
	return StreamInfo{Epoch: l.epoch, First: l.first, Last: l.first + uint64(len(l.events)) - 1}
}

// Close implements Store.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.streams = nil
	return nil
}

// EmptyEpoch returns the epoch of stream while a store does not hold it,
// made from base, a random epoch of the store's that it changes whenever
// it drops a stream: a stream nobody wrote to has a steady epoch without
// taking room in the store, its first append takes it on, and a stream
// dropped and written again starts a history of another epoch. Each
// stream's differs, so a cursor of one stream is never valid on another.
func EmptyEpoch(base, stream string) string {
	sum := sha256.Sum256([]byte(base + "\x00" + stream))
	return epochOf(sum[:12])
}

// NewEpoch returns a fresh random epoch: 12 characters of [a-z2-7]. Stores
// give a stream a new one whenever its history starts anew.
func NewEpoch() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return epochOf(b[:])
}

// epochOf spells 12 random bytes as an epoch.
func epochOf(b []byte) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = alphabet[c&31]
	}
	return string(out)
}

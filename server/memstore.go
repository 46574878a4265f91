package server

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// MemoryStore keeps every stream's log in memory, up to a number of events
// and an age per stream. It forgets everything when the process ends, so
// each stream gets a fresh epoch per MemoryStore: a client resuming with a
// cursor from an earlier process gets a reset.
type MemoryStore struct {
	opts MemoryOptions

	mu      sync.RWMutex
	streams map[string]*memLog
	closed  bool
}

var _ Store = (*MemoryStore)(nil)

type memLog struct {
	mu     sync.RWMutex
	epoch  string
	first  uint64 // seq of events[0]
	events []protocol.Event
	ids    idWindow
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
	return &MemoryStore{opts: opts, streams: make(map[string]*memLog)}
}

func (m *MemoryStore) log(stream string) (*memLog, error) {
	m.mu.RLock()
	l, ok := m.streams[stream]
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return nil, ErrStoreClosed
	}
	if ok {
		return l, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok = m.streams[stream]; !ok {
		l = &memLog{epoch: NewEpoch(), first: 1, ids: idWindow{span: m.opts.DedupeWindow}}
		m.streams[stream] = l
	}
	return l, nil
}

// Append implements Store.
func (m *MemoryStore) Append(_ context.Context, stream string, events []protocol.Event) ([]Appended, error) {
	l, err := m.log(stream)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
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
	m.trim(l)
	return out, nil
}

// trim drops what retention no longer allows. Append calls it, so a stream
// that is only written to stays within both limits; Read and Info call it
// too, since events also age while nothing is appended. Events are in time
// order, so the age limit is met by dropping from the front up to the first
// event young enough: the cost is the number of events dropped. A stream
// that gets neither appends nor reads keeps what it held at its last append
// (no sweep; nothing can grow it) until the next call trims it. trim keeps
// the slice's backing array bounded by copying down once half of it is dead.
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
	l, err := m.aged(stream)
	if err != nil {
		return nil, StreamInfo{}, err
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
	l, err := m.aged(stream)
	if err != nil {
		return StreamInfo{}, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.info(), nil
}

// aged returns the stream's log with the events too old for the age limit
// dropped, for a read: events age while nothing is appended.
func (m *MemoryStore) aged(stream string) (*memLog, error) {
	l, err := m.log(stream)
	if err != nil || m.opts.MaxAge <= 0 {
		return l, err
	}
	l.mu.Lock()
	m.trim(l)
	l.mu.Unlock()
	return l, nil
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

// NewEpoch returns a fresh random epoch: 12 characters of [a-z2-7]. Stores
// give a stream a new one whenever its history starts anew.
func NewEpoch() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [12]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b[:])
}

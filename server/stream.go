package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// stream is one stream in memory: its position and tail, its batch of
// publishes (batch.go), and the subscribers it tells of new events (here).
type stream struct {
	hub  *Hub
	name string

	// published is tail.last as last announced, for parking subscribers,
	// which check it under waitMu: an announcement stores it before it
	// takes the waiters, so a subscriber either sees the new events or is
	// woken for them.
	published atomic.Uint64
	waitMu    sync.Mutex
	waiters   map[waker]struct{} // parked subscribers, woken by the next append
	spare     map[waker]struct{} // the other map, swapped in while waking

	mu       sync.RWMutex
	epoch    string
	tail     tail // its last is the stream's newest seq
	notify   chan struct{}
	open     *batch // publishes waiting for the next store append
	flushing bool   // a store append is under way
	// announced is when subscribers were last told of new events, and
	// pending whether a telling is due at the end of the batch window.
	announced time.Time
	pending   bool

	pushers atomic.Int64 // streaming (WebSocket and SSE) subscribers
	// handedGone counts the events handed to its subscriptions that have
	// closed, for the stats (stats_track.go).
	handedGone atomic.Uint64

	// users counts the subscriptions and publishes holding the stream, and
	// idleSince is when it last fell to none; both under hub.mu.
	users      int
	idleSince  time.Time
	stopFollow context.CancelFunc // ends following the store, in follow mode

	// epochGen counts the epochs the stream has had in this process; it
	// changes under mu with epoch, and parking subscribers check it.
	epochGen atomic.Uint64
	// appended is the newest seq this server's own appends got, in
	// follow mode; a shutdown waits for the tail to reach it.
	appended uint64
}

// announceLocked tells the stream's subscribers that it has grown: it
// closes the channel they wait on and returns true, for the caller to
// wake the parked ones once it has let go of s.mu. On a busy stream, one
// told less than the hub's batch window ago, it does so at the end of the
// window instead and returns false: each subscriber then writes at most
// once per window, everything that arrived meanwhile in one system call,
// rather than once per event. A quiet stream's events go out at once.
// s.mu is held.
func (s *stream) announceLocked() bool {
	if s.pending {
		return false
	}
	now := time.Now()
	// Compare before subtracting: the time since the zero "announced" of
	// a new stream saturates, and a negative window minus it overflows.
	if w, since := s.window(), now.Sub(s.announced); w > 0 && since < w {
		s.pending = true
		time.AfterFunc(w-since, s.announceLater)
		return false
	}
	s.announceNowLocked(now)
	return true
}

// announceNowLocked closes the channel subscribers wait on, after storing
// what parked ones check. s.mu is held.
func (s *stream) announceNowLocked(now time.Time) {
	s.announced = now
	s.published.Store(s.tail.last)
	close(s.notify)
	s.notify = make(chan struct{})
}

// window is the least time between two announcements: the hub's batch
// window, or less for a stream with few streaming subscribers, so that the
// writes an announcement costs stay within what the window budgets for.
func (s *stream) window() time.Duration {
	w, per := s.hub.cfg.batchWindow, s.hub.cfg.perPusher
	if per <= 0 {
		return w
	}
	return min(w, time.Duration(s.pushers.Load())*per)
}

// announceLater is the announcement put off to the end of a batch window.
func (s *stream) announceLater() {
	s.mu.Lock()
	s.pending = false
	wake := s.announceLocked()
	s.mu.Unlock()
	if wake {
		s.wakeWaiters()
	}
}

// waker is a subscriber with no goroutine of its own while it waits: the
// stream calls wake, which must not block, when it has news.
type waker interface{ wake() }

// wakeWaiters wakes and forgets the parked subscribers. It runs after every
// append, outside s.mu.
func (s *stream) wakeWaiters() {
	s.waitMu.Lock()
	waiters := s.waiters
	s.waiters, s.spare = s.spare, nil // each map has one owner at a time
	s.waitMu.Unlock()
	for w := range waiters {
		w.wake()
	}
	clear(waiters)
	s.waitMu.Lock()
	if s.spare == nil {
		s.spare = waiters
	}
	s.waitMu.Unlock()
}

// holdsNothing reports whether the stream has never had an event and no
// publish is under way: in memory it is only the position the store gives
// back when it is loaded again.
func (s *stream) holdsNothing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tail.last == 0 && s.open == nil && !s.flushing
}

// beginEpochLocked starts the tail anew in a new history (epoch) whose
// first event is seq first: what the tail held is of the old one.
// Subscriptions see epochGen move and reset. s.mu is held.
func (s *stream) beginEpochLocked(epoch string, first uint64) {
	s.epoch = epoch
	s.epochGen.Add(1)
	s.tail.reset(first - 1)
}

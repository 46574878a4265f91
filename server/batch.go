package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushd/push/protocol"
)

// ErrIDConflict is returned (wrapped) by Publish for an event whose ID the
// stream took, within its de-duplication window, for another event.
var ErrIDConflict = errors.New("id used for another event")

// Publish appends ev to the named stream and returns it as stored. When
// Publish returns nil the event is in the store and every subscriber will
// receive it. Concurrent publishes to one stream are grouped into one store
// append. The limit on rooms (Limits.MaxStreams) is for what clients open:
// Publish is never refused by it. An event with an ID that the stream
// took already is stored once: Publish returns the event as first stored,
// or ErrIDConflict if that one said something else.
func (h *Hub) Publish(ctx context.Context, name string, ev protocol.Event) (protocol.Event, error) {
	a, err := h.publish(ctx, name, ev, false)
	if err == nil && a.Conflict {
		err = fmt.Errorf("publish to %s: %w: %s at seq %d", name, ErrIDConflict, ev.ID, a.Event.Seq)
	}
	return a.Event, err
}

// publish is Publish, within the limit on rooms when limited, that tells a
// repeat and a conflict by the store's outcome.
func (h *Hub) publish(ctx context.Context, name string, ev protocol.Event, limited bool) (Appended, error) {
	s, err := h.acquire(ctx, name, limited)
	if err != nil {
		return Appended{}, err
	}
	defer h.release(s)
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	return s.publish(ctx, ev)
}

// batch is a group of publishes that go to the store in one append.
type batch struct {
	events []protocol.Event
	turn   chan struct{} // closed when the batch's leader may flush it
	done   chan struct{} // closed when out and err are set
	out    []Appended
	err    error
}

// publish adds ev to the open batch. The publisher that opened the batch
// leads it: it waits until no other append is under way, closes the batch
// to newcomers and appends it; the others wait for the result. So appends
// to a stream are serial and in order, and a busy stream gets large
// batches.
func (s *stream) publish(ctx context.Context, ev protocol.Event) (Appended, error) {
	s.mu.Lock()
	b := s.open
	if b == nil {
		b = &batch{turn: make(chan struct{}), done: make(chan struct{})}
		s.open = b
	}
	i := len(b.events)
	b.events = append(b.events, ev)
	if i > 0 {
		// The event is in the batch now and will be appended: wait for the
		// outcome whatever ctx does, so an error always means "not stored".
		// The append runs without cancellation and ends in bounded time.
		s.mu.Unlock()
		<-b.done
		return b.result(i)
	}
	if s.flushing {
		s.mu.Unlock()
		<-b.turn // the append under way hands over when it is done
		s.mu.Lock()
	}
	s.flushing = true
	s.open = nil
	s.mu.Unlock()

	if s.flush(context.WithoutCancel(ctx), b) {
		s.wakeWaiters()
	}

	s.mu.Lock()
	if s.open != nil {
		close(s.open.turn)
	} else {
		s.flushing = false
	}
	s.mu.Unlock()
	return b.result(0)
}

// result is the outcome of the batch's i-th event: stored if the store
// took it, even when it failed on a later one.
func (b *batch) result(i int) (Appended, error) {
	if i < len(b.out) {
		return b.out[i], nil
	}
	if b.err == nil {
		return Appended{}, fmt.Errorf("append: the store returned %d of %d events", len(b.out), len(b.events))
	}
	return Appended{}, b.err
}

// flush appends b to the store and adds the stored events to the tail. It
// returns true when the parked subscribers are to be woken now.
func (s *stream) flush(ctx context.Context, b *batch) bool {
	defer close(b.done)
	start := time.Now()
	out, err := s.hub.store.Append(ctx, s.name, b.events)
	if s.hub.cfg.onAppend != nil {
		s.hub.cfg.onAppend(time.Since(start))
	}
	b.out = out
	if err != nil {
		b.err = fmt.Errorf("append to %s: %w", s.name, err)
	}
	// What this append stored: repeats are in the log already.
	stored := make([]protocol.Event, 0, len(out))
	for _, a := range out {
		if !a.Repeat {
			stored = append(stored, a.Event)
		}
	}
	if len(stored) > 0 && s.hub.cfg.onPublish != nil {
		s.hub.cfg.onPublish(len(stored))
	}
	if s.hub.follower != nil {
		// The events reach the tail by following the store, in the order
		// the store gave them among other servers' appends. A shared
		// store may have taken the first events of a batch before failing:
		// those publishers get their events, the others the error.
		if len(stored) > 0 {
			s.mu.Lock()
			s.appended = max(s.appended, stored[len(stored)-1].Seq)
			s.mu.Unlock()
		}
		return false
	}
	if err != nil || len(stored) == 0 {
		return false
	}
	entries := make([]*entry, len(stored))
	now := time.Now()
	for i := range stored {
		if entries[i], err = encodeEntry(&stored[i]); err != nil {
			// The events are stored; subscribers will read them from the store.
			s.hub.log.Error("encode event", "stream", s.name, "err", err)
			entries = entries[:i]
			break
		}
		entries[i].published = now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored[0].Epoch != s.epoch {
		// The store lost the stream's history; start the tail anew.
		s.beginEpochLocked(stored[0].Epoch, stored[0].Seq)
	}
	for _, e := range entries {
		s.tail.push(e)
	}
	if n := len(stored); len(entries) < n {
		// Subscribers read the unencodable events from the store instead.
		s.tail.reset(stored[n-1].Seq)
	}
	return s.announceLocked()
}

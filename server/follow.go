package server

import (
	"context"
	"errors"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
)

// settle waits, in follow mode, until every stream's tail holds the events
// this server appended, so that its own subscribers get them before a
// shutdown ends their subscriptions (the final events of cancelled tasks).
// It gives up when ctx ends or after a few seconds.
func (h *Hub) settle(ctx context.Context) {
	if h.follower == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h.mu.Lock()
	streams := make([]*stream, 0, len(h.streams))
	for _, s := range h.streams {
		streams = append(streams, s)
	}
	h.mu.Unlock()
	for _, s := range streams {
		for {
			s.mu.RLock()
			caughtUp, notify := s.published.Load() >= s.appended, s.notify
			s.mu.RUnlock()
			if caughtUp {
				break
			}
			select {
			case <-notify:
			case <-ctx.Done():
				h.log.Warn("shutdown: some events of this server did not reach its subscribers in time; they will read them on reconnecting", "stream", s.name)
				return
			}
		}
	}
}

// follow feeds the tail from the store until ctx ends. When following
// fails (the store lost the stream, or cannot be reached for long) it
// starts again from where it stopped, or from the start of a new history
// if the stream's epoch changed meanwhile.
func (s *stream) follow(ctx context.Context) {
	retry := backoff.New(followBackoff)
	for {
		after, err := s.resume(ctx)
		if err == nil {
			err = s.hub.follower.Follow(ctx, s.name, after, s.deliver)
		}
		if ctx.Err() != nil || errors.Is(err, ErrStoreClosed) {
			return
		}
		s.mu.RLock()
		moved := s.tail.last != after.Seq
		s.mu.RUnlock()
		if moved {
			retry.Reset()
		}
		wait := retry.Next()
		s.hub.log.Warn("following stream failed; retrying", "stream", s.name, "after", wait, "err", err)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// followBackoff paces the retries of following a stream: from 100 ms,
// doubling up to 5 s, and from the start again once the tail has moved.
var followBackoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// resume returns the cursor to follow the store after: the tail's last,
// or, when the store's history is no longer the tail's, the point before
// the new history's first event, after starting the tail anew in that
// epoch.
func (s *stream) resume(ctx context.Context) (protocol.Cursor, error) {
	info, err := s.hub.store.Info(ctx, s.name)
	if err != nil {
		return protocol.Cursor{}, err
	}
	s.mu.Lock()
	if info.Epoch == s.epoch {
		after := protocol.Cursor{Epoch: s.epoch, Seq: s.tail.last}
		s.mu.Unlock()
		return after, nil
	}
	s.hub.log.Warn("stream's history began anew in the store; subscribers get a reset", "stream", s.name, "epoch", info.Epoch, "was", s.epoch)
	s.beginEpochLocked(info.Epoch, info.First)
	s.appended = 0
	// Announce the new epoch at once: waiting subscribers must see it.
	s.pending = false
	s.announceNowLocked(time.Now())
	after := protocol.Cursor{Epoch: s.epoch, Seq: s.tail.last}
	s.mu.Unlock()
	s.wakeWaiters()
	return after, nil
}

// deliver adds events that followed the store to the tail, and wakes the
// stream's subscribers. Events already in the tail are skipped; a jump in
// seq or a new epoch starts the tail anew, and subscribers behind it read
// from the store.
func (s *stream) deliver(events []protocol.Event) {
	s.mu.Lock()
	grew := false
	for i := range events {
		ev := &events[i]
		switch {
		case ev.Epoch != s.epoch:
			s.beginEpochLocked(ev.Epoch, ev.Seq)
		case ev.Seq <= s.tail.last:
			continue
		}
		grew = true
		e, err := encodeEntry(ev)
		if err != nil {
			// Subscribers read the unencodable event from the store instead.
			s.hub.log.Error("encode event", "stream", s.name, "err", err)
			s.tail.reset(ev.Seq)
			continue
		}
		e.published = ev.Time
		s.tail.push(e) // after a gap, it starts anew
	}
	wake := grew && s.announceLocked()
	s.mu.Unlock()
	if wake {
		s.wakeWaiters()
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
)

// subscription is one subscriber's position in a stream. It holds no queue
// of its own: the stream's tail (and behind it the store) is the queue, and
// the subscription is a cursor into it, so a publisher never waits for it
// and a subscriber that falls behind catches up from the log.
//
// A subscription is used by one goroutine, the transport that owns it.
type subscription struct {
	st     *stream
	epoch  string
	cursor uint64 // the last seq handed to the transport or skipped by the filter
	filter string // when set, only entries with this key are handed out
	// viewer, when set, is who subscribes to the tasks stream: only the
	// tasks they may see are handed out. Nil on rooms; set before the
	// first batch.
	viewer *identity
	max    int  // entries per batch
	live   bool // has caught up with the head at least once
	// unbounded exempts the subscription from the lag limit (long polls
	// read from the log and hold nothing between polls).
	unbounded bool
	reset     *protocol.Event
	// finished: the task the filter names has ended and its final event
	// is handed out (or was not there to hand out): the stream has
	// nothing more, and collect says so with errTaskFinished.
	finished bool
	// expires is when the subscription's token expires (zero: never):
	// the transport ends the subscription then.
	expires time.Time
	buf     []*entry // reused between batches
	closed  bool
	// epochGen is the stream's epochGen when the subscription last saw
	// its epoch match the stream's: a subscriber may park only if no new
	// epoch has begun since.
	epochGen uint64
	// handed mirrors the cursor as of the last batch collect returned,
	// and sent counts the events handed out, for the stats (stats.go),
	// which read them from another goroutine: one atomic store and one
	// add per batch, no lock.
	handed atomic.Uint64
	sent   atomic.Uint64
}

// errTaskFinished ends a subscription to one task's stream once the task's
// final event is handed out: nothing more can come.
var errTaskFinished = errors.New("task finished")

// subscribe opens a subscription to the named stream after since (nil: at
// the live end). If since cannot be honoured exactly, the first batch
// starts with a reset event. The caller closes the subscription when done
// with it. A room counts against the limit on rooms; the server's own
// streams (tasks) do not.
func (h *Hub) subscribe(ctx context.Context, name string, since *protocol.Cursor, filter string, max int) (*subscription, error) {
	st, err := h.acquire(ctx, name, strings.HasPrefix(name, protocol.RoomStream("")))
	if err != nil {
		return nil, err
	}
	sub := &subscription{st: st, filter: filter, max: max}
	if err := sub.start(ctx, since); err != nil {
		sub.close()
		return nil, err
	}
	return sub, nil
}

// close lets go of the stream; the subscription is not used after it.
func (sub *subscription) close() {
	if !sub.closed {
		sub.closed = true
		sub.st.hub.release(sub.st)
	}
}

// start positions a new subscription after since.
func (sub *subscription) start(ctx context.Context, since *protocol.Cursor) error {
	h, st, name := sub.st.hub, sub.st, sub.st.name
	st.mu.RLock()
	sub.epoch, sub.cursor, sub.epochGen = st.epoch, st.tail.last, st.epochGen.Load()
	st.mu.RUnlock()
	if since == nil {
		return nil
	}
	switch {
	case since.Epoch != "" && since.Epoch != sub.epoch:
		return sub.resetTo(ctx, protocol.ResetEpochChanged)
	case since.Seq > sub.cursor:
		// The store may hold events the hub has yet to announce: another
		// server's appends reach it a moment later, and a client that
		// moved from that server resumes here from its cursor.
		info, err := h.store.Info(ctx, name)
		if err != nil {
			return fmt.Errorf("read stream %s: %w", name, err)
		}
		if since.Seq > info.Last || info.Epoch != sub.epoch {
			return sub.resetTo(ctx, protocol.ResetCursorAhead)
		}
	case since.Seq < sub.cursor:
		// Retention is the store's: the tail may still hold events the
		// store has dropped, and a resume from before them is a reset.
		info, err := h.store.Info(ctx, name)
		if err != nil {
			return fmt.Errorf("read stream %s: %w", name, err)
		}
		if since.Seq+1 < info.First {
			return sub.resetTo(ctx, protocol.ResetRetention)
		}
	}
	sub.cursor = since.Seq
	return nil
}

// resetTo moves the subscription to just before the oldest event the store
// holds and queues a reset event that says so.
func (sub *subscription) resetTo(ctx context.Context, reason string) error {
	info, err := sub.st.hub.store.Info(ctx, sub.st.name)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", sub.st.name, err)
	}
	sub.epoch, sub.cursor = info.Epoch, info.First-1
	sub.reset = &protocol.Event{Seq: sub.cursor, Epoch: sub.epoch, Stream: sub.st.name,
		Type: protocol.TypeReset, Time: time.Now().UTC(), Reason: reason}
	return nil
}

// Cursor returns the position after the last event handed out.
func (sub *subscription) Cursor() protocol.Cursor {
	return protocol.Cursor{Epoch: sub.epoch, Seq: sub.cursor}
}

// next returns the next batch of entries after the cursor and moves the
// cursor past them. It blocks until there is at least one, ctx is done
// (ctx.Err()), the hub shuts down (ErrShutdown), idle fires (errIdle), or
// the stream of one task has ended (errTaskFinished, once its final event
// was handed out). The returned slice is valid until the next call.
func (sub *subscription) next(ctx context.Context, idle <-chan time.Time) ([]*entry, error) {
	h := sub.st.hub
	for {
		batch, notify, err := sub.collect(ctx)
		if err != nil || len(batch) > 0 {
			return batch, err
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-h.done:
			// Deliver what was published before the shutdown first (the
			// final events of cancelled tasks), then end.
			if !sub.behind() {
				return nil, ErrShutdown
			}
		case <-idle:
			return nil, errIdle
		}
	}
}

// behind reports whether the stream has events after the cursor.
func (sub *subscription) behind() bool {
	sub.st.mu.RLock()
	defer sub.st.mu.RUnlock()
	return sub.cursor < sub.st.tail.last || sub.epoch != sub.st.epoch
}

// collect returns what is available after the cursor without waiting, and
// moves the cursor past it. With nothing to hand out it returns an empty
// batch and the channel the stream's next publish closes. A batch of one
// task's stream ends with the task's final event; the call after it
// returns errTaskFinished.
func (sub *subscription) collect(ctx context.Context) ([]*entry, <-chan struct{}, error) {
	h := sub.st.hub
	sub.buf = sub.buf[:0]
	for {
		if sub.finished {
			if len(sub.buf) > 0 {
				sub.count()
				return sub.buf, nil, nil
			}
			return nil, nil, errTaskFinished
		}
		if sub.reset != nil {
			e, err := encodeEntry(sub.reset)
			sub.reset = nil
			if err != nil {
				return nil, nil, err
			}
			sub.buf = append(sub.buf, e)
		}
		st := sub.st
		st.mu.RLock()
		if st.epoch != sub.epoch {
			hubEpoch := st.epoch
			st.mu.RUnlock()
			if err := sub.resetTo(ctx, protocol.ResetEpochChanged); err != nil {
				return nil, nil, err
			}
			if sub.epoch != hubEpoch {
				// The store's history is not yet the one this server
				// follows (a shared store lost and began a stream anew):
				// try again once it has caught up.
				return nil, nil, fmt.Errorf("stream %s: %w: the store's history %s is not yet the one followed here (%s)", st.name, ErrUnavailable, sub.epoch, hubEpoch)
			}
			continue
		}
		sub.epochGen = st.epochGen.Load()
		notify, last := st.notify, st.tail.last
		if sub.cursor < last && len(sub.buf) < sub.max {
			if sub.live && !sub.unbounded && last-sub.cursor > uint64(h.cfg.maxLag) {
				st.mu.RUnlock()
				return nil, nil, ErrSlowConsumer
			}
			if st.tail.lookup(sub.cursor+1) != nil {
				for seq := sub.cursor + 1; seq <= last && len(sub.buf) < sub.max; seq++ {
					e := st.tail.lookup(seq)
					sub.cursor = seq
					if sub.wants(e.key, e.scope) {
						sub.buf = append(sub.buf, e)
						if sub.ends(e) {
							break
						}
					}
				}
				st.mu.RUnlock()
				continue
			}
			st.mu.RUnlock()
			if err := sub.catchUp(ctx, last); err != nil {
				return nil, nil, err
			}
			continue
		}
		st.mu.RUnlock()
		if len(sub.buf) == 0 {
			sub.live = true
		}
		sub.count()
		return sub.buf, notify, nil
	}
}

// wants reports whether an entry of that key and scope is handed out:
// its task's, for a one-task subscription, and one its viewer may see.
// Those it does not want still move the cursor on.
func (sub *subscription) wants(key string, scope *taskScope) bool {
	return (sub.filter == "" || key == sub.filter) && (sub.viewer == nil || sub.viewer.sees(scope))
}

// park registers w to be woken by the stream's next publish, if the
// subscription is caught up; false means there is more to collect now.
func (sub *subscription) park(w waker) bool {
	st := sub.st
	st.waitMu.Lock()
	defer st.waitMu.Unlock()
	if sub.cursor < st.published.Load() || sub.epochGen != st.epochGen.Load() || sub.reset != nil || sub.finished || hubDone(st.hub) {
		return false // more to collect, an end or a shutdown to see (it wakes waiters after closing done)
	}
	if st.waiters == nil {
		st.waiters = make(map[waker]struct{})
	}
	st.waiters[w] = struct{}{}
	return true
}

// unpark forgets w.
func (sub *subscription) unpark(w waker) {
	st := sub.st
	st.waitMu.Lock()
	defer st.waitMu.Unlock()
	delete(st.waiters, w)
}

// catchUp appends the next events from the store to sub.buf, for a
// subscriber behind the tail. A gap before the store's first event becomes
// a reset.
//
// It hands out nothing after last, the hub's head: the store holds an
// append's events a moment before the hub has announced them, and a
// subscriber must never get ahead of the stream it will resume on.
func (sub *subscription) catchUp(ctx context.Context, last uint64) error {
	st := sub.st
	limit := min(uint64(sub.max-len(sub.buf)), last-sub.cursor)
	events, info, err := st.hub.store.Read(ctx, st.name, sub.cursor, int(limit))
	if err != nil {
		return fmt.Errorf("read stream %s: %w", st.name, err)
	}
	if info.Epoch != sub.epoch {
		return sub.resetTo(ctx, protocol.ResetEpochChanged)
	}
	if sub.cursor+1 < info.First {
		return sub.resetTo(ctx, protocol.ResetRetention)
	}
	if len(events) == 0 {
		// A shared store's replica may lag the stream the hub follows.
		return fmt.Errorf("read stream %s: %w: the store has nothing after seq %d yet but the stream is at %d", st.name, ErrUnavailable, sub.cursor, last)
	}
	for i := range events {
		if events[i].Seq > last {
			break
		}
		sub.cursor = events[i].Seq
		if sub.filter != "" || sub.viewer != nil {
			var key string
			if events[i].Task != nil {
				key = events[i].Task.ID
			}
			if !sub.wants(key, scopeOf(events[i].Task)) {
				continue
			}
		}
		e, err := encodeEntry(&events[i])
		if err != nil {
			return err
		}
		sub.buf = append(sub.buf, e)
		if sub.ends(e) {
			break
		}
	}
	return nil
}

// ends reports whether e, just handed out, ends the subscription: the final
// event of the one task it follows. It marks the subscription finished.
func (sub *subscription) ends(e *entry) bool {
	if sub.filter != "" && e.final {
		sub.finished = true
	}
	return sub.finished
}

// count records for the stats what collect is about to return.
func (sub *subscription) count() {
	sub.handed.Store(sub.cursor)
	if n := len(sub.buf); n > 0 {
		sub.sent.Add(uint64(n))
	}
}

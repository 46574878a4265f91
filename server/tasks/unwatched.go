package tasks

import (
	"context"
	"errors"
	"time"

	"github.com/pushd/push/protocol"
)

// errUnwatched: nobody watched a task started with Spec.CancelUnwatched
// for that long.
var errUnwatched = errors.New(protocol.MessageUnwatched)

// peersWatchRetry is how soon a watch check that could not hear from
// every server is made again.
const peersWatchRetry = time.Second

// unwatchedAfter is the task's CancelUnwatched; 0 for none.
func (t *task) unwatchedAfter() time.Duration {
	if t.snap.CancelUnwatched == "" {
		return 0
	}
	d, _ := time.ParseDuration(t.snap.CancelUnwatched)
	return d
}

// watchLocked starts checking that a task started with CancelUnwatched
// is watched: counting from from, it is cancelled once nobody who can see
// it has watched it for that long. A task without CancelUnwatched is left
// alone. t.mu is held.
func (t *task) watchLocked(from time.Time) {
	d := t.unwatchedAfter()
	if d <= 0 || t.snap.State.Final() {
		return
	}
	t.watchFrom = from
	if t.watch != nil {
		t.watch.Stop()
	}
	t.watch = time.AfterFunc(time.Until(from.Add(d)), t.checkWatched)
}

// stopTimersLocked stops the stall timer and the watch check, as a task
// that ends or is kept here no longer needs them. t.mu is held.
func (t *task) stopTimersLocked() {
	if t.stall != nil {
		t.stall.Stop()
	}
	t.stopWatchLocked()
}

// stopWatchLocked stops the watch check. t.mu is held.
func (t *task) stopWatchLocked() {
	if t.watch != nil {
		t.watch.Stop()
	}
}

// checkWatched runs when a task may have gone unwatched for its
// CancelUnwatched: it asks this server, then (only if this one has had no
// watcher for that long) the others, when the task was last watched, and
// cancels it or checks again when it could next have gone unwatched that
// long.
func (t *task) checkWatched() {
	r := t.runner
	t.mu.Lock()
	if t.snap.State.Final() || t.kept || t.lost.Load() || context.Cause(t.ctx) != nil {
		t.mu.Unlock()
		return
	}
	snap, d, last := t.view(time.Now()), t.unwatchedAfter(), t.watchFrom
	t.mu.Unlock()
	if w := r.stream.LastWatched(snap); w.After(last) {
		last = w
	}
	if time.Since(last) >= d && r.peers != nil {
		ctx, cancel := context.WithTimeout(context.Background(), claimSettle)
		w, err := r.peers.LastWatched(ctx, snap)
		cancel()
		if err != nil {
			r.log.Warn("ask the other servers whether a task is watched; asking again", "task", snap.ID, "after", peersWatchRetry, "err", err)
			t.rewatch(peersWatchRetry)
			return
		}
		if w.After(last) {
			last = w
		}
	}
	if wait := d - time.Since(last); wait > 0 {
		t.rewatch(wait)
		return
	}
	r.log.Info("cancelling a task nobody watches", "task", snap.ID, "cancel_unwatched", snap.CancelUnwatched)
	if _, err := r.cancelWith(context.Background(), t, errUnwatched); err != nil && !errors.Is(err, ErrFinished) {
		r.log.Warn("cancel a task nobody watches", "task", snap.ID, "err", err)
	}
}

// rewatch checks again after wait, unless the task has ended meanwhile.
func (t *task) rewatch(wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.snap.State.Final() && !t.kept {
		t.watch.Reset(wait)
	}
}

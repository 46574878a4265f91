package tasks

import (
	"context"
	"slices"
	"time"
)

// dequeue removes t from the queue; false if it was not there (it started).
func (r *Runner) dequeue(t *task) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(r.queue, t)
	if i < 0 {
		return false
	}
	r.queue = slices.Delete(r.queue, i, i+1)
	return true
}

// ended is called once per task after its final event: it frees the run
// slot, starts the next queued task and forgets old finished ones. A task
// another server took over is forgotten here at once: its record is the
// other server's now.
func (r *Runner) ended(t *task, heldSlot bool) {
	t.mu.Lock()
	t.releaseLocked() // a task that ended without a final state (lost)
	t.mu.Unlock()
	r.mu.Lock()
	var gone []string
	defer func() {
		r.mu.Unlock()
		r.deleteRecords(gone)
	}()
	if t.lost.Load() {
		if r.tasks[t.snap.ID] == t {
			delete(r.tasks, t.snap.ID)
		}
	} else {
		r.finished = append(r.finished, t)
	}
	if heldSlot {
		r.running--
		for len(r.queue) > 0 && r.running < r.cfg.MaxRunning && !r.closing {
			next := r.queue[0]
			r.queue = r.queue[1:]
			r.running++
			go next.runTask()
		}
	}
	gone = r.forgetLocked(time.Now())
}

// forgetLocked drops finished tasks beyond KeepFinished or older than
// KeepFor, and returns their ids: the caller deletes their records with
// deleteRecords once it has let go of r.mu.
func (r *Runner) forgetLocked(now time.Time) []string {
	drop := 0
	if n := len(r.finished) - r.cfg.KeepFinished; n > 0 {
		drop = n
	}
	for drop < len(r.finished) && now.Sub(r.finished[drop].finishedAt) > r.cfg.KeepFor {
		drop++
	}
	var ids []string
	for _, t := range r.finished[:drop] {
		delete(r.tasks, t.snap.ID)
		ids = append(ids, t.snap.ID)
	}
	r.finished = slices.Delete(r.finished, 0, drop)
	return ids
}

// deleteRecords deletes forgotten tasks' records from the task store.
func (r *Runner) deleteRecords(ids []string) {
	if r.store == nil {
		return
	}
	for _, id := range ids {
		if err := r.store.DeleteTask(context.Background(), id); err != nil {
			r.log.Error("forget task", "task", id, "err", err)
		}
	}
}

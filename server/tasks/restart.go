package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pushd/push/protocol"
)

// load brings back the stored tasks. One that had not ended was running in
// a process that died, or that shut down. An external task's work goes on
// elsewhere: unless the task store is shared (see Peers), it stays as it
// was, at the progress its watchers last saw, takes reports again and has
// its stall timer started afresh. Any other task ran in that process: it
// ends now as failed, at the progress its watchers last saw, and they are
// told.
func (r *Runner) load(ctx context.Context) error {
	if r.store == nil {
		return nil
	}
	records, err := r.store.LoadTasks(ctx)
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	slices.SortFunc(records, func(a, b protocol.Task) int { return a.Created.Compare(b.Created) })
	seen := r.lastSeen(ctx, records)
	var resume []*task
	for _, rec := range records {
		if v, ok := seen[rec.ID]; ok && !rec.State.Final() && v.Percent >= rec.Percent {
			// The record is saved now and then; the events are what
			// watchers saw last, and progress never goes back.
			rec.Done, rec.Total, rec.Percent, rec.Message = v.Done, v.Total, v.Percent, v.Message
		}
		t := &task{runner: r, snap: rec, external: rec.Kind == kindExternal}
		t.ctx, t.cancel = context.WithCancelCause(context.Background())
		r.tasks[rec.ID] = t
		if t.external && !rec.State.Final() && r.peers == nil {
			t.reports = make(chan error, 1)
			resume = append(resume, t)
			r.external.Add(1)
			t.countedExternal = true // t is not yet seen by others
			continue
		}
		t.cancel(ErrShutdown)
		if !rec.State.Final() {
			t.finish(ctx, protocol.TaskFailed, "interrupted by server restart")
		}
		t.finishedAt = t.snap.Created
		if t.snap.Finished != nil {
			t.finishedAt = *t.snap.Finished
		}
		r.finished = append(r.finished, t)
	}
	slices.SortFunc(r.finished, func(a, b *task) int { return a.finishedAt.Compare(b.finishedAt) })
	r.deleteRecords(r.forgetLocked(time.Now()))
	for _, t := range resume {
		// Announced as running again (a queued one as started) here,
		// while the server is being made; its goroutine only waits for
		// its reports.
		t.mu.Lock()
		t.startLocked()
		t.watchLocked(time.Now())
		t.mu.Unlock()
		r.wg.Go(func() { t.await(false) })
	}
	return nil
}

// keepsExternal reports whether an external task still running when the
// server shuts down is kept for the next start rather than cancelled: its
// work goes on elsewhere, and load takes it back. That needs a task store
// of this server's own; a shared one (see Peers) is left to the other
// servers, which end the tasks of a server that is gone.
func (r *Runner) keepsExternal() bool {
	return r.store != nil && r.peers == nil
}

// save stores a task's record, if there is a task store. A failure is
// logged: the task goes on, it is only the record that may be stale. The
// error is returned for ErrTaken, on which the task stops.
func (r *Runner) save(ctx context.Context, snap protocol.Task) error {
	if r.store == nil {
		return nil
	}
	err := r.store.SaveTask(context.WithoutCancel(ctx), snap)
	if err != nil && !errors.Is(err, ErrTaken) {
		r.log.Error("save task", "task", snap.ID, "err", err)
	}
	return err
}

// lastSeenScan bounds how many of the tasks stream's latest events load
// reads to find what watchers last saw of the unfinished tasks.
const lastSeenScan = 4096

// lastSeen returns the newest view the tasks stream's latest events hold
// of each unfinished task among records. A task whose last event is older
// than that keeps the progress its record has.
func (r *Runner) lastSeen(ctx context.Context, records []protocol.Task) map[string]protocol.Task {
	unfinished := make(map[string]bool)
	for _, rec := range records {
		if !rec.State.Final() {
			unfinished[rec.ID] = true
		}
	}
	if len(unfinished) == 0 {
		return nil
	}
	seen := make(map[string]protocol.Task)
	err := r.stream.Latest(ctx, lastSeenScan, func(ev protocol.Event) {
		if ev.Task != nil && unfinished[ev.Task.ID] {
			seen[ev.Task.ID] = *ev.Task
		}
	})
	if err != nil {
		r.log.Warn("read the tasks stream for the last progress of interrupted tasks", "err", err)
	}
	return seen
}

package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pushd/push/protocol"
)

// Local returns this server's own tasks, as its TaskPeers serve them to
// the other servers.
func (ts *Tasks) Local() LocalTasks { return LocalTasks{ts: ts} }

// LocalTasks is the part of a server's tasks that runs on it, as its
// TaskPeers serve them to the other servers: unlike the Tasks methods of
// the same names, these never forward a request, so a request that has
// come from another server goes no further.
type LocalTasks struct {
	ts *Tasks
}

// Cancel cancels a task of this server, as Tasks.Cancel does;
// ErrTaskNotFound if it is not this server's.
func (l LocalTasks) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	return l.ts.cancelLocal(ctx, id)
}

// Report applies a progress report to a task of this server, as
// Tasks.Report does; ErrTaskNotFound if it is not this server's.
func (l LocalTasks) Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error) {
	return l.ts.reportLocal(ctx, id, rep)
}

// Announce publishes t's state on the tasks stream. Task peers call it
// once for each task of a vanished server that they have just recorded as
// ended, so that watchers see it end.
func (l LocalTasks) Announce(ctx context.Context, t protocol.Task) error {
	if _, err := l.ts.hub.Publish(ctx, protocol.TasksStream, protocol.Event{Type: protocol.TypeProgress, Task: &t}); err != nil {
		return fmt.Errorf("announce task %s: %w", t.ID, err)
	}
	return nil
}

// Adopt keeps t, a finished task of a vanished server whose record the
// caller has just made this server's, among this server's finished tasks:
// it is listed with them, and forgotten with them (its record deleted
// then). A task that is not finished, or is this server's already, is
// left alone.
func (l LocalTasks) Adopt(t protocol.Task) {
	if !t.State.Final() {
		return
	}
	ts := l.ts
	at := &task{ts: ts, snap: t, external: t.Kind == "external", finishedAt: t.Created}
	if t.Finished != nil {
		at.finishedAt = *t.Finished
	}
	at.ctx, at.cancel = context.WithCancelCause(context.Background())
	at.cancel(ErrTaskFinished)
	ts.mu.Lock()
	var gone []string
	if _, ok := ts.tasks[t.ID]; !ok {
		ts.tasks[t.ID] = at
		i, _ := slices.BinarySearchFunc(ts.finished, at.finishedAt, func(e *task, at time.Time) int { return e.finishedAt.Compare(at) })
		ts.finished = slices.Insert(ts.finished, i, at)
		gone = ts.forgetLocked(time.Now())
	}
	ts.mu.Unlock()
	ts.deleteRecords(gone)
}

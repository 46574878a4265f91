package tasks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pushd/push/protocol"
)

// Peers lets servers that share a Store reach the tasks that run on the
// others. A task runs on the server that started it, its owner, until it
// ends; every server lists and shows every server's tasks from their
// records in the shared store, and forwards cancel requests and progress
// reports to the owner, which answers them as if they had come to it.
// Records say which server owns a task, so a server that starts takes
// back none of the others' tasks; the tasks of a server that has vanished
// are ended as failed by one of the others.
//
// Errors that mean the shared service cannot be reached wrap the server's
// ErrUnavailable (503); a refusal from the owner is a *protocol.Error.
type Peers interface {
	// Serve answers the other servers' requests for the tasks of local,
	// keeps this server known to be alive, and ends the unfinished tasks
	// of servers that have vanished (see Local), until ctx ends.
	Serve(ctx context.Context, local Local) error
	// Get returns a task of another server, as last recorded; ErrNotFound
	// if no other server has it.
	Get(ctx context.Context, id string) (protocol.Task, error)
	// List returns the tasks of the other servers, as last recorded.
	List(ctx context.Context) ([]protocol.Task, error)
	// Cancel asks the server that runs task id to cancel it.
	Cancel(ctx context.Context, id string) (protocol.Task, error)
	// Report hands a progress report to the server that runs task id.
	Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error)
	// LastWatched returns the latest of what Stream.LastWatched says of
	// t on each other server (zero if none has watchers of it). An error
	// means some server could not say: the task is then not taken for
	// unwatched.
	LastWatched(ctx context.Context, t protocol.Task) (time.Time, error)
}

// Local returns this server's own tasks, as its Peers serve them to the
// other servers.
func (r *Runner) Local() Local { return Local{r: r} }

// Local is the part of a server's tasks that runs on it, as its Peers
// serve them to the other servers: unlike the Runner methods of the same
// names, these never forward a request, so a request that has come from
// another server goes no further.
type Local struct {
	r *Runner
}

// Cancel cancels a task of this server, as Runner.Cancel does;
// ErrNotFound if it is not this server's.
func (l Local) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	t, err := l.r.lookup(id)
	if err != nil {
		return protocol.Task{}, err
	}
	return l.r.cancelWith(ctx, t, ErrCancelled)
}

// Report applies a progress report to a task of this server, as
// Runner.Report does; ErrNotFound if it is not this server's.
func (l Local) Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error) {
	t, err := l.r.lookup(id)
	if err != nil {
		return protocol.Task{}, err
	}
	return l.r.report(ctx, t, rep)
}

// LastWatched returns when t was last watched on this server, as
// Stream.LastWatched says, for Peers to answer the other servers.
func (l Local) LastWatched(t protocol.Task) time.Time {
	return l.r.stream.LastWatched(t)
}

// Announce publishes t's state on the tasks stream. Peers call it once
// for each task of a vanished server that they have just recorded as
// ended, so that watchers see it end.
func (l Local) Announce(ctx context.Context, t protocol.Task) error {
	if err := l.r.stream.Publish(ctx, protocol.Event{Type: protocol.TypeProgress, Task: &t}); err != nil {
		return fmt.Errorf("announce task %s: %w", t.ID, err)
	}
	return nil
}

// Adopt keeps t, a finished task of a vanished server whose record the
// caller has just made this server's, among this server's finished tasks:
// it is listed with them, and forgotten with them (its record deleted
// then). A task that is not finished, or is this server's already, is
// left alone.
func (l Local) Adopt(t protocol.Task) {
	if !t.State.Final() {
		return
	}
	r := l.r
	at := &task{runner: r, snap: t, external: t.Kind == kindExternal, finishedAt: t.Created}
	if t.Finished != nil {
		at.finishedAt = *t.Finished
	}
	at.ctx, at.cancel = context.WithCancelCause(context.Background())
	at.cancel(ErrFinished)
	r.mu.Lock()
	var gone []string
	if _, ok := r.tasks[t.ID]; !ok {
		r.tasks[t.ID] = at
		i, _ := slices.BinarySearchFunc(r.finished, at.finishedAt, func(e *task, at time.Time) int { return e.finishedAt.Compare(at) })
		r.finished = slices.Insert(r.finished, i, at)
		gone = r.forgetLocked(time.Now())
	}
	r.mu.Unlock()
	r.deleteRecords(gone)
}

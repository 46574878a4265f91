package tasks

import (
	"context"

	"github.com/pushd/push/protocol"
)

// Store keeps task records across restarts, so that finished tasks can
// still be listed, a task interrupted by a crash is reported as such, and
// an external task goes on (see New).
//
// A store shared by several servers (see Peers) records which server
// saved each task; the server saves its tasks' progress too, not only
// their changes of state, since the others read it from there.
type Store interface {
	// SaveTask stores the task's record, replacing any earlier one. A
	// shared store refuses with ErrTaken once another server has changed
	// the record.
	SaveTask(ctx context.Context, t protocol.Task) error
	// DeleteTask forgets a task.
	DeleteTask(ctx context.Context, id string) error
	// LoadTasks returns the records this server takes back when it
	// starts: every stored record, or for a shared store only those this
	// server saved (the others' tasks are theirs).
	LoadTasks(ctx context.Context) ([]protocol.Task, error)
}

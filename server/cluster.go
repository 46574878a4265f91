package server

import (
	"context"
	"errors"

	"github.com/pushd/push/protocol"
)

// TaskPeers lets servers that share a TaskStore reach the tasks that run
// on the others. A task runs on the server that started it, its owner,
// until it ends; every server lists and shows every server's tasks from
// their records in the shared store, and forwards cancel requests and
// progress reports to the owner, which answers them as if they had come
// to it. Records say which server owns a task, so a server that starts
// takes back none of the others' tasks; the tasks of a server that has
// vanished are ended as failed by one of the others.
//
// Errors that mean the shared service cannot be reached wrap
// ErrUnavailable (503); a refusal from the owner is a *protocol.Error.
type TaskPeers interface {
	// Serve answers the other servers' requests for the tasks of local,
	// keeps this server known to be alive, and ends the unfinished tasks
	// of servers that have vanished (see LocalTasks), until ctx ends.
	Serve(ctx context.Context, local *Tasks) error
	// Get returns a task of another server, as last recorded;
	// ErrTaskNotFound if no other server has it.
	Get(ctx context.Context, id string) (protocol.Task, error)
	// List returns the tasks of the other servers, as last recorded.
	List(ctx context.Context) ([]protocol.Task, error)
	// Cancel asks the server that runs task id to cancel it.
	Cancel(ctx context.Context, id string) (protocol.Task, error)
	// Report hands a progress report to the server that runs task id.
	Report(ctx context.Context, id string, rep protocol.ProgressReport) (protocol.Task, error)
}

// ErrTaskTaken is returned by a shared TaskStore's SaveTask when another
// server has changed the task's record: it found this server gone and
// ended the task. The task stops here and announces nothing more; what
// the record says stands.
var ErrTaskTaken = errors.New("task taken over by another server")

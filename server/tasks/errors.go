package tasks

import "errors"

// Why a task's context was cancelled, as its cause.
var (
	// ErrCancelled: someone asked for the task to be cancelled.
	ErrCancelled = errors.New("cancelled on request")
	// ErrShutdown: the server is shutting down. Start returns it once
	// Shutdown has begun.
	ErrShutdown = errors.New("server shutting down")
	// errStalled: an external task reported nothing for too long.
	errStalled = errors.New("stalled")
)

// Errors callers of the runner branch on. The server answers each with
// an HTTP status of its own; errors the runner answers itself are a
// *protocol.Error.
var (
	// ErrNotFound: no such task here, or it has been forgotten.
	ErrNotFound = errors.New("task not found")
	// ErrFinished: the task has ended and takes no cancel or report.
	ErrFinished = errors.New("task already finished")
	// ErrUnknownKind: Start was given a kind no one registered.
	ErrUnknownKind = errors.New("unknown task kind")
	// ErrBadParams: a kind's params are of the right types but refused by
	// its checks (a Validate method, or the kind's own).
	ErrBadParams = errors.New("bad task params")
	// ErrParamsJSON: a kind's params do not decode: an unknown field, a
	// value of the wrong type (the error wraps its
	// *json.UnmarshalTypeError), trailing data.
	ErrParamsJSON = errors.New("task params")
	// ErrBusy: Start found the runner full: Config.MaxQueued tasks
	// waiting for a run slot, or Config.MaxExternal external tasks
	// running. Another start may succeed once some have ended.
	ErrBusy = errors.New("too many tasks")
	// ErrOwnerSilent is wrapped, along with the server's ErrUnavailable,
	// by the errors of Peers when the server that runs a task does not
	// answer: the API answers 503 with the error's text, which says which
	// server and what becomes of its tasks, where other unavailable
	// errors get a message without the details.
	ErrOwnerSilent = errors.New("the server that runs the task does not answer")
	// ErrTaken is returned by a shared Store's SaveTask when another
	// server has changed the task's record: it found this server gone and
	// ended the task. The task stops here and announces nothing more;
	// what the record says stands.
	ErrTaken = errors.New("task taken over by another server")
)

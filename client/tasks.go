package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/pushd/push/protocol"
)

// TaskSpec is what StartTask asks the server to run.
type TaskSpec struct {
	// Kind is the kind of work, one the server knows: "demo", "external",
	// or one a program embedding the server registered.
	Kind string
	// Name is a label for people (see protocol.ValidateTaskName).
	Name string
	// Params are the kind's own parameters, sent beside kind and name in
	// one JSON object; for "demo": {"total": 100, "interval": "50ms"}.
	// They must not use the keys of the fields of TaskSpec ("kind",
	// "name", "room", "private", "cancel_unwatched").
	Params map[string]any
	// Room shows the task only to those who may use that room (and in
	// its chat); Private only to its owner, the client's user. Neither:
	// to everyone.
	Room    string
	Private bool
	// CancelUnwatched, when positive, has the server cancel the task once
	// nobody who can see it has watched it (its events, or the tasks
	// stream) for that long; from 1s to 24h.
	CancelUnwatched time.Duration
	// Key is the start's Idempotency-Key (see protocol.ValidateID);
	// empty takes a random one. A start
	// sent again with the key within the server's dedupe window starts
	// nothing and answers the task the first one started.
	Key string
}

// StartTask starts a background task and returns it as created (usually
// queued). It sends the start with an Idempotency-Key (spec.Key, else a
// random one, as NewID makes) and sends it again, with the same key, when
// it failed for a passing reason, as Publish does: the task starts once.
// Follow it with FollowTask or a subscription to Task(id).
func (c *Client) StartTask(ctx context.Context, spec TaskSpec) (*protocol.Task, error) {
	body := make(map[string]any, len(spec.Params)+6)
	fields := map[string]string{"kind": "Kind", "name": "Name", "room": "Room", "private": "Private", "cancel_unwatched": "CancelUnwatched", "user": "the client's user"}
	for k, v := range spec.Params {
		if f, ok := fields[k]; ok {
			return nil, fmt.Errorf("start %s task: Params must not hold %q; use %s", spec.Kind, k, f)
		}
		body[k] = v
	}
	body["kind"] = spec.Kind
	if spec.Name != "" {
		body["name"] = spec.Name
	}
	if spec.Room != "" {
		body["room"] = spec.Room
	}
	if spec.Private {
		body["private"] = true
	}
	if spec.CancelUnwatched > 0 {
		body["cancel_unwatched"] = spec.CancelUnwatched.String()
	}
	if c.user != "" {
		body["user"] = c.user
	}
	key := spec.Key
	if key == "" {
		key = NewID()
	} else if err := protocol.ValidateID(protocol.IdempotencyKeyHeader, key); err != nil {
		return nil, fmt.Errorf("start %s task: %w", spec.Kind, err)
	}
	var t protocol.Task
	err := c.idempotently(ctx, defaultPublishTries, func(ctx context.Context) error {
		return c.post(ctx, "/v1/tasks", key, body, &t)
	})
	if err != nil {
		return nil, fmt.Errorf("start %s task: %w", spec.Kind, err)
	}
	return &t, nil
}

// GetTask returns the task with that id as it is now.
func (c *Client) GetTask(ctx context.Context, id string) (*protocol.Task, error) {
	var t protocol.Task
	if err := c.do(ctx, http.MethodGet, taskPath(id), nil, nil, 0, http.StatusOK, &t); err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	return &t, nil
}

// ListTasks returns every task the server keeps, newest first.
func (c *Client) ListTasks(ctx context.Context) ([]protocol.Task, error) {
	var l protocol.TaskList
	if err := c.do(ctx, http.MethodGet, "/v1/tasks", nil, nil, 0, http.StatusOK, &l); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	if l.Tasks == nil {
		l.Tasks = []protocol.Task{}
	}
	return l.Tasks, nil
}

// CancelTask asks the server to cancel a task and returns it as the
// server accepted the request (the state "cancelled" follows on the tasks
// stream once the work has stopped). Cancelling a finished task is a
// *protocol.Error with code conflict.
func (c *Client) CancelTask(ctx context.Context, id string) (*protocol.Task, error) {
	var t protocol.Task
	if err := c.do(ctx, http.MethodPost, taskPath(id)+"/cancel", nil, nil, 0, http.StatusAccepted, &t); err != nil {
		return nil, fmt.Errorf("cancel task %s: %w", id, err)
	}
	return &t, nil
}

// Progress is a progress report of an external task (see ReportProgress).
// Nil and empty fields are left out.
type Progress struct {
	// Done is the work done so far, of Total.
	Done *int64
	// Total changes the amount of work, when it was not known at the start.
	Total *int64
	// Percent is progress as a percentage, for work not counted in steps.
	Percent *float64
	// Message says what is happening now.
	Message string
	// State protocol.TaskSucceeded or protocol.TaskFailed ends the task.
	State protocol.TaskState
}

// ReportProgress reports how far an external task got and returns the
// task after the report.
func (c *Client) ReportProgress(ctx context.Context, id string, p Progress) (*protocol.Task, error) {
	rep := protocol.ProgressReport{Done: p.Done, Total: p.Total, Percent: p.Percent, State: p.State}
	if p.Message != "" {
		rep.Message = &p.Message
	}
	var t protocol.Task
	if err := c.do(ctx, http.MethodPost, taskPath(id)+"/progress", nil, rep, 0, http.StatusOK, &t); err != nil {
		return nil, fmt.Errorf("report progress of task %s: %w", id, err)
	}
	return &t, nil
}

func taskPath(id string) string { return "/v1/tasks/" + url.PathEscape(id) }

// FollowOptions configure FollowTask.
type FollowOptions struct {
	// SubscribeOptions configure the subscription to the task's events;
	// Since is ignored (FollowTask starts at "now").
	SubscribeOptions
	// OnProgress, if set, is called with every state of the task seen,
	// oldest first, on the goroutine that called FollowTask.
	OnProgress func(protocol.Task)
}

// behind reports whether a is a state of a task from before b: the
// subscription starts before the look at the task, so its first events may
// be older than what that look saw.
func behind(a, b protocol.Task) bool {
	rank := func(s protocol.TaskState) int {
		switch {
		case s == protocol.TaskQueued:
			return 0
		case s.Final():
			return 2
		}
		return 1
	}
	switch ra, rb := rank(a.State), rank(b.State); {
	case ra != rb:
		return ra < rb
	case a.Done != b.Done:
		return a.Done < b.Done
	}
	return a.Percent < b.Percent
}

// FollowTask waits until the task reaches a final state (succeeded,
// failed, cancelled) and returns it. It takes the task's cursor first and
// then the task itself, so an end that happens in between is seen either
// way; after a reset on the stream it fetches the task again, since events
// may have been missed, and so it does when the server ends the task's
// stream without its final event (one the stream no longer holds). If ctx
// ends first, it returns the last state seen and the context's error.
func (c *Client) FollowTask(ctx context.Context, id string, opts FollowOptions) (protocol.Task, error) {
	cur, err := c.Cursor(ctx, Task(id))
	if err != nil {
		return protocol.Task{}, fmt.Errorf("follow task %s: %w", id, err)
	}
	t, err := c.GetTask(ctx, id)
	if err != nil {
		return protocol.Task{}, fmt.Errorf("follow task %s: %w", id, err)
	}
	last := *t
	if opts.OnProgress != nil {
		opts.OnProgress(last)
	}
	if last.State.Final() {
		return last, nil
	}
	sopts := opts.SubscribeOptions
	sopts.Since = cur.String()
	sub := c.Subscribe(ctx, Task(id), sopts)
	defer sub.Close()
	for ev := range sub.Events() {
		var next *protocol.Task
		switch {
		case ev.Type == protocol.TypeReset:
			if next, err = c.GetTask(ctx, id); err != nil {
				return last, fmt.Errorf("follow task %s: after a reset: %w", id, err)
			}
		case ev.Task != nil && ev.Task.ID == id && !behind(*ev.Task, last):
			next = ev.Task
		default:
			continue
		}
		last = *next
		if opts.OnProgress != nil {
			opts.OnProgress(last)
		}
		if last.State.Final() {
			return last, nil
		}
	}
	if err := sub.Err(); err != nil {
		return last, fmt.Errorf("follow task %s: %w", id, err)
	}
	// The server ended the task's stream, which it does once the task has
	// ended: the final state was not in it, so ask for the task.
	t, err = c.GetTask(ctx, id)
	if err != nil {
		return last, fmt.Errorf("follow task %s: after its stream ended: %w", id, err)
	}
	last = *t
	if opts.OnProgress != nil {
		opts.OnProgress(last)
	}
	if !last.State.Final() {
		return last, fmt.Errorf("follow task %s: its stream ended while it is %s", id, last.State)
	}
	return last, nil
}

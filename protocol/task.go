package protocol

import "time"

// TaskState is where a task is in its life.
type TaskState string

// Task states. Queued and running are live; the others are final.
const (
	TaskQueued    TaskState = "queued"
	TaskRunning   TaskState = "running"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
	TaskCancelled TaskState = "cancelled"
)

// Final reports whether s is an end state.
func (s TaskState) Final() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskCancelled
}

// Task is a background task as the API and progress events show it.
type Task struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	State      TaskState  `json:"state"`
	Done       int64      `json:"done"`
	Total      int64      `json:"total"`
	Percent    float64    `json:"percent"`
	Message    string     `json:"message,omitempty"`
	ETASeconds *float64   `json:"eta_seconds,omitempty"`
	Created    time.Time  `json:"created"`
	Started    *time.Time `json:"started,omitempty"`
	Finished   *time.Time `json:"finished,omitempty"`
	// Owner is who started the task: the token's user, or on a server
	// without tokens the start request's user (empty if it named none).
	Owner string `json:"owner,omitempty"`
	// Room, when set, scopes the task to a room: only those who may use
	// the room see it. Private scopes it to its owner. Neither: everyone
	// sees it. See Scope.
	Room    string `json:"room,omitempty"`
	Private bool   `json:"private,omitempty"`
	// CancelUnwatched, a Go duration such as "30s", cancels the task
	// with the message "nobody watching" once nobody who can see it has
	// watched it for that long (see PROTOCOL.md).
	CancelUnwatched string `json:"cancel_unwatched,omitempty"`
}

// MessageUnwatched is the message of a task cancelled because nobody
// watched it for its CancelUnwatched.
const MessageUnwatched = "nobody watching"

// TaskList is the body of GET /v1/tasks: newest first.
type TaskList struct {
	Tasks []Task `json:"tasks"`
}

// ProgressReport is the body of POST /v1/tasks/{id}/progress, by which an
// external task reports how far it got. Give Done (of Total) or Percent;
// State "succeeded" or "failed" ends the task.
type ProgressReport struct {
	Done    *int64    `json:"done,omitempty"`
	Total   *int64    `json:"total,omitempty"`
	Percent *float64  `json:"percent,omitempty"`
	Message *string   `json:"message,omitempty"`
	State   TaskState `json:"state,omitempty"`
}

package pushdtest

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks/tasktest"
)

// TasksPath is the events path of the stream of all tasks.
const TasksPath = "/v1/tasks/events"

// TaskPath is the events path of one task.
func TaskPath(id string) string { return "/v1/tasks/" + url.PathEscape(id) + "/events" }

// StartTask starts a task from a POST /v1/tasks body, failing the test
// unless it is created (201) with an id.
func (s *Remote) StartTask(t testing.TB, body string) protocol.Task {
	t.Helper()
	var task protocol.Task
	s.Expect(t, http.MethodPost, "/v1/tasks", body, http.StatusCreated, &task)
	if task.ID == "" {
		t.Fatalf("POST /v1/tasks %s: no id in the answer", body)
	}
	return task
}

// Task returns a task as GET /v1/tasks/{id} shows it (200).
func (s *Remote) Task(t testing.TB, id string) protocol.Task {
	t.Helper()
	var task protocol.Task
	s.Expect(t, http.MethodGet, "/v1/tasks/"+id, "", http.StatusOK, &task)
	return task
}

// Tasks returns the list of GET /v1/tasks.
func (s *Remote) Tasks(t testing.TB) []protocol.Task {
	t.Helper()
	var list protocol.TaskList
	s.Expect(t, http.MethodGet, "/v1/tasks", "", http.StatusOK, &list)
	return list.Tasks
}

// CancelTask cancels a task, failing the test unless the cancel is
// accepted (202) and answered with that task.
func (s *Remote) CancelTask(t testing.TB, id string) protocol.Task {
	t.Helper()
	var task protocol.Task
	s.Expect(t, http.MethodPost, "/v1/tasks/"+id+"/cancel", "", http.StatusAccepted, &task)
	if task.ID != id {
		t.Fatalf("cancel %s answered with task %q", id, task.ID)
	}
	return task
}

// Report posts an external task's progress report, failing the test
// unless it is taken (200), and returns the task as it stands after it.
func (s *Remote) Report(t testing.TB, id, body string) protocol.Task {
	t.Helper()
	var task protocol.Task
	s.Expect(t, http.MethodPost, "/v1/tasks/"+id+"/progress", body, http.StatusOK, &task)
	return task
}

// WaitTask gets a task until the server shows it (200) and cond holds for
// it, and returns it. Until then an answer such as a 404 (the task not yet
// known to this server of a cluster) is waited past, not a failure.
func (s *Remote) WaitTask(t testing.TB, id, what string, cond func(protocol.Task) bool) protocol.Task {
	t.Helper()
	var task protocol.Task
	testwait.Until(t, Timeout, 2*time.Millisecond, func() error {
		a := s.Get(t, "/v1/tasks/"+id)
		if a.Status != http.StatusOK {
			return fmt.Errorf("task %s: no %s; GET answers %d %s", id, what, a.Status, a.Body)
		}
		a.JSON(t, &task)
		if !cond(task) {
			return fmt.Errorf("task %s: no %s; it is %s", id, what, tasktest.String(task))
		}
		return nil
	})
	return task
}

// WaitFinal waits until the watcher has seen a final state of task id,
// and returns it.
func (w *Watcher) WaitFinal(t testing.TB, id string) protocol.Task {
	t.Helper()
	evs := w.WaitFor(t, "final state of "+id, func(evs []protocol.Event) bool { return tasktest.Final(evs, id) != nil })
	return *tasktest.Final(evs, id)
}

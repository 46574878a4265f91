package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// The stream of one task ends after the task's final event, on every
// transport, in a way that tells "the task is over" from "reconnect".

// taskEnd is how each transport ends one task's stream, as
// pushdtest.Ended says it.
var taskEnd = map[string]string{
	pushdtest.WS:       fmt.Sprintf("ws close %d %s", protocol.CloseCodeNormal, protocol.CloseTaskFinished),
	pushdtest.WSBatch:  fmt.Sprintf("ws close %d %s", protocol.CloseCodeNormal, protocol.CloseTaskFinished),
	pushdtest.SSE:      "sse close " + protocol.CloseTaskFinished,
	pushdtest.LongPoll: "longpoll final",
}

// startExternal starts an external task of total units and returns it.
func startExternal(t *testing.T, srv *pushdtest.Server, total int) protocol.Task {
	t.Helper()
	var task protocol.Task
	srv.Expect(t, http.MethodPost, "/v1/tasks", fmt.Sprintf(`{"kind":"external","name":"end","total":%d}`, total), http.StatusCreated, &task)
	return task
}

// report posts an external task's progress report.
func report(t *testing.T, srv *pushdtest.Server, id, body string) {
	t.Helper()
	srv.Expect(t, http.MethodPost, "/v1/tasks/"+id+"/progress", body, http.StatusOK, nil)
}

// checkEndsWithFinal checks that evs are task id's events ending with its
// final state, want.
func checkEndsWithFinal(t *testing.T, name string, evs []protocol.Event, id string, want protocol.TaskState) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatalf("%s: no events; want the final state of %s last", name, id)
	}
	for _, ev := range evs {
		if ev.Task == nil || ev.Task.ID != id {
			t.Fatalf("%s: %s is not of task %s", name, pushdtest.OneLine(ev), id)
		}
	}
	if last := evs[len(evs)-1].Task; last.State != want {
		t.Fatalf("%s: the last event shows %s; want %s", name, last.State, want)
	}
	for _, ev := range evs[:len(evs)-1] {
		if ev.Task.State.Final() {
			t.Fatalf("%s: %s before the last event is final", name, pushdtest.OneLine(ev))
		}
	}
}

func TestTaskStreamEndsAfterFinalEvent(t *testing.T) {
	for _, tr := range pushdtest.Transports {
		t.Run(tr, func(t *testing.T) {
			srv := pushdtest.Start(t, server.Config{})
			task := startExternal(t, srv, 4)
			path := "/v1/tasks/" + task.ID + "/events"
			one := srv.Watch(t, tr, path, pushdtest.SubOptions{Since: "0"})
			all := srv.Watch(t, tr, "/v1/tasks/events", pushdtest.SubOptions{Since: "0"})
			report(t, srv, task.ID, `{"done":2}`)
			one.WaitFor(t, "progress 2", func(evs []protocol.Event) bool {
				return len(evs) > 0 && evs[len(evs)-1].Task.Done == 2
			})
			report(t, srv, task.ID, `{"state":"succeeded"}`)
			evs, end := one.WaitEnded(t)
			if end != taskEnd[tr] {
				t.Errorf("the task's stream ended with %q; want %q", end, taskEnd[tr])
			}
			checkEndsWithFinal(t, tr, evs, task.ID, protocol.TaskSucceeded)

			// The stream of every task goes on.
			all.WaitFor(t, "the final state", func(evs []protocol.Event) bool {
				return len(evs) > 0 && evs[len(evs)-1].Task.State.Final()
			})
			other := startExternal(t, srv, 1)
			all.WaitFor(t, "the next task", func(evs []protocol.Event) bool {
				return len(evs) > 0 && evs[len(evs)-1].Task.ID == other.ID
			})
		})
	}
}

func TestTaskStreamOfFinishedTask(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{})
	task := startExternal(t, srv, 2)
	report(t, srv, task.ID, `{"done":1}`)
	report(t, srv, task.ID, `{"state":"failed","message":"disk full"}`)
	path := "/v1/tasks/" + task.ID + "/events"
	history := srv.History(t, path)
	checkEndsWithFinal(t, "history", history, task.ID, protocol.TaskFailed)
	final := history[len(history)-1]
	srv.Publish(t, "lobby", "ann", "after the task") // the stream moves on: the live end is elsewhere
	startExternal(t, srv, 1)                         // and the tasks stream too

	for _, tr := range pushdtest.Transports {
		t.Run(tr, func(t *testing.T) {
			// A long poll that waited would outlast the test's bound: each
			// of these is answered at once.
			o := pushdtest.SubOptions{Wait: time.Minute}

			// From the live end: the final event, then the end.
			evs, end := srv.Watch(t, tr, path, o).WaitEnded(t)
			if end != taskEnd[tr] || len(evs) != 1 || evs[0].Cursor() != final.Cursor() || evs[0].Task.State != protocol.TaskFailed {
				t.Errorf("from the live end: %s, ended %q; want %s, then %q", pushdtest.Summary(evs), end, pushdtest.OneLine(final), taskEnd[tr])
			}

			// From the start: every event of the task, then the end.
			o.Since = "0"
			evs, end = srv.Watch(t, tr, path, o).WaitEnded(t)
			if end != taskEnd[tr] || pushdtest.Summary(evs) != pushdtest.Summary(history) {
				t.Errorf("from the start: %s, ended %q; want %s, then %q", pushdtest.Summary(evs), end, pushdtest.Summary(history), taskEnd[tr])
			}

			// From the final event or after it: the end alone.
			for _, since := range []string{final.Cursor().String(), srv.Head(t, "/v1/tasks/events").String()} {
				o.Since = since
				if tr == pushdtest.SSE {
					o.Since, o.LastEventID = "", since
				}
				evs, end = srv.Watch(t, tr, path, o).WaitEnded(t)
				if end != taskEnd[tr] || len(evs) != 0 {
					t.Errorf("since %s: %s, ended %q; want nothing, then %q", since, pushdtest.Summary(evs), end, taskEnd[tr])
				}
				o.LastEventID = ""
			}
		})
	}

	// A short poll says the same.
	evs, cur, fin := srv.PollFinal(t, path, "wait=0")
	if !fin || len(evs) != 1 || evs[0].Cursor() != final.Cursor() || cur != final.Cursor().String() {
		t.Errorf("short poll: %s, cursor %s, final %v; want %s, its cursor, final", pushdtest.Summary(evs), cur, fin, pushdtest.OneLine(final))
	}
	if evs, _, fin := srv.PollFinal(t, path, "wait=0&since="+cur); !fin || len(evs) != 0 {
		t.Errorf("short poll after the final event: %s, final %v; want nothing, final", pushdtest.Summary(evs), fin)
	}
}

// A task whose final event the tasks stream no longer holds (retention
// dropped it) ends its stream at once.
func TestTaskStreamFinalEventGone(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{History: 4})
	task := startExternal(t, srv, 1)
	report(t, srv, task.ID, `{"state":"succeeded"}`)
	for range 5 {
		startExternal(t, srv, 1)
	}
	path := "/v1/tasks/" + task.ID + "/events"
	for _, tr := range pushdtest.Transports {
		evs, end := srv.Watch(t, tr, path, pushdtest.SubOptions{Wait: time.Minute}).WaitEnded(t)
		if end != taskEnd[tr] || len(evs) != 0 {
			t.Errorf("%s: %s, ended %q; want nothing, then %q", tr, pushdtest.Summary(evs), end, taskEnd[tr])
		}
	}
}

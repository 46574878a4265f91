package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// What watchers see of tasks on every transport: the stream of all tasks
// and the events of one, from the start and joining late, through a
// cancel and a shutdown. The runner itself is tested in server/tasks; the
// HTTP API's answers and errors are in tasks_http_test.go.

func TestTaskDemoRunsToSucceeded(t *testing.T) {
	forEachTransport(t, server.Config{}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		all := ts.Watch(t, tr, pushdtest.TasksPath, pushdtest.SubOptions{Since: ts.Head(t, pushdtest.TasksPath).String()})
		task := ts.StartTask(t, `{"kind":"demo","name":"try it","total":20,"interval":"10ms"}`)
		if task.State != protocol.TaskQueued || task.Kind != "demo" || task.Name != "try it" {
			t.Errorf("start answered %s kind %q name %q; want queued demo \"try it\"", tasktest.String(task), task.Kind, task.Name)
		}
		one := ts.Watch(t, tr, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: "0"})

		for _, w := range []*pushdtest.Watcher{one, all} {
			final := w.WaitFinal(t, task.ID)
			evs, _, _ := w.Seen()
			tasktest.CheckOrder(t, evs)
			seen := tasktest.Of(evs, task.ID)
			if seen[0].State != protocol.TaskQueued {
				t.Errorf("%s: the first event is %s; want the queued state", w.Name(), tasktest.String(seen[0]))
			}
			if !tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Started != nil }) {
				t.Errorf("%s: no running state with a start time among %s", w.Name(), tasktest.EventsString(evs))
			}
			if !tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Percent > 0 && tk.Percent < 100 }) {
				t.Errorf("%s: no progress between 0 and 100%% among %s", w.Name(), tasktest.EventsString(evs))
			}
			if final.State != protocol.TaskSucceeded || final.Percent != 100 || final.Done != 20 || final.Total != 20 || final.Finished == nil {
				t.Errorf("%s: final state %s; want succeeded, 20/20, 100%%, with a finish time", w.Name(), tasktest.String(final))
			}
		}
		evs, _, _ := all.Seen()
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq != evs[i-1].Seq+1 {
				t.Errorf("the tasks stream went from seq %d to %d; it rises by one", evs[i-1].Seq, evs[i].Seq)
			}
		}
		tasktest.CheckSame(t, ts.Task(t, task.ID), one.WaitFinal(t, task.ID))
	})
}

func TestTaskDemoFailAt(t *testing.T) {
	forEachTransport(t, server.Config{}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		task, w := startWatched(t, ts, tr, `{"kind":"demo","total":10,"interval":"5ms","fail_at":4}`)
		final := w.WaitFinal(t, task.ID)
		if final.State != protocol.TaskFailed || final.Message != "failed at step 4 of 10 (fail_at)" || final.Done != 3 || final.Finished == nil {
			t.Errorf("final state %s; want failed at step 4 with done 3 and a finish time", tasktest.String(final))
		}
		evs, _, _ := w.Seen()
		tasktest.CheckOrder(t, evs)
		tasktest.CheckSame(t, ts.Task(t, task.ID), final)
	})
}

func TestTaskCancelRunning(t *testing.T) {
	forEachTransport(t, server.Config{}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		// An hour a step: only a cancellation can end it within the test.
		task, w := startWatched(t, ts, tr, `{"kind":"demo","total":3,"interval":"1h"}`)
		w.WaitFor(t, "running state", func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
		})
		ts.CancelTask(t, task.ID)
		final := w.WaitFinal(t, task.ID)
		if final.State != protocol.TaskCancelled || final.Message != "cancelled on request" || final.Finished == nil {
			t.Errorf("final state %s; want cancelled \"cancelled on request\"", tasktest.String(final))
		}
		evs, _, _ := w.Seen()
		tasktest.CheckOrder(t, evs)
		tasktest.CheckSame(t, ts.Task(t, task.ID), final)

		ts.Post(t, "/v1/tasks/"+task.ID+"/cancel", "").WantError(t, http.StatusConflict, protocol.CodeConflict)
	})
}

func TestTaskLateWatcherGetsHistoryThenLive(t *testing.T) {
	forEachTransport(t, server.Config{}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		task := ts.StartTask(t, `{"kind":"external","name":"backup","total":10}`)
		ts.WaitTask(t, task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
		ts.Report(t, task.ID, `{"done":1,"message":"one"}`)
		ts.Report(t, task.ID, `{"done":2}`)
		ts.Report(t, task.ID, `{"done":3,"message":"three"}`)

		// Joining late, from the start: the history first.
		w := ts.Watch(t, tr, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: "0"})
		evs := w.WaitFor(t, "done 3", func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 3 && tk.Message == "three" })
		})
		seen := tasktest.Of(evs, task.ID)
		if len(seen) < 3 || seen[0].State != protocol.TaskQueued || seen[1].State != protocol.TaskRunning {
			t.Errorf("a watcher from since=0 saw %s; want queued, running, then progress", tasktest.EventsString(evs))
		}

		// Resuming after the first event skips it.
		later := ts.Watch(t, tr, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: evs[0].Cursor().String()})
		levs := later.WaitFor(t, "done 3", func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 3 })
		})
		if levs[0].Seq != evs[1].Seq {
			t.Errorf("a watcher from since=%s began at %s; want %s", evs[0].Cursor(), levs[0].Cursor(), evs[1].Cursor())
		}

		// Then what happens now.
		ts.Report(t, task.ID, `{"done":7}`)
		for _, w := range []*pushdtest.Watcher{w, later} {
			w.WaitFor(t, "done 7", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 7 })
			})
		}
		ts.Report(t, task.ID, `{"state":"succeeded"}`)
		for _, w := range []*pushdtest.Watcher{w, later} {
			final := w.WaitFinal(t, task.ID)
			if final.State != protocol.TaskSucceeded || final.Done != 10 || final.Percent != 100 {
				t.Errorf("%s: final state %s; want succeeded 10/10", w.Name(), tasktest.String(final))
			}
			evs, _, _ := w.Seen()
			tasktest.CheckOrder(t, evs)
		}
	})
}

func TestTaskTwoWatchersOneLeaves(t *testing.T) {
	forEachTransport(t, server.Config{}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		task, leaver := startWatched(t, ts, tr, `{"kind":"demo","total":20,"interval":"5ms"}`)
		stayer := ts.Watch(t, tr, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: "0"})
		leaver.WaitFor(t, "some progress", func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done >= 2 })
		})
		leaver.Stop()
		final := stayer.WaitFinal(t, task.ID)
		if final.State != protocol.TaskSucceeded || final.Done != 20 {
			t.Errorf("after one watcher left, the task ended %s; want succeeded 20/20", tasktest.String(final))
		}
		evs, _, _ := stayer.Seen()
		tasktest.CheckOrder(t, evs)
		if got := ts.Task(t, task.ID); got.State != protocol.TaskSucceeded {
			t.Errorf("GET shows %s; want succeeded", tasktest.String(got))
		}
	})
}

func TestTaskEventsShowOnlyThatTask(t *testing.T) {
	// A tail of 8 events: watchers that join later read the
	// older events from the store, filtered there.
	forEachTransport(t, server.Config{TailSize: 8}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		all := ts.Watch(t, tr, pushdtest.TasksPath, pushdtest.SubOptions{Since: ts.Head(t, pushdtest.TasksPath).String()})
		a := ts.StartTask(t, `{"kind":"demo","name":"a","total":10,"interval":"5ms"}`)
		b := ts.StartTask(t, `{"kind":"demo","name":"b","total":10,"interval":"5ms"}`)
		wa := ts.Watch(t, tr, pushdtest.TaskPath(a.ID), pushdtest.SubOptions{Since: "0"})
		wb := ts.Watch(t, tr, pushdtest.TaskPath(b.ID), pushdtest.SubOptions{Since: "0"})
		all.WaitFor(t, "both final states", func(evs []protocol.Event) bool {
			return tasktest.Final(evs, a.ID) != nil && tasktest.Final(evs, b.ID) != nil
		})
		allEvs, _, _ := all.Seen()
		tasktest.CheckOrder(t, allEvs)
		lateA := ts.Watch(t, tr, pushdtest.TaskPath(a.ID), pushdtest.SubOptions{Since: "0"})
		lateB := ts.Watch(t, tr, pushdtest.TaskPath(b.ID), pushdtest.SubOptions{Since: "0"})
		for _, c := range []struct {
			w  *pushdtest.Watcher
			id string
		}{{wa, a.ID}, {wb, b.ID}, {lateA, a.ID}, {lateB, b.ID}} {
			c.w.WaitFinal(t, c.id)
			evs, _, _ := c.w.Seen()
			tasktest.CheckOrder(t, evs)
			var want []uint64
			for _, ev := range allEvs {
				if ev.Task != nil && ev.Task.ID == c.id {
					want = append(want, ev.Seq)
				}
			}
			var got []uint64
			for _, ev := range evs {
				if ev.Task == nil || ev.Task.ID != c.id {
					t.Errorf("the events of task %s include %s", c.id, tasktest.EventsString([]protocol.Event{ev}))
				}
				got = append(got, ev.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("the events of task %s have seqs %v; the tasks stream has %v for it", c.id, got, want)
			}
		}
	})
}

func TestTaskShutdownCancelsRunningTasks(t *testing.T) {
	forEachTransport(t, server.Config{Tasks: tasks.Config{MaxRunning: 1}}, func(t *testing.T, tr string, ts *pushdtest.Server) {
		all := ts.Watch(t, tr, pushdtest.TasksPath, pushdtest.SubOptions{Since: ts.Head(t, pushdtest.TasksPath).String()})
		running := ts.StartTask(t, `{"kind":"demo","total":3,"interval":"1h"}`)
		queued := ts.StartTask(t, `{"kind":"demo","total":3,"interval":"1h"}`)
		external := ts.StartTask(t, `{"kind":"external"}`)
		one := ts.Watch(t, tr, pushdtest.TaskPath(running.ID), pushdtest.SubOptions{Since: "0"})

		// Both watchers are subscribed and the tasks stream is quiet:
		// the demo's total is out, the external task runs.
		settled := func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, running.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Total == 3 })
		}
		one.WaitInFlight(t, "the running demo's total", settled)
		all.WaitInFlight(t, "the running demo's total and the external task running", func(evs []protocol.Event) bool {
			return settled(evs) && tasktest.Seen(evs, queued.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskQueued }) &&
				tasktest.Seen(evs, external.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
		})

		if tr == "longpoll" {
			// A poll that has reached the wrapper may not yet be counted
			// by the server; wait until both are, so the shutdown
			// answers them rather than refusing them.
			testwait.Until(t, pushdtest.Timeout, 2*time.Millisecond, func() error {
				if n, err := ts.Connections(t, "longpoll"); err != nil || n != 2 {
					return fmt.Errorf("the two long polls never waited at once: %d (%v)", n, err)
				}
				return nil
			})
		}
		ctx, cancel := context.WithTimeout(t.Context(), pushdtest.Timeout)
		defer cancel()
		if err := ts.Srv().Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}

		// The stream of every task is told to reconnect; the stream of
		// the one task ends with that task's final event.
		wantEnd := map[string]string{
			"ws":       fmt.Sprintf("ws close %d %s", protocol.CloseCodeServiceRestart, protocol.CloseShutdown),
			"sse":      "sse close " + protocol.CloseShutdown,
			"longpoll": fmt.Sprintf("longpoll %d %s", http.StatusServiceUnavailable, protocol.CodeUnavailable),
		}[tr]
		wantTaskEnd := map[string]string{
			"ws":       fmt.Sprintf("ws close %d %s", protocol.CloseCodeNormal, protocol.CloseTaskFinished),
			"sse":      "sse close " + protocol.CloseTaskFinished,
			"longpoll": "longpoll final",
		}[tr]
		for _, c := range []struct {
			w    *pushdtest.Watcher
			ids  []string
			want string
		}{{one, []string{running.ID}, wantTaskEnd}, {all, []string{running.ID, queued.ID, external.ID}, wantEnd}} {
			evs, end := c.w.WaitEnded(t)
			if end != c.want {
				t.Errorf("%s: the stream ended with %q; want %q", c.w.Name(), end, c.want)
			}
			tasktest.CheckOrder(t, evs)
			finals := 0
			for _, id := range c.ids {
				final := tasktest.Final(evs, id)
				if final == nil {
					// A long poll is answered as soon as there is one
					// event; the poll after it may come once the server
					// refuses polls, and miss the rest (it resumes from
					// its cursor on the restarted server).
					if tr != "longpoll" {
						t.Errorf("%s: the stream ended before the final state of %s; it saw %s", c.w.Name(), id, tasktest.EventsString(evs))
					}
					continue
				}
				finals++
				if final.State != protocol.TaskCancelled || final.Message != "server shutting down" {
					t.Errorf("%s: final state %s; want cancelled \"server shutting down\"", c.w.Name(), tasktest.String(*final))
				}
			}
			if finals == 0 {
				t.Errorf("%s: the subscription waiting when the server shut down ended without a final state; it saw %s", c.w.Name(), tasktest.EventsString(evs))
			}
		}
		for _, id := range []string{running.ID, queued.ID, external.ID} {
			got := ts.Task(t, id)
			if got.State != protocol.TaskCancelled || got.Message != "server shutting down" || got.Finished == nil {
				t.Errorf("after shutdown GET shows %s; want cancelled \"server shutting down\"", tasktest.String(got))
			}
		}
		if got := ts.Task(t, queued.ID); got.Started != nil {
			t.Errorf("the queued task has a start time %v; it never ran", got.Started)
		}
		ts.Post(t, "/v1/tasks", `{"kind":"demo"}`).WantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable)
	})
}

// The task tests' server, and the checks they share. Requests and
// watchers are pushdtest's.

// taskTransports are the ways the task tests watch a stream.
var taskTransports = []string{pushdtest.WS, pushdtest.SSE, pushdtest.LongPoll}

// taskConfig is cfg with progress events at most 1 ms apart unless cfg
// says otherwise.
func taskConfig(cfg server.Config) server.Config {
	if cfg.Tasks.MinInterval == 0 {
		cfg.Tasks.MinInterval = time.Millisecond
	}
	return cfg
}

// startTaskServer starts a server for taskConfig(cfg).
func startTaskServer(t *testing.T, cfg server.Config) *pushdtest.Server {
	t.Helper()
	return pushdtest.Start(t, taskConfig(cfg))
}

// forEachTransport runs test for each of taskTransports, in parallel,
// each on a task server of its own for cfg.
func forEachTransport(t *testing.T, cfg server.Config, test func(t *testing.T, tr string, ts *pushdtest.Server)) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			test(t, tr, startTaskServer(t, cfg))
		})
	}
}

// startWatched starts a task from a POST /v1/tasks body and a watcher of
// its events from the start over tr.
func startWatched(t *testing.T, ts *pushdtest.Server, tr, body string) (protocol.Task, *pushdtest.Watcher) {
	t.Helper()
	task := ts.StartTask(t, body)
	return task, ts.Watch(t, tr, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: "0"})
}

// waitQuiet waits until the last event on the tasks stream about task id
// satisfies cond, so that nothing is still waiting to go out.
func waitQuiet(t *testing.T, ts *pushdtest.Server, id, what string, cond func(protocol.Task) bool) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 2*time.Millisecond, func() error {
		evs := ts.History(t, pushdtest.TasksPath)
		if seen := tasktest.Of(evs, id); len(seen) > 0 && cond(seen[len(seen)-1]) {
			return nil
		}
		return fmt.Errorf("the last event of task %s has no %s; the stream has %s", id, what, tasktest.EventsString(evs))
	})
}

// taskSnapshot is what a refused request must leave as it was: the tasks,
// their states, and the tasks stream.
func taskSnapshot(t *testing.T, ts *pushdtest.Server) string {
	t.Helper()
	list := ts.Tasks(t)
	for i := range list {
		list[i].ETASeconds = nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + " at " + ts.Head(t, pushdtest.TasksPath).String()
}

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

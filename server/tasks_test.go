package server_test

import (
	"context"
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

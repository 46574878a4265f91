package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

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
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			all := ts.watch(tr, "/v1/tasks/events?since="+ts.cursor())
			task := ts.startTask(`{"kind":"demo","name":"try it","total":20,"interval":"10ms"}`)
			if task.State != protocol.TaskQueued || task.Kind != "demo" || task.Name != "try it" {
				t.Errorf("start answered %s kind %q name %q; want queued demo \"try it\"", tasktest.String(task), task.Kind, task.Name)
			}
			one := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")

			for _, w := range []*taskWatcher{one, all} {
				final := w.waitFinal(task.ID)
				evs, _, _ := w.seen()
				tasktest.CheckOrder(t, evs)
				seen := tasktest.Of(evs, task.ID)
				if seen[0].State != protocol.TaskQueued {
					t.Errorf("%s: the first event is %s; want the queued state", w.name, tasktest.String(seen[0]))
				}
				if !tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Started != nil }) {
					t.Errorf("%s: no running state with a start time among %s", w.name, tasktest.EventsString(evs))
				}
				if !tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Percent > 0 && tk.Percent < 100 }) {
					t.Errorf("%s: no progress between 0 and 100%% among %s", w.name, tasktest.EventsString(evs))
				}
				if final.State != protocol.TaskSucceeded || final.Percent != 100 || final.Done != 20 || final.Total != 20 || final.Finished == nil {
					t.Errorf("%s: final state %s; want succeeded, 20/20, 100%%, with a finish time", w.name, tasktest.String(final))
				}
			}
			evs, _, _ := all.seen()
			for i := 1; i < len(evs); i++ {
				if evs[i].Seq != evs[i-1].Seq+1 {
					t.Errorf("the tasks stream went from seq %d to %d; it rises by one", evs[i-1].Seq, evs[i].Seq)
				}
			}
			tasktest.CheckSame(t, ts.getTask(task.ID), one.waitFinal(task.ID))
		})
	}
}

func TestTaskDemoFailAt(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			task := ts.startTask(`{"kind":"demo","total":10,"interval":"5ms","fail_at":4}`)
			w := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			final := w.waitFinal(task.ID)
			if final.State != protocol.TaskFailed || final.Message != "failed at step 4 of 10 (fail_at)" || final.Done != 3 || final.Finished == nil {
				t.Errorf("final state %s; want failed at step 4 with done 3 and a finish time", tasktest.String(final))
			}
			evs, _, _ := w.seen()
			tasktest.CheckOrder(t, evs)
			tasktest.CheckSame(t, ts.getTask(task.ID), final)
		})
	}
}

func TestTaskCancelRunning(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			// An hour a step: only a cancellation can end it within the test.
			task := ts.startTask(`{"kind":"demo","total":3,"interval":"1h"}`)
			w := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			w.waitFor("running state", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
			})
			ts.cancelTask(task.ID)
			final := w.waitFinal(task.ID)
			if final.State != protocol.TaskCancelled || final.Message != "cancelled on request" || final.Finished == nil {
				t.Errorf("final state %s; want cancelled \"cancelled on request\"", tasktest.String(final))
			}
			evs, _, _ := w.seen()
			tasktest.CheckOrder(t, evs)
			tasktest.CheckSame(t, ts.getTask(task.ID), final)

			status, _, body := ts.do(http.MethodPost, "/v1/tasks/"+task.ID+"/cancel", "")
			taskWantError(t, status, body, http.StatusConflict, protocol.CodeConflict)
		})
	}
}

func TestTaskLateWatcherGetsHistoryThenLive(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			task := ts.startTask(`{"kind":"external","name":"backup","total":10}`)
			ts.waitTask(task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
			ts.report(task.ID, `{"done":1,"message":"one"}`)
			ts.report(task.ID, `{"done":2}`)
			ts.report(task.ID, `{"done":3,"message":"three"}`)

			// Joining late, from the start: the history first.
			w := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			evs := w.waitFor("done 3", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 3 && tk.Message == "three" })
			})
			seen := tasktest.Of(evs, task.ID)
			if len(seen) < 3 || seen[0].State != protocol.TaskQueued || seen[1].State != protocol.TaskRunning {
				t.Errorf("a watcher from since=0 saw %s; want queued, running, then progress", tasktest.EventsString(evs))
			}

			// Resuming after the first event skips it.
			later := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since="+evs[0].Cursor().String())
			levs := later.waitFor("done 3", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 3 })
			})
			if levs[0].Seq != evs[1].Seq {
				t.Errorf("a watcher from since=%s began at %s; want %s", evs[0].Cursor(), levs[0].Cursor(), evs[1].Cursor())
			}

			// Then what happens now.
			ts.report(task.ID, `{"done":7}`)
			for _, w := range []*taskWatcher{w, later} {
				w.waitFor("done 7", func(evs []protocol.Event) bool {
					return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 7 })
				})
			}
			ts.report(task.ID, `{"state":"succeeded"}`)
			for _, w := range []*taskWatcher{w, later} {
				final := w.waitFinal(task.ID)
				if final.State != protocol.TaskSucceeded || final.Done != 10 || final.Percent != 100 {
					t.Errorf("%s: final state %s; want succeeded 10/10", w.name, tasktest.String(final))
				}
				evs, _, _ := w.seen()
				tasktest.CheckOrder(t, evs)
			}
		})
	}
}

func TestTaskTwoWatchersOneLeaves(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{})
			task := ts.startTask(`{"kind":"demo","total":20,"interval":"5ms"}`)
			leaver := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			stayer := ts.watch(tr, "/v1/tasks/"+task.ID+"/events?since=0")
			leaver.waitFor("some progress", func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done >= 2 })
			})
			leaver.stop()
			final := stayer.waitFinal(task.ID)
			if final.State != protocol.TaskSucceeded || final.Done != 20 {
				t.Errorf("after one watcher left, the task ended %s; want succeeded 20/20", tasktest.String(final))
			}
			evs, _, _ := stayer.seen()
			tasktest.CheckOrder(t, evs)
			if got := ts.getTask(task.ID); got.State != protocol.TaskSucceeded {
				t.Errorf("GET shows %s; want succeeded", tasktest.String(got))
			}
		})
	}
}

func TestTaskEventsShowOnlyThatTask(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			// A tail of 8 events: watchers that join later read the
			// older events from the store, filtered there.
			ts := startTaskServer(t, server.Config{TailSize: 8})
			all := ts.watch(tr, "/v1/tasks/events?since="+ts.cursor())
			a := ts.startTask(`{"kind":"demo","name":"a","total":10,"interval":"5ms"}`)
			b := ts.startTask(`{"kind":"demo","name":"b","total":10,"interval":"5ms"}`)
			wa := ts.watch(tr, "/v1/tasks/"+a.ID+"/events?since=0")
			wb := ts.watch(tr, "/v1/tasks/"+b.ID+"/events?since=0")
			all.waitFor("both final states", func(evs []protocol.Event) bool {
				return tasktest.Final(evs, a.ID) != nil && tasktest.Final(evs, b.ID) != nil
			})
			allEvs, _, _ := all.seen()
			tasktest.CheckOrder(t, allEvs)
			lateA := ts.watch(tr, "/v1/tasks/"+a.ID+"/events?since=0")
			lateB := ts.watch(tr, "/v1/tasks/"+b.ID+"/events?since=0")
			for _, c := range []struct {
				w  *taskWatcher
				id string
			}{{wa, a.ID}, {wb, b.ID}, {lateA, a.ID}, {lateB, b.ID}} {
				c.w.waitFinal(c.id)
				evs, _, _ := c.w.seen()
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
}

func TestTaskShutdownCancelsRunningTasks(t *testing.T) {
	for _, tr := range taskTransports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ts := startTaskServer(t, server.Config{Tasks: tasks.Config{MaxRunning: 1}})
			all := ts.watch(tr, "/v1/tasks/events?since="+ts.cursor())
			running := ts.startTask(`{"kind":"demo","total":3,"interval":"1h"}`)
			queued := ts.startTask(`{"kind":"demo","total":3,"interval":"1h"}`)
			external := ts.startTask(`{"kind":"external"}`)
			one := ts.watch(tr, "/v1/tasks/"+running.ID+"/events?since=0")

			// Both watchers are subscribed and the tasks stream is quiet:
			// the demo's total is out, the external task runs.
			settled := func(evs []protocol.Event) bool {
				return tasktest.Seen(evs, running.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Total == 3 })
			}
			one.waitInFlight("the running demo's total", settled)
			all.waitInFlight("the running demo's total and the external task running", func(evs []protocol.Event) bool {
				return settled(evs) && tasktest.Seen(evs, queued.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskQueued }) &&
					tasktest.Seen(evs, external.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
			})

			if tr == "longpoll" {
				// A poll that has reached the wrapper may not yet be counted
				// by the server; wait until both are, so the shutdown
				// answers them rather than refusing them.
				testwait.Until(t, taskWait, taskPollEvery, func() error {
					if _, _, b := ts.do(http.MethodGet, "/metrics", ""); !strings.Contains(string(b), `pushd_connections{transport="longpoll"} 2`) {
						return errors.New("the two long polls never waited at once")
					}
					return nil
				})
			}
			ctx, cancel := context.WithTimeout(t.Context(), taskWait)
			defer cancel()
			if err := ts.srv.Shutdown(ctx); err != nil {
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
				w    *taskWatcher
				ids  []string
				want string
			}{{one, []string{running.ID}, wantTaskEnd}, {all, []string{running.ID, queued.ID, external.ID}, wantEnd}} {
				evs, end := c.w.waitEnded()
				if end != c.want {
					t.Errorf("%s: the stream ended with %q; want %q", c.w.name, end, c.want)
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
							t.Errorf("%s: the stream ended before the final state of %s; it saw %s", c.w.name, id, tasktest.EventsString(evs))
						}
						continue
					}
					finals++
					if final.State != protocol.TaskCancelled || final.Message != "server shutting down" {
						t.Errorf("%s: final state %s; want cancelled \"server shutting down\"", c.w.name, tasktest.String(*final))
					}
				}
				if finals == 0 {
					t.Errorf("%s: the subscription waiting when the server shut down ended without a final state; it saw %s", c.w.name, tasktest.EventsString(evs))
				}
			}
			for _, id := range []string{running.ID, queued.ID, external.ID} {
				got := ts.getTask(id)
				if got.State != protocol.TaskCancelled || got.Message != "server shutting down" || got.Finished == nil {
					t.Errorf("after shutdown GET shows %s; want cancelled \"server shutting down\"", tasktest.String(got))
				}
			}
			if got := ts.getTask(queued.ID); got.Started != nil {
				t.Errorf("the queued task has a start time %v; it never ran", got.Started)
			}
			status, _, body := ts.do(http.MethodPost, "/v1/tasks", `{"kind":"demo"}`)
			taskWantError(t, status, body, http.StatusServiceUnavailable, protocol.CodeUnavailable)
		})
	}
}

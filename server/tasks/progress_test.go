package tasks_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Progress: coalesced events, and progress that never goes back.

func TestCoalescedProgress(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		// With an hour between progress events, only the state changes go out.
		r := startRunner(t, nil, tasks.Config{MinInterval: time.Hour}, nil, nil)
		task := r.start("demo", "", `{"total":30,"interval":"1ms"}`)
		final := r.stream.waitFinal(t, task.ID)
		evs := r.stream.seen()
		tasktest.CheckOrder(t, evs)
		var states []protocol.TaskState
		for _, tk := range tasktest.Of(evs, task.ID) {
			states = append(states, tk.State)
		}
		if fmt.Sprint(states) != "[queued running succeeded]" {
			t.Errorf("30 steps with an hour between progress events gave %s; want queued, running, succeeded", tasktest.EventsString(evs))
		}
		if final.Done != 30 || final.Percent != 100 {
			t.Errorf("final state %s; want 30/30", tasktest.String(final))
		}
	})
	t.Run("external", func(t *testing.T) {
		t.Parallel()
		r := startRunner(t, nil, tasks.Config{MinInterval: time.Hour}, nil, nil)
		task := r.start("external", "", `{"total":20}`)
		r.waitTask(task.ID, "running", isRunning)
		const reports = 20
		for i := int64(1); i < reports; i++ {
			if got := r.report(task.ID, protocol.ProgressReport{Done: ptr(i)}); got.Done != i {
				t.Fatalf("report done %d answered %s", i, tasktest.String(got))
			}
		}
		r.report(task.ID, protocol.ProgressReport{State: protocol.TaskSucceeded, Message: ptr("all copied")})
		final := r.stream.waitFinal(t, task.ID)
		evs := r.stream.seen()
		tasktest.CheckOrder(t, evs)
		seen := tasktest.Of(evs, task.ID)
		if len(seen) >= reports {
			t.Errorf("%d reports gave %d events; want fewer", reports, len(seen))
		}
		if seen[0].State != protocol.TaskQueued || seen[1].State != protocol.TaskRunning {
			t.Errorf("the start was coalesced away: %s", tasktest.EventsString(evs))
		}
		if final.State != protocol.TaskSucceeded || final.Message != "all copied" || final.Done != 20 {
			t.Errorf("final state %s; want succeeded \"all copied\" 20/20", tasktest.String(final))
		}
	})
	t.Run("latest wins", func(t *testing.T) {
		t.Parallel()
		// A held-back progress event goes out later with the latest state.
		r := startRunner(t, nil, tasks.Config{MinInterval: 50 * time.Millisecond}, nil, nil)
		task := r.start("external", "", `{"total":10}`)
		r.waitTask(task.ID, "running", isRunning)
		for i := int64(1); i <= 10; i++ {
			r.report(task.ID, protocol.ProgressReport{Done: ptr(i), Message: ptr(fmt.Sprintf("file %d", i))})
		}
		evs := r.stream.waitFor(t, "done 10", func(evs []protocol.Event) bool {
			return tasktest.Seen(evs, task.ID, func(tk protocol.Task) bool { return tk.Done == 10 && tk.Message == "file 10" })
		})
		tasktest.CheckOrder(t, evs)
		if final := tasktest.Final(evs, task.ID); final != nil {
			t.Errorf("the task ended by itself: %s", tasktest.String(*final))
		}
	})
}

func TestExternalTotalBelowDone(t *testing.T) {
	// A report may lower the total below what is already done. Whatever the
	// runner makes of it, done must never go back, and never exceed a known
	// total.
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	task := r.start("external", "", `{"total":10}`)
	r.waitTask(task.ID, "running", isRunning)
	r.report(task.ID, protocol.ProgressReport{Done: ptr(int64(8))})
	for _, rep := range []protocol.ProgressReport{{Total: ptr(int64(5))}, {Done: ptr(int64(9))}} {
		if _, err := r.Report(t.Context(), task.ID, rep); err != nil {
			// Refusing is fine, as a client's mistake.
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Status < 400 || pe.Status >= 500 {
				t.Errorf("report %+v: %v; want nil or a 4xx *protocol.Error", rep, err)
			}
		}
		got := r.get(task.ID)
		if got.Done < 8 {
			t.Errorf("after report %+v the task is %s: done went back below the 8 already done", rep, tasktest.String(got))
		}
		if got.Total > 0 && got.Done > got.Total {
			t.Errorf("after report %+v the task is %s: done is above the total", rep, tasktest.String(got))
		}
	}
	r.report(task.ID, protocol.ProgressReport{State: protocol.TaskSucceeded})
	r.stream.waitFinal(t, task.ID)
	evs := r.stream.seen()
	tasktest.CheckOrder(t, evs)
	for _, tk := range tasktest.Of(evs, task.ID) {
		if tk.Total > 0 && tk.Done > tk.Total {
			t.Errorf("a watcher saw done above the total: %s", tasktest.String(tk))
		}
	}
}

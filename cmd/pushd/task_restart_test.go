package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// A task killed with its server ends failed, interrupted by the restart,
// at the progress its watchers last saw, never less: progress does not go
// back across a crash. Its total is known from the start.
func TestInterruptedTaskKeepsItsProgress(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	task := p.StartTask(t, `{"kind":"demo","name":"long","total":1000,"interval":"20ms"}`)
	if task.Total != 1000 {
		t.Fatalf("start task: total %d; want the total asked for, 1000", task.Total)
	}
	// Let it get going, then read what a watcher has seen of it.
	var seen protocol.Task
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, ev := range p.History(t, pushdtest.TaskPath(task.ID)) {
			if ev.Task != nil && ev.Task.Done > seen.Done {
				seen = *ev.Task
			}
		}
		if seen.Done < 40 {
			return fmt.Errorf("the task reached only %d of 1000 steps", seen.Done)
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data)
	got := p.Task(t, task.ID)
	if got.State != protocol.TaskFailed || got.Message != "interrupted by server restart" {
		t.Fatalf("task after restart = %s %q; want failed \"interrupted by server restart\"", got.State, got.Message)
	}
	if got.Done < seen.Done || got.Percent < seen.Percent || got.Total != 1000 {
		t.Fatalf("task after restart at %d/%d (%.1f%%); watchers had seen %d/%d (%.1f%%): progress went back", got.Done, got.Total, got.Percent, seen.Done, seen.Total, seen.Percent)
	}
}

// An external task's work goes on elsewhere: when pushd is killed and
// started again on the same data, the task is still running at the
// progress its watchers last saw, and the script's next report is taken.
// A task pushd itself ran ends as interrupted.
func TestExternalTaskGoesOnAfterKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	ext := p.StartTask(t, `{"kind":"external","name":"nightly-backup","total":100}`)
	demo := p.StartTask(t, `{"kind":"demo","name":"long","total":1000,"interval":"1s"}`)
	const reported = 30
	for n := 1; n <= reported; n++ {
		p.Report(t, ext.ID, fmt.Sprintf(`{"done":%d,"message":"copied %d"}`, n, n))
	}

	// What a watcher has seen when the server dies: the demo running, and
	// the external task at some progress (the latest reports may still
	// be waiting to go out, coalesced).
	var seen protocol.Task
	var last string
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		evs, _ := p.Poll(t, pushdtest.TasksPath, "since=0&wait=0")
		demoRunning := false
		for _, ev := range evs {
			switch {
			case ev.Task == nil:
			case ev.Task.ID == ext.ID:
				seen = *ev.Task
			case ev.Task.ID == demo.ID:
				demoRunning = demoRunning || ev.Task.State == protocol.TaskRunning
			}
			last = ev.Cursor().String()
		}
		if !demoRunning || seen.Done == 0 {
			return fmt.Errorf("the watcher has not seen the demo running and the external task's progress: %s", pushdtest.Summary(evs))
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data)
	if interrupted := p.Task(t, demo.ID); interrupted.State != protocol.TaskFailed || interrupted.Message != "interrupted by server restart" {
		t.Errorf("the demo task after the restart is %s %q; want failed \"interrupted by server restart\"", interrupted.State, interrupted.Message)
	}
	if got := p.Task(t, ext.ID); got.State != protocol.TaskRunning || got.Finished != nil || got.Total != 100 || got.Done < seen.Done || got.Done > reported || got.Percent < seen.Percent {
		t.Fatalf("the external task after the restart is %+v; want running, between the %+v watchers saw and the %d reported", got, seen, reported)
	}

	// The script goes on as if nothing had happened.
	next := p.Report(t, ext.ID, fmt.Sprintf(`{"done":%d,"message":"copied %d"}`, reported+1, reported+1))
	if next.State != protocol.TaskRunning || next.Done != reported+1 {
		t.Fatalf("the first report after the restart answered %s at %d; want running at %d", next.State, next.Done, reported+1)
	}
	p.Report(t, ext.ID, `{"state":"succeeded"}`)

	// A watcher resuming from its cursor sees the task running again, then
	// its end, with progress never going back.
	var after []protocol.Task
	testwait.Until(t, 20*time.Second, time.Millisecond, func() error {
		if len(after) > 0 && after[len(after)-1].State.Final() {
			return nil
		}
		evs, _ := p.Poll(t, pushdtest.TaskPath(ext.ID), "wait=10s&since="+last)
		for _, ev := range evs {
			if ev.Type == protocol.TypeReset {
				t.Fatalf("the watcher resuming from %s got a reset", last)
			}
			if ev.Task != nil {
				after = append(after, *ev.Task)
			}
			last = ev.Cursor().String()
		}
		return fmt.Errorf("no final state after the restart; the watcher saw %+v", after)
	})
	if after[0].State != protocol.TaskRunning {
		t.Errorf("the first event after the restart is %s; want running", after[0].State)
	}
	prev := seen
	for _, tk := range after {
		if tk.Done < prev.Done || tk.Percent < prev.Percent {
			t.Errorf("progress went back from %d (%g%%) to %d (%g%%)", prev.Done, prev.Percent, tk.Done, tk.Percent)
		}
		prev = tk
	}
	if final := after[len(after)-1]; final.State != protocol.TaskSucceeded || final.Done != 100 || final.Percent != 100 {
		t.Errorf("final state %s at %d (%g%%); want succeeded at 100", final.State, final.Done, final.Percent)
	}
}

// After a crash an external task's stall timer runs again: one that
// reports nothing more fails as stalled.
func TestExternalTaskStallsAfterKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	ext := p.StartTask(t, `{"kind":"external","name":"silent"}`)
	p.Report(t, ext.ID, `{"percent":10}`)
	// Watchers see the report (it may wait a moment to go out, coalesced).
	since := "0"
	seen := false
	testwait.Until(t, 20*time.Second, time.Millisecond, func() error {
		evs, _ := p.Poll(t, pushdtest.TaskPath(ext.ID), "wait=10s&since="+since)
		for _, ev := range evs {
			seen = seen || ev.Task != nil && ev.Task.Percent == 10
			since = ev.Cursor().String()
		}
		if !seen {
			return errors.New("the report has not gone out")
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data, "--task-stall-timeout", "200ms")
	var final *protocol.Task
	testwait.Until(t, 20*time.Second, time.Millisecond, func() error {
		evs, _ := p.Poll(t, pushdtest.TaskPath(ext.ID), "wait=10s&since="+since)
		for _, ev := range evs {
			if ev.Task != nil && ev.Task.State.Final() {
				final = ev.Task
			}
			since = ev.Cursor().String()
		}
		if final == nil {
			return errors.New("the silent external task has not stalled after the restart")
		}
		return nil
	})
	if final.State != protocol.TaskFailed || !strings.HasPrefix(final.Message, "stalled") || !strings.Contains(final.Message, "200ms") || final.Percent != 10 {
		t.Errorf("the silent external task ended %s %q at %g%%; want failed as stalled after 200ms, at 10%%", final.State, final.Message, final.Percent)
	}
}

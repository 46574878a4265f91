package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// An external task's work goes on elsewhere: when pushd is killed and
// started again on the same data, the task is still running at the
// progress its watchers last saw, and the script's next report is taken.
// A task pushd itself ran ends as interrupted.
func TestExternalTaskGoesOnAfterKill(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	var ext, demo protocol.Task
	postJSON(t, p.url+"/v1/tasks", `{"kind":"external","name":"nightly-backup","total":100}`, http.StatusCreated, &ext)
	postJSON(t, p.url+"/v1/tasks", `{"kind":"demo","name":"long","total":1000,"interval":"1s"}`, http.StatusCreated, &demo)
	const reported = 30
	for n := 1; n <= reported; n++ {
		var got protocol.Task
		postJSON(t, p.url+"/v1/tasks/"+ext.ID+"/progress", fmt.Sprintf(`{"done":%d,"message":"copied %d"}`, n, n), http.StatusOK, &got)
	}

	// What a watcher has seen when the server dies: the demo running, and
	// the external task at some progress (the latest reports may still
	// be waiting to go out, coalesced).
	var seen protocol.Task
	var last string
	for deadline := time.Now().Add(20 * time.Second); ; {
		poll := poll(t, p.url+"/v1/tasks/events?since=0&wait=0")
		demoRunning := false
		for _, ev := range poll.Events {
			switch {
			case ev.Task == nil:
			case ev.Task.ID == ext.ID:
				seen = *ev.Task
			case ev.Task.ID == demo.ID:
				demoRunning = demoRunning || ev.Task.State == protocol.TaskRunning
			}
			last = ev.Cursor().String()
		}
		if demoRunning && seen.Done > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher never saw the demo running and the external task's progress: %+v", poll.Events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill(t)

	p = startPushd(t, "--data", data)
	var interrupted protocol.Task
	getJSON(t, p.url+"/v1/tasks/"+demo.ID, &interrupted)
	if interrupted.State != protocol.TaskFailed || interrupted.Message != "interrupted by server restart" {
		t.Errorf("the demo task after the restart is %s %q; want failed \"interrupted by server restart\"", interrupted.State, interrupted.Message)
	}
	var got protocol.Task
	getJSON(t, p.url+"/v1/tasks/"+ext.ID, &got)
	if got.State != protocol.TaskRunning || got.Finished != nil || got.Total != 100 || got.Done < seen.Done || got.Done > reported || got.Percent < seen.Percent {
		t.Fatalf("the external task after the restart is %+v; want running, between the %+v watchers saw and the %d reported", got, seen, reported)
	}

	// The script goes on as if nothing had happened.
	var next, done protocol.Task
	postJSON(t, p.url+"/v1/tasks/"+ext.ID+"/progress", fmt.Sprintf(`{"done":%d,"message":"copied %d"}`, reported+1, reported+1), http.StatusOK, &next)
	if next.State != protocol.TaskRunning || next.Done != reported+1 {
		t.Fatalf("the first report after the restart answered %s at %d; want running at %d", next.State, next.Done, reported+1)
	}
	postJSON(t, p.url+"/v1/tasks/"+ext.ID+"/progress", `{"state":"succeeded"}`, http.StatusOK, &done)

	// A watcher resuming from its cursor sees the task running again, then
	// its end, with progress never going back.
	var after []protocol.Task
	for deadline := time.Now().Add(20 * time.Second); len(after) == 0 || !after[len(after)-1].State.Final(); {
		if time.Now().After(deadline) {
			t.Fatalf("no final state after the restart; the watcher saw %+v", after)
		}
		poll := poll(t, p.url+"/v1/tasks/"+ext.ID+"/events?wait=10s&since="+last)
		for _, ev := range poll.Events {
			if ev.Type == protocol.TypeReset {
				t.Fatalf("the watcher resuming from %s got a reset", last)
			}
			if ev.Task != nil {
				after = append(after, *ev.Task)
			}
			last = ev.Cursor().String()
		}
	}
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
	var ext, reported protocol.Task
	postJSON(t, p.url+"/v1/tasks", `{"kind":"external","name":"silent"}`, http.StatusCreated, &ext)
	postJSON(t, p.url+"/v1/tasks/"+ext.ID+"/progress", `{"percent":10}`, http.StatusOK, &reported)
	// Watchers see the report (it may wait a moment to go out, coalesced).
	since := "0"
	for deadline, seen := time.Now().Add(20*time.Second), false; !seen; {
		if time.Now().After(deadline) {
			t.Fatal("the report never went out")
		}
		for _, ev := range poll(t, p.url+"/v1/tasks/"+ext.ID+"/events?wait=10s&since="+since).Events {
			seen = seen || ev.Task != nil && ev.Task.Percent == 10
			since = ev.Cursor().String()
		}
	}
	p.kill(t)

	p = startPushd(t, "--data", data, "--task-stall-timeout", "200ms")
	var final *protocol.Task
	for deadline := time.Now().Add(20 * time.Second); final == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the silent external task did not stall after the restart")
		}
		poll := poll(t, p.url+"/v1/tasks/"+ext.ID+"/events?wait=10s&since="+since)
		for _, ev := range poll.Events {
			if ev.Task != nil && ev.Task.State.Final() {
				final = ev.Task
			}
			since = ev.Cursor().String()
		}
	}
	if final.State != protocol.TaskFailed || !strings.HasPrefix(final.Message, "stalled") || !strings.Contains(final.Message, "200ms") || final.Percent != 10 {
		t.Errorf("the silent external task ended %s %q at %g%%; want failed as stalled after 200ms, at 10%%", final.State, final.Message, final.Percent)
	}
}

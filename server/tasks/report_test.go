package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// What ends a task besides its kind: an external task's reports and its
// stall timer, and CancelUnwatched once the stream says nobody watched it
// for that long.

func TestExternalStalls(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{StallTimeout: 50 * time.Millisecond}, nil, nil)
	task := r.start("external", "silent", "")
	final := r.stream.waitFinal(t, task.ID)
	if final.State != protocol.TaskFailed || !strings.HasPrefix(final.Message, "stalled") || !strings.Contains(final.Message, "50ms") {
		t.Errorf("a silent external task ended %s; want failed as stalled after 50ms", tasktest.String(final))
	}
	tasktest.CheckOrder(t, r.stream.seen())
	if _, err := r.Report(t.Context(), task.ID, protocol.ProgressReport{Done: ptr(int64(1))}); !errors.Is(err, tasks.ErrFinished) {
		t.Errorf("a report after the stall: %v; want ErrFinished", err)
	}
}

func TestExternalReportBeforeItRuns(t *testing.T) {
	// A script may end its task at once: start it, then report "failed"
	// before the task's goroutine has marked it running. Through the Go API
	// the report nearly always comes first; over HTTP, now and then.
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	ctx := context.Background()
	want := make(map[string]protocol.TaskState)
	var ids []string
	for i := range 100 {
		task, _, err := r.Start(ctx, tasks.Spec{Kind: "external", Name: fmt.Sprintf("quick %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		msg, state := "disk full", protocol.TaskFailed
		if i%2 == 1 {
			msg, state = "nothing to do", protocol.TaskSucceeded
		}
		if _, err := r.Report(ctx, task.ID, protocol.ProgressReport{State: state, Message: &msg}); err != nil {
			t.Fatalf("report %s: %v", state, err)
		}
		want[task.ID] = state
		ids = append(ids, task.ID)
	}
	// Shutdown returns once every task's goroutine has ended, and so has
	// published every event.
	shutdown(t, r.Runner)
	evs := r.stream.seen()
	wrong := 0
	for _, id := range ids {
		got := r.get(id)
		if got.State != want[id] {
			if wrong++; wrong <= 3 {
				t.Errorf("task %s reported %s but ended %s; watchers saw:%s", id, want[id], tasktest.String(got), tasktest.EventsString(tasktest.EventsOf(evs, id)))
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d external tasks ended in another state than the one they reported", wrong, len(ids))
	}
	reopened := 0
	for _, id := range ids {
		seen := tasktest.Of(evs, id)
		for i, tk := range seen {
			if tk.State.Final() && i < len(seen)-1 {
				reopened++
				break
			}
		}
	}
	if reopened > 0 {
		t.Errorf("for %d of %d tasks watchers saw events after the final state", reopened, len(ids))
	}
}

func TestUnwatchedTaskIsCancelled(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	for _, kind := range []string{"demo", "external"} {
		tk, _, err := r.Start(t.Context(), tasks.Spec{Kind: kind, Params: []byte(`{"total":100000}`), CancelUnwatched: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		got := r.stream.waitFinal(t, tk.ID)
		if got.State != protocol.TaskCancelled || got.Message != protocol.MessageUnwatched {
			t.Errorf("%s task nobody watched ended %s; want cancelled, %q", kind, tasktest.String(got), protocol.MessageUnwatched)
		}
		if d := got.Finished.Sub(got.Created); d < time.Second {
			t.Errorf("%s task nobody watched was cancelled after %s; want 1s or more", kind, d)
		}
	}
}

func TestWatchedTaskRuns(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	// 10 s of work, watched until 1.5 s after it started, then not: it
	// ends once it has been unwatched for a second, not before.
	tk, _, err := r.Start(t.Context(), tasks.Spec{Kind: "demo", Params: []byte(`{"total":100,"interval":"100ms"}`), CancelUnwatched: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.stream.setWatched(tk.ID, tk.Created.Add(1500*time.Millisecond))
	got := r.stream.waitFinal(t, tk.ID)
	if got.State != protocol.TaskCancelled || got.Message != protocol.MessageUnwatched {
		t.Fatalf("ended %s; want cancelled as unwatched", tasktest.String(got))
	}
	if d := got.Finished.Sub(tk.Created); d < 2500*time.Millisecond {
		t.Errorf("cancelled %s after it started; watched until 1.5 s, it must run until 2.5 s at least", d)
	}
}

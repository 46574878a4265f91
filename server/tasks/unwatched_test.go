package tasks_test

import (
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Tasks started with CancelUnwatched: cancelled once the stream says
// nobody watched them for that long.

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

package tasks_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// What a runner takes back from its task store when it starts. Across a
// server's restart, with watchers resuming, see the server's tests; the
// kill -9 case is in cmd/pushd, with a real process.

func TestLoadTakesWhatWatchersLastSaw(t *testing.T) {
	stream, store := &memStream{}, newMemStore()
	ctx := t.Context()
	created := time.Now().UTC().Add(-time.Minute)
	started := created.Add(time.Second)
	running := func(id, kind string, percent float64) protocol.Task {
		return protocol.Task{ID: id, Kind: kind, Name: id, State: protocol.TaskRunning, Created: created, Started: &started, Total: 100, Done: int64(percent), Percent: percent}
	}
	// The records were saved a while before the process died; the events
	// went out since.
	records := []protocol.Task{running("tdemo", "demo", 20), running("text", "external", 10), running("tahead", "external", 50)}
	for _, rec := range records {
		if err := store.SaveTask(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range []protocol.Task{running("tdemo", "demo", 40), running("text", "external", 30), running("tahead", "external", 45)} {
		if err := stream.Publish(ctx, protocol.Event{Type: protocol.TypeProgress, Task: &ev}); err != nil {
			t.Fatal(err)
		}
	}
	r := startRunner(t, stream, tasks.Config{}, store, nil)

	demo := r.stream.waitFinal(t, "tdemo")
	if demo.State != protocol.TaskFailed || demo.Message != "interrupted by server restart" || demo.Percent != 40 || demo.Done != 40 {
		t.Errorf("the demo task ended %s; want failed, interrupted, at the 40%% watchers saw", tasktest.String(demo))
	}
	if got := r.get("text"); got.State != protocol.TaskRunning || got.Percent != 30 || !got.Started.Equal(started) {
		t.Errorf("the external task is %s started %v; want running at the 30%% watchers saw, started %v", tasktest.String(got), got.Started, started)
	}
	if got := r.get("tahead"); got.Percent != 50 {
		t.Errorf("the external task whose record is ahead of its events is %s; progress never goes back from 50%%", tasktest.String(got))
	}
	if got := r.report("text", protocol.ProgressReport{Percent: ptr(35.0)}); got.Percent != 35 {
		t.Errorf("a report after the restart answered %s", tasktest.String(got))
	}
}

func TestExternalStallsAgainAfterRestart(t *testing.T) {
	stream, store := &memStream{}, newMemStore()
	r := startRunner(t, stream, tasks.Config{StallTimeout: time.Hour}, store, nil)
	ext := r.start("external", "silent after one", "")
	r.report(ext.ID, protocol.ProgressReport{Percent: ptr(20.0)})

	const stall = 100 * time.Millisecond
	restarted := time.Now()
	shutdown(t, r.Runner)
	if final := tasktest.Final(stream.seen(), ext.ID); final != nil {
		t.Fatalf("the shutdown ended the external task: %s", tasktest.String(*final))
	}
	r = startRunner(t, stream, tasks.Config{StallTimeout: stall}, store, nil)
	final := r.stream.waitFinal(t, ext.ID)
	if final.State != protocol.TaskFailed || !strings.HasPrefix(final.Message, "stalled") || final.Percent != 20 {
		t.Errorf("the external task silent after the restart ended %s; want failed as stalled at 20%%", tasktest.String(final))
	}
	if final.Finished == nil || final.Finished.Sub(restarted) < stall {
		t.Errorf("it stalled at %v, less than %s after the restart began at %v: the timer did not start afresh", final.Finished, stall, restarted)
	}
	tasktest.CheckOrder(t, r.stream.seen())
	if _, err := r.Report(t.Context(), ext.ID, protocol.ProgressReport{Percent: ptr(30.0)}); !errors.Is(err, tasks.ErrFinished) {
		t.Errorf("a report after the stall: %v; want ErrFinished", err)
	}
}

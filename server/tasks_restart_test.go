package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
	"github.com/pushd/push/server/tasks/tasktest"
)

// An external task's work goes on elsewhere, so a server with a task store
// of its own neither ends it when it shuts down nor when it comes back, and
// its watchers resume across the restart. The runner's side of it (what it
// takes back, the stall timer) is tested in server/tasks; the kill -9 case
// is in cmd/pushd, with a real process.

// openTaskBolt opens the bolt store in dir; Cleanup closes it (again: a
// test may close it first, to open it anew).
func openTaskBolt(t *testing.T, dir string) *boltstore.Store {
	t.Helper()
	bs, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	return bs
}

// restartTaskServer shuts ts down, closes its store, and restarts ts on
// the same data directory with cfg (its stores set to the reopened one).
func restartTaskServer(t *testing.T, ts *pushdtest.Server, bs *boltstore.Store, dir string, cfg server.Config) *boltstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), pushdtest.Timeout)
	defer cancel()
	if err := ts.Srv().Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	bs = openTaskBolt(t, dir)
	t.Cleanup(func() { ts.Stop(t) }) // registered after the store's, so it runs before it
	cfg.Store, cfg.TaskStore = bs, bs
	ts.RestartWith(t, taskConfig(cfg))
	return bs
}

func TestTaskExternalGoesOnAcrossGracefulRestart(t *testing.T) {
	dir := t.TempDir()
	bs := openTaskBolt(t, dir)
	ts := startTaskServer(t, server.Config{Store: bs, TaskStore: bs})
	w := ts.Watch(t, "sse", pushdtest.TasksPath, pushdtest.SubOptions{Since: ts.Head(t, pushdtest.TasksPath).String()})
	ext := ts.StartTask(t, `{"kind":"external","name":"backup","total":10}`)
	demo := ts.StartTask(t, `{"kind":"demo","total":1000,"interval":"1h"}`)
	ts.Report(t, ext.ID, `{"done":3}`)
	ts.Report(t, ext.ID, `{"done":4,"message":"copied d"}`)
	w.WaitInFlight(t, "the external task at 4 and the demo running", func(evs []protocol.Event) bool {
		return tasktest.Seen(evs, ext.ID, func(tk protocol.Task) bool { return tk.Done == 4 && tk.Message == "copied d" }) &&
			tasktest.Seen(evs, demo.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning && tk.Total == 1000 })
	})
	before := ts.Task(t, ext.ID)

	ctx, cancel := context.WithTimeout(t.Context(), pushdtest.Timeout)
	defer cancel()
	if err := ts.Srv().Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	evs, _ := w.WaitEnded(t)
	tasktest.CheckOrder(t, evs)
	if final := tasktest.Final(evs, ext.ID); final != nil {
		t.Errorf("the shutdown ended the external task: %s", tasktest.String(*final))
	}
	if final := tasktest.Final(evs, demo.ID); final == nil || final.State != protocol.TaskCancelled || final.Message != "server shutting down" {
		t.Errorf("the demo task's final event before the streams closed: %v; want cancelled \"server shutting down\"; watchers saw %s", final, tasktest.EventsString(evs))
	}
	// While the server shuts down, the task takes no reports or cancels:
	// they are to be sent again once it is back.
	runner := ts.Srv().Tasks()
	msg := "late"
	if _, err := runner.Report(ctx, ext.ID, protocol.ProgressReport{Message: &msg}); server.TaskPeerErrorOf(err).Status != http.StatusServiceUnavailable {
		t.Errorf("a report during the shutdown: %v; want a 503", err)
	}
	if _, err := runner.Cancel(ctx, ext.ID); server.TaskPeerErrorOf(err).Status != http.StatusServiceUnavailable {
		t.Errorf("a cancel during the shutdown: %v; want a 503", err)
	}
	last := evs[len(evs)-1].Cursor().String()

	restartTaskServer(t, ts, bs, dir, server.Config{})
	got := ts.Task(t, ext.ID)
	if got.State != protocol.TaskRunning || got.Done != 4 || got.Total != 10 || got.Message != "copied d" || got.Finished != nil ||
		got.Started == nil || !got.Started.Equal(*before.Started) {
		t.Fatalf("after the restart the external task is %s started %v; want running at 4/10 \"copied d\", started %v as before", tasktest.String(got), got.Started, before.Started)
	}
	if got := ts.Task(t, demo.ID); got.State != protocol.TaskCancelled || got.Message != "server shutting down" {
		t.Errorf("after the restart the demo task is %s; want cancelled \"server shutting down\" as it ended", tasktest.String(got))
	}

	// A watcher resuming from where it was sees the task running again,
	// and its reports as before.
	w = ts.Watch(t, "ws", pushdtest.TaskPath(ext.ID), pushdtest.SubOptions{Since: last})
	w.WaitFor(t, "the external task running again", func(evs []protocol.Event) bool {
		return tasktest.Seen(evs, ext.ID, func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
	})
	if r := ts.Report(t, ext.ID, `{"done":5,"message":"copied e"}`); r.State != protocol.TaskRunning || r.Done != 5 {
		t.Errorf("the first report after the restart answered %s; want running at 5", tasktest.String(r))
	}
	ts.Report(t, ext.ID, `{"done":10,"state":"succeeded"}`)
	final := w.WaitFinal(t, ext.ID)
	if final.State != protocol.TaskSucceeded || final.Done != 10 || final.Percent != 100 {
		t.Errorf("final state %s; want succeeded at 10/10", tasktest.String(final))
	}
	after, _, _ := w.Seen()
	if len(after) > 0 && after[0].Type == protocol.TypeReset {
		t.Fatalf("the resumed watcher got a reset: %s", tasktest.EventsString(after))
	}
	tasktest.CheckOrder(t, append(tasktest.EventsOf(evs, ext.ID), after...))
	tasktest.CheckSame(t, ts.Task(t, ext.ID), final)
}
